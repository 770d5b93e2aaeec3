package config

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"
)

func typeOf(x any) reflect.Type { return reflect.TypeOf(x) }

// checkKeys walks the document against the raw types and reports every key that
// the guardian does not know, with its full path and line.
func (v *validator) checkKeys(n *yaml.Node, t reflect.Type, path string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeOf(yaml.Node{}) {
		return // a section read by its owner (remedies), which reports its own unknown keys
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			v.checkKeys(c, t, path)
		}
	case yaml.MappingNode:
		if t.Kind() != reflect.Struct {
			return // a type mismatch; Decode reports it
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			ft, ok := fields[k.Value]
			if !ok {
				v.problems = append(v.problems, fmt.Sprintf("%s: unknown key (line %d)", p, k.Line))
				continue
			}
			v.checkKeys(val, ft, p)
		}
	case yaml.SequenceNode:
		if t.Kind() != reflect.Slice {
			return
		}
		for i, c := range n.Content {
			v.checkKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	}
}

// yamlFields maps yaml key names to field types, following inline embeddings.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if opts == "inline" {
			for k, ft := range yamlFields(f.Type) {
				out[k] = ft
			}
			continue
		}
		if name == "" || name == "-" {
			continue
		}
		out[name] = f.Type
	}
	return out
}

// join appends key to path. A key that is not a word of the config's own
// alphabet is quoted, so the path still names it: an empty key made the problem
// ": unknown key (line 1)", and a key holding a newline or a dot misled.
func join(path, key string) string {
	if !plainKeyRE.MatchString(key) {
		key = strconv.Quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// plainKeyRE matches every key the config knows, and the typos of them worth
// showing as they were written.
var plainKeyRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// oneLine escapes the control characters of a problem (a path given in the
// document, a value in an error from the system): check-config prints one
// problem a line, and a reload logs them to the journal.
func oneLine(problems []string) []string {
	for i, p := range problems {
		if strings.IndexFunc(p, unicode.IsControl) < 0 {
			continue
		}
		var b strings.Builder
		for _, r := range p {
			if unicode.IsControl(r) {
				q := strconv.QuoteRune(r)
				b.WriteString(q[1 : len(q)-1])
				continue
			}
			b.WriteRune(r)
		}
		problems[i] = b.String()
	}
	return problems
}
