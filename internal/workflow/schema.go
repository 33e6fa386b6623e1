package workflow

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
)

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("marshal schema: %v", err)) // only YAML-decoded values reach here
	}
	return b
}

// checkObjectSchema checks that a tool's parameters are a JSON Schema of an
// object, which is what the OpenAI tools API accepts.
func checkObjectSchema(s map[string]any) error {
	if t, _ := s["type"].(string); t != "object" {
		return fmt.Errorf("want a JSON Schema with type: object, got type %v", s["type"])
	}
	if p, ok := s["properties"]; ok {
		if _, isMap := p.(map[string]any); !isMap {
			return fmt.Errorf("properties must be a mapping")
		}
	}
	if r, ok := s["required"]; ok {
		list, isList := r.([]any)
		if !isList {
			return fmt.Errorf("required must be a list")
		}
		props, _ := s["properties"].(map[string]any)
		for _, x := range list {
			name, _ := x.(string)
			if _, ok := props[name]; !ok {
				return fmt.Errorf("required names %v, which is not in properties", x)
			}
		}
	}
	if _, err := json.Marshal(s); err != nil {
		return fmt.Errorf("not representable as JSON: %v", err)
	}
	return nil
}

func builtinParams(wf *Workflow, t *Tool) map[string]any {
	switch t.Builtin {
	case BuiltinSetContext:
		if t.Variable != "" {
			return map[string]any{"type": "object", "properties": map[string]any{
				"value": map[string]any{"description": "new value of " + t.Variable},
			}, "required": []any{"value"}}
		}
		return map[string]any{"type": "object", "properties": map[string]any{
			"name":  map[string]any{"type": "string", "description": "context variable name"},
			"value": map[string]any{"description": "new value"},
		}, "required": []any{"name", "value"}}
	case BuiltinHandoff:
		targets := t.Targets
		if len(targets) == 0 {
			for _, a := range wf.Agents {
				targets = append(targets, a.Name)
			}
		}
		enum := make([]any, len(targets))
		for i, a := range targets {
			enum[i] = a
		}
		return map[string]any{"type": "object", "properties": map[string]any{
			"agent": map[string]any{"type": "string", "enum": enum, "description": "the agent to hand the conversation to"},
		}, "required": []any{"agent"}}
	default:
		return map[string]any{"type": "object", "properties": map[string]any{
			"reason": map[string]any{"type": "string"},
		}}
	}
}

const maxModelDepth = 8

func modelSchema(models map[string]OutputModel, name string, depth int) (map[string]any, error) {
	if depth > maxModelDepth {
		return nil, fmt.Errorf("models nest deeper than %d (a cycle?)", maxModelDepth)
	}
	m := models[name]
	props := map[string]any{}
	required := []any{}
	for _, fn := range sortedKeys(m.Fields) {
		s, err := fieldSchema(models, m.Fields[fn], depth)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", name, fn, err)
		}
		props[fn] = s
		// strict structured outputs need every field listed as required;
		// optional fields accept null instead
		required = append(required, fn)
	}
	return map[string]any{"type": "object", "properties": props, "required": required, "additionalProperties": false}, nil
}

