package workflow

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"unicode/utf8"
)

// FuzzParseExpr: the handoff expression parser never panics, and what it
// accepts evaluates (without panicking) against any variables.
func FuzzParseExpr(f *testing.F) {
	for _, s := range []string{`${stage} == "review"`, `not ${off} and ${count} >= 3`, `!${done}`, `${a} < 1 or (${b} != 'x')`,
		`${missing} == None`, `((${a}))`, `${`, `"unterminated`, `${a} ==`, `1.5e3 > ${x}`, "${\xff}", `${a} == "\\"`} {
		f.Add(s)
	}
	vars := map[string]any{"a": 1, "b": "x", "stage": "review", "count": 3.5, "done": true, "off": false, "x": nil}
	f.Fuzz(func(t *testing.T, src string) {
		e, err := ParseExpr(src)
		if err != nil {
			if e != nil {
				t.Fatalf("ParseExpr(%q) returned an expression and an error", src)
			}
			return
		}
		if e.String() != src {
			t.Fatalf("String() = %q, want the source %q", e.String(), src)
		}
		_ = e.Eval(vars)
		_ = e.Eval(nil)
		for _, v := range e.Vars() {
			if v == "" {
				t.Fatalf("ParseExpr(%q): empty variable name", src)
			}
		}
	})
}

// FuzzLoadWorkflow: the YAML loader never panics on any folder content, and
// returns either a workflow or at least one error diagnostic.
func FuzzLoadWorkflow(f *testing.F) {
	read := func(dir, name string) string {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		return string(b)
	}
	for _, dir := range []string{"testdata/set/good", "testdata/set/badexpr", "testdata/set/badrefs", "testdata/set/badtools",
		"testdata/set/badyaml", "../../workflows/assistant", "../../workflows/approval", "../../workflows/triage"} {
		f.Add(read(dir, "orchestrator.yaml"), read(dir, "agents.yaml"), read(dir, "handoffs.yaml"), read(dir, "tools.yaml"),
			read(dir, "context_variables.yaml"))
	}
	f.Add("workflow_name: x\nmax_turns: -1\n", "agents: [{name: A, system_message: hi}]", "handoff_rules: [{source_agent: A}]", "tools: 7", "definitions: {}")
	f.Add("&a [*a]", "agents: &x\n  - *x", "", "", "")
	f.Fuzz(func(t *testing.T, orch, agents, handoffs, tools, ctxvars string) {
		fsys := fstest.MapFS{}
		for name, body := range map[string]string{"orchestrator.yaml": orch, "agents.yaml": agents, "handoffs.yaml": handoffs,
			"tools.yaml": tools, "context_variables.yaml": ctxvars} {
			if body != "" {
				fsys["wf/"+name] = &fstest.MapFile{Data: []byte(body)}
			}
		}
		wf, diags := load(fsys, "wf", "wf", "wf")
		if wf == nil && !HasErrors(diags) {
			t.Fatalf("no workflow and no error diagnostic")
		}
		if wf != nil && HasErrors(diags) {
			t.Fatalf("a workflow with error diagnostics: %v", diags)
		}
		for _, d := range diags {
			if !utf8.ValidString(d.String()) && utf8.ValidString(orch+agents+handoffs+tools+ctxvars) {
				t.Fatalf("diagnostic is not valid UTF-8: %q", d.String())
			}
			if strings.TrimSpace(d.Message) == "" {
				t.Fatalf("diagnostic without a message: %+v", d)
			}
		}
	})
}
