package config

import (
	"fmt"
	"slices"

	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// ignore insists that every accepted finding is one the guardian can raise: a
// misspelt id would silence nothing, and say nothing about it.
func (v *validator) ignore(path string, ids []string) {
	for i, id := range ids {
		if !slices.Contains(policy.KnownIDs, id) {
			v.addf(fmt.Sprintf("%s[%d]", path, i), "%q is not a finding id (see the README's table of findings)", id)
		}
	}
}
