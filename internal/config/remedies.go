package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// remedies reads a remedies section (global or an instance's) over rs: each key
// names a remedy of policy.Registry, whose Configure reads its own keys through
// params. What no remedy asked for is an unknown key, with its path and line.
func (v *validator) remedies(path string, n *yaml.Node, rs policy.Remedies) {
	if n == nil || n.Kind == 0 {
		return
	}
	if n.Kind != yaml.MappingNode {
		if n.Tag == "!!null" {
			return
		}
		v.addf(path, "must be a mapping of remedy names (%s) to their settings (line %d)", strings.Join(policy.RemedyNames(), ", "), n.Line)
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		p := join(path, k.Value)
		cfg, ok := rs[k.Value]
		if !ok {
			v.problems = append(v.problems, fmt.Sprintf("%s: unknown key (line %d); the remedies are %s", p, k.Line, strings.Join(policy.RemedyNames(), ", ")))
			continue
		}
		if val.Kind != yaml.MappingNode {
			if val.Tag != "!!null" {
				v.addf(p, "must be a mapping of settings (line %d)", val.Line)
			}
			continue
		}
		pr := &params{v: v, path: p, node: val, asked: map[string]bool{}}
		cfg.Configure(pr)
		pr.unknown()
	}
}

// params implements policy.Params over one remedy's YAML mapping.
type params struct {
	v     *validator
	path  string
	node  *yaml.Node
	asked map[string]bool
}

var _ policy.Params = (*params)(nil)

// value returns the scalar under key, nil when absent (or null: "not set").
func (p *params) value(key string) *yaml.Node {
	p.asked[key] = true
	for i := 0; i+1 < len(p.node.Content); i += 2 {
		if p.node.Content[i].Value != key {
			continue
		}
		val := p.node.Content[i+1]
		if val.Tag == "!!null" {
			return nil
		}
		if val.Kind != yaml.ScalarNode {
			p.v.addf(join(p.path, key), "must be a single value (line %d)", val.Line)
			return nil
		}
		return val
	}
	return nil
}

func (p *params) Bool(key string, dst *bool) {
	n := p.value(key)
	if n == nil {
		return
	}
	var b bool
	if err := n.Decode(&b); err != nil || n.Tag != "!!bool" {
		p.v.addf(join(p.path, key), "%q is not true or false", n.Value)
		return
	}
	*dst = b
}

func (p *params) Int(key string, dst *int, minValue int) {
	n := p.value(key)
	if n == nil {
		return
	}
	var i int
	if err := n.Decode(&i); err != nil || n.Tag != "!!int" {
		p.v.addf(join(p.path, key), "%q is not a whole number", n.Value)
		return
	}
	if i < minValue {
		p.v.addf(join(p.path, key), "%d must be at least %d", i, minValue)
		return
	}
	*dst = i
}

func (p *params) Positive(key string, dst *float64) {
	n := p.value(key)
	if n == nil {
		return
	}
	var f float64
	if err := n.Decode(&f); err != nil || (n.Tag != "!!int" && n.Tag != "!!float") {
		p.v.addf(join(p.path, key), "%q is not a number", n.Value)
		return
	}
	p.v.positive(join(p.path, key), &f, dst)
}

func (p *params) Duration(key string, dst *time.Duration, minValue time.Duration) {
	if n := p.value(key); n != nil {
		p.v.duration(join(p.path, key), &n.Value, dst, minValue)
	}
}

func (p *params) Size(key string, dst *int64) {
	if n := p.value(key); n != nil {
		p.v.size(join(p.path, key), &n.Value, dst)
	}
}

func (p *params) Problem(key, format string, args ...any) {
	p.v.addf(join(p.path, key), format, args...)
}

// unknown reports the keys of the mapping no Configure call asked for.
func (p *params) unknown() {
	var known []string
	for k := range p.asked {
		known = append(known, k)
	}
	slices.Sort(known)
	for i := 0; i+1 < len(p.node.Content); i += 2 {
		k := p.node.Content[i]
		if !p.asked[k.Value] {
			p.v.problems = append(p.v.problems, fmt.Sprintf("%s: unknown key (line %d); known: %s", join(p.path, k.Value), k.Line, strings.Join(known, ", ")))
		}
	}
}
