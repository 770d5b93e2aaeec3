package config

import (
	"fmt"
	"reflect"
	"strings"

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

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
