package engine

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/mozaiks/mozaiks/internal/workflow"
)

// initContext fills State.Context: config variables are read from the
// environment on every run (an operator may change them); state variables
// get their default once and then keep what triggers and tools set.
func (r *run) initContext() {
	if r.st.Context == nil {
		r.st.Context = map[string]any{}
	}
	if r.st.AutoReplies == nil {
		r.st.AutoReplies = map[string]int{}
	}
	for _, cv := range r.wf.ContextVars {
		switch cv.Source.Type {
		case workflow.ContextSourceConfig:
			if v := r.e.opts.Getenv(cv.Source.EnvVar); v != "" {
				r.st.Context[cv.Name] = coerce(cv.Type, v)
			} else {
				r.st.Context[cv.Name] = jsonSafe(cv.Source.Default)
			}
		default:
			if _, ok := r.st.Context[cv.Name]; !ok {
				r.st.Context[cv.Name] = jsonSafe(cv.Source.Default)
			}
		}
	}
}

// mergeInputContext takes context sent with a user message, but only for
// declared state variables: a client must not overwrite configuration.
func (r *run) mergeInputContext(in map[string]any) {
	for k, v := range in {
		if cv, ok := r.wf.ContextVar(k); ok && cv.Source.Type == workflow.ContextSourceState {
			r.st.Context[k] = v
		}
	}
}

// coerce converts an environment string to the variable's declared type.
func coerce(typ, s string) any {
	switch typ {
	case "integer", "int", "number", "float":
		if f, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil {
			return f
		}
	case "boolean", "bool":
		if b, err := strconv.ParseBool(strings.TrimSpace(s)); err == nil {
			return b
		}
	}
	return s
}

// jsonSafe turns YAML-decoded values into what JSON decoding produces, so a
// state that went through the store compares the same as a fresh one.
func jsonSafe(v any) any {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Sprint(v)
	}
	return out
}

var placeholderRE = regexp.MustCompile(`\$?\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// render substitutes {var} and ${var} for context variables. Braces that do
// not name a variable (JSON examples in prompts) are left alone.
func (r *run) render(s string) string {
	if strings.IndexByte(s, '{') < 0 {
		return s // no placeholder: the regexp would scan every position for one
	}
	return placeholderRE.ReplaceAllStringFunc(s, func(m string) string {
		name := placeholderRE.FindStringSubmatch(m)[1]
		v, ok := r.st.Context[name]
		if !ok {
			if _, declared := r.wf.ContextVar(name); !declared {
				return m
			}
		}
		switch x := v.(type) {
		case nil:
			return ""
		case string:
			return x
		case float64:
			return strconv.FormatFloat(x, 'f', -1, 64)
		default:
			b, _ := json.Marshal(x)
			return string(b)
		}
	})
}

func (r *run) systemPrompt(a *workflow.Agent) string {
	if len(a.PromptSections) == 0 {
		return r.render(a.SystemMessage)
	}
	var b strings.Builder
	for i, s := range a.PromptSections {
		if i > 0 {
			b.WriteString("\n\n")
		}
		if s.Heading != "" {
			b.WriteString(r.render(s.Heading))
			b.WriteString("\n")
		}
		b.WriteString(r.render(strings.TrimSpace(s.Content)))
	}
	return b.String()
}

func (r *run) applyTextTriggers(agent, text string) {
	lower := strings.ToLower(text)
	for _, cv := range r.wf.ContextVars {
		for _, t := range cv.Source.Triggers {
			if t.Type != workflow.TriggerAgentText || (t.Agent != "" && t.Agent != agent) {
				continue
			}
			hit := (t.Contains != "" && strings.Contains(lower, strings.ToLower(t.Contains))) ||
				(t.Equals != "" && strings.EqualFold(strings.TrimSpace(text), t.Equals))
			if hit {
				v := any(true)
				if t.Value != nil {
					v = jsonSafe(t.Value)
				}
				r.st.Context[cv.Name] = v
			}
		}
	}
}

func (r *run) applyUITriggers(tool string, resp map[string]any) {
	for _, cv := range r.wf.ContextVars {
		for _, t := range cv.Source.Triggers {
			if t.Type != workflow.TriggerUIResponse || t.Tool != tool {
				continue
			}
			if t.ResponseKey != "" {
				if v, ok := resp[t.ResponseKey]; ok {
					r.st.Context[cv.Name] = jsonSafe(v)
				}
				continue
			}
			r.st.Context[cv.Name] = jsonSafe(t.Value)
		}
	}
}
