package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mozaiks/mozaiks/internal/uerr"
	"github.com/mozaiks/mozaiks/workflows"
)

const brokenSet = "../workflow/testdata/set"

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, IO{In: strings.NewReader(""), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

func TestWorkflowsValidate(t *testing.T) {
	t.Parallel()
	code, out, errOut := runCLI(t, "workflows", "validate", brokenSet)
	if code != uerr.ExitFailed {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{
		`../workflow/testdata/set/dupagent/agents.yaml:6: agents[2].name: duplicate agent name "Planner"`,
		`../workflow/testdata/set/warnonly/orchestrator.yaml:2: colour: warning: unknown key "colour" (ignored)`,
		`../workflow/testdata/set/badexpr/handoffs.yaml:6: handoff_rules[0].condition: column 6: unexpected "="`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "2 workflow(s) valid") || !strings.Contains(errOut, "Error: ") {
		t.Errorf("stderr = %s", errOut)
	}

	// One valid folder, validated on its own: warnings only, exit 0.
	code, out, _ = runCLI(t, "workflows", "validate", brokenSet+"/warnonly")
	if code != 0 || strings.Count(out, "warning:") != 2 {
		t.Errorf("warnonly: exit %d, output:\n%s", code, out)
	}
	code, _, _ = runCLI(t, "workflows", "validate", brokenSet+"/nope")
	if code != uerr.ExitUsage {
		t.Errorf("missing dir: exit %d, want 2", code)
	}
}

func TestWorkflowsValidateJSON(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	err := runWorkflowsValidate(context.Background(), &WorkflowsOptions{IO: IO{Out: &out, Err: &bytes.Buffer{}}, Path: brokenSet, JSON: true})
	if e, ok := uerr.As(err); !ok || e.ExitCode() != uerr.ExitFailed {
		t.Errorf("err = %v", err)
	}
	var got struct {
		Valid       []string
		Diagnostics []struct{ File, Field, Severity, Message string }
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got.Valid, ",") != "good,warnonly" || len(got.Diagnostics) < 15 {
		t.Errorf("got %+v", got)
	}
}

func TestWorkflowsList(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	opts := &WorkflowsOptions{IO: IO{Out: &out, Err: &errb}, Builtin: workflows.FS, JSON: true,
		Environ: []string{"MOZAIKS_WORKFLOWS_PATH=" + brokenSet}}
	if err := runWorkflowsList(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	var entries []struct {
		WorkflowName string `json:"workflow_name"`
		Source       string `json:"source"`
		Pattern      string `json:"orchestration_pattern"`
	}
	if err := json.Unmarshal(out.Bytes(), &entries); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.WorkflowName+"@"+e.Source)
	}
	if got := strings.Join(names, " "); got != "approval@builtin:approval assistant@builtin:assistant good@../workflow/testdata/set/good triage@builtin:triage warnonly@../workflow/testdata/set/warnonly" {
		t.Errorf("list = %s", got)
	}
	if !strings.Contains(errb.String(), "8 workflow folder(s)") {
		t.Errorf("stderr = %q", errb.String())
	}
	code, table, _ := runCLI(t, "workflows", "list", "--path", t.TempDir())
	if code != 0 || !strings.Contains(table, "assistant  UserDriven   DefaultPattern  Assistant") {
		t.Errorf("exit %d table:\n%s", code, table)
	}
	if strings.Contains(out.String()+table, "system_message") || strings.Contains(out.String(), "helpful, concise") {
		t.Error("list leaks prompts")
	}
}