func fieldSchema(models map[string]OutputModel, f OutputField, depth int) (map[string]any, error) {
	var s map[string]any
	switch typ := normalizeType(f.Type); typ {
	case "literal":
		if len(f.Values) == 0 && len(f.Enum) == 0 {
			return nil, fmt.Errorf("a literal needs values")
		}
		s = map[string]any{"type": "string"}
		f.Enum = append(append([]string(nil), f.Enum...), f.Values...)
	case "string", "integer", "number", "boolean":
		s = map[string]any{"type": typ}
	case "object":
		s = map[string]any{"type": "object"}
	case "array":
		items := map[string]any{}
		if f.Items != "" {
			it, err := fieldSchema(models, OutputField{Type: f.Items}, depth+1)
			if err != nil {
				return nil, err
			}
			items = it
		}
		s = map[string]any{"type": "array", "items": items}
	case "":
		return nil, fmt.Errorf("missing type")
	default:
		if _, ok := models[f.Type]; !ok {
			return nil, fmt.Errorf("unknown type %q: want str, int, float, bool, list, dict or a model name", f.Type)
		}
		ms, err := modelSchema(models, f.Type, depth+1)
		if err != nil {
			return nil, err
		}
		s = ms
	}
	if f.Description != "" {
		s["description"] = f.Description
	}
	if len(f.Enum) > 0 {
		enum := make([]any, len(f.Enum))
		for i, e := range f.Enum {
			enum[i] = e
		}
		s["enum"] = enum
	}
	if f.Optional {
		s["type"] = []any{s["type"], "null"}
		if e, ok := s["enum"].([]any); ok {
			s["enum"] = append(e, nil)
		}
	}
	return s, nil
}

func normalizeType(t string) string {
	switch strings.ToLower(t) {
	case "str", "string", "text":
		return "string"
	case "int", "integer":
		return "integer"
	case "float", "number":
		return "number"
	case "bool", "boolean":
		return "boolean"
	case "dict", "object", "map":
		return "object"
	case "list", "array":
		return "array"
	case "literal", "enum":
		return "literal"
	case "":
		return ""
	}
	return t
}

// ValidateJSON checks v (decoded JSON) against the subset of JSON Schema the
// workflow layer produces: type (or list of types), properties, required,
// additionalProperties: false, items and enum. It returns every violation.
func ValidateJSON(schema json.RawMessage, v any) []string {
	var s map[string]any
	if err := json.Unmarshal(schema, &s); err != nil {
		return []string{"invalid schema: " + err.Error()}
	}
	var errs []string
	validate(s, v, "$", &errs)
	return errs
}

func validate(s map[string]any, v any, path string, errs *[]string) {
	if t, ok := s["type"]; ok {
		var types []string
		switch x := t.(type) {
		case string:
			types = []string{x}
		case []any:
			for _, e := range x {
				if str, ok := e.(string); ok {
					types = append(types, str)
				}
			}
		}
		if !matchesAny(types, v) {
			*errs = append(*errs, fmt.Sprintf("%s: want %s, got %s", path, strings.Join(types, " or "), jsonType(v)))
			return
		}
	}
	if enum, ok := s["enum"].([]any); ok {
		found := false
		for _, e := range enum {
			if fmt.Sprint(e) == fmt.Sprint(v) && (e == nil) == (v == nil) {
				found = true
			}
		}
		if !found {
			*errs = append(*errs, fmt.Sprintf("%s: %v is not one of %v", path, v, enum))
		}
	}
	switch x := v.(type) {
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				name, _ := r.(string)
				if _, present := x[name]; !present {
					*errs = append(*errs, fmt.Sprintf("%s: missing required field %q", path, name))
				}
			}
		}
		keys := sortedKeys(x)
		for _, k := range keys {
			if ps, ok := props[k].(map[string]any); ok {
				validate(ps, x[k], path+"."+k, errs)
			} else if ap, ok := s["additionalProperties"].(bool); ok && !ap {
				*errs = append(*errs, fmt.Sprintf("%s: unexpected field %q", path, k))
			}
		}
	case []any:
		if items, ok := s["items"].(map[string]any); ok {
			for i, e := range x {
				validate(items, e, fmt.Sprintf("%s[%d]", path, i), errs)
			}
		}
	}
}

func matchesAny(types []string, v any) bool {
	if len(types) == 0 {
		return true
	}
	got := jsonType(v)
	for _, t := range types {
		if t == got || (t == "number" && got == "integer") {
			return true
		}
	}
	return false
}

func jsonType(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		if x == math.Trunc(x) && !math.IsInf(x, 0) {
			return "integer"
		}
		return "number"
	case json.Number:
		if strings.ContainsAny(string(x), ".eE") {
			return "number"
		}
		return "integer"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

var _ = sort.Strings
