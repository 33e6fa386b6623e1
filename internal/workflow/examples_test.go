package workflow_test

import (
	"slices"
	"testing"

	"github.com/mozaiks/mozaiks/internal/workflow"
	"github.com/mozaiks/mozaiks/workflows"
)

func TestEmbeddedExamplesLoadCleanly(t *testing.T) {
	t.Parallel()
	set, diags := workflow.LoadSet("", workflows.FS)
	for _, d := range diags {
		t.Errorf("diagnostic: %s", d)
	}
	if got := set.Names(); !slices.Equal(got, []string{"approval", "assistant", "triage"}) {
		t.Errorf("names = %v", got)
	}
	m, _ := set.Manifest("assistant")
	if m.StartupMode != workflow.StartupUserDriven || m.EntryPoint != "Assistant" {
		t.Errorf("assistant manifest = %+v", m)
	}
	m, _ = set.Manifest("approval")
	if len(m.Tools) != 1 || m.Tools[0].Component != "ActionPlan" || m.Tools[0].Mode != "inline" {
		t.Errorf("approval manifest tools = %+v", m.Tools)
	}
}
