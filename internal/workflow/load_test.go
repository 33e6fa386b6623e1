package workflow

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func loadTestdata(t *testing.T) (*Set, []string) {
	t.Helper()
	set, diags := LoadSet("testdata/set", nil)
	var lines []string
	for _, d := range diags {
		lines = append(lines, d.String())
	}
	return set, lines
}

func TestLoadSetDiagnostics(t *testing.T) {
	t.Parallel()
	set, lines := loadTestdata(t)
	want := []string{
		`testdata/set/dupagent/agents.yaml:6: agents[2].name: duplicate agent name "Planner"`,
		`testdata/set/badexpr/handoffs.yaml:6: handoff_rules[0].condition: column 6: unexpected "=" (use == to compare)`,
		`testdata/set/badrefs/orchestrator.yaml:1: initial_agent: unknown agent "Nobody"`,
		`testdata/set/badrefs/orchestrator.yaml:2: orchestration_pattern: unknown pattern "FancyPattern": want DefaultPattern, RoundRobinPattern, RandomPattern or AutoPattern`,
		`testdata/set/badrefs/orchestrator.yaml:3: startup_mode: unknown startup mode "Sometimes": want AgentDriven or UserDriven`,
		`testdata/set/badrefs/handoffs.yaml:3: handoff_rules[0].target_agent: unknown target "Ghost": want an agent, user or terminate`,
		`testdata/set/badrefs/handoffs.yaml:6: handoff_rules[1].handoff_type: unknown handoff type "sometimes": want after_work or condition`,
		`testdata/set/badtools/tools.yaml:2: tools[0].url: an http tool needs url`,
		`testdata/set/badtools/tools.yaml:5: tools[1].component: a ui tool needs component`,
		`testdata/set/badtools/tools.yaml:8: tools[2].builtin: unknown builtin "magic": want set_context_variable, end_conversation, terminate or handoff`,
		`testdata/set/badtools/tools.yaml:11: tools[3].agent: unknown agent "B"`,
		`testdata/set/badtools/tools.yaml:13: tools[3].kind: unknown kind "shell": want http, ui or builtin`,
		`testdata/set/badtools/tools.yaml:18: tools[4].parameters: want a JSON Schema with type: object, got type string`,
		`testdata/set/badyaml/orchestrator.yaml:2: invalid YAML: mapping values are not allowed in this context`,
		`testdata/set/noagents/agents.yaml: missing required file`,
		`testdata/set/warnonly/orchestrator.yaml:2: colour: warning: unknown key "colour" (ignored)`,
		`testdata/set/warnonly/agents.yaml:4: agents[0].mood: warning: unknown key "mood" (ignored)`,
		`testdata/set/badschema/orchestrator.yaml:1: max_turns: cannot unmarshal !!str ` + "`many`" + ` into int`,
		`testdata/set/bad name: invalid workflow name: want 1-128 characters of A-Z a-z 0-9 . _ : @ -`,
	}
	for _, w := range want {
		if !slices.Contains(lines, w) {
			t.Errorf("missing diagnostic\n  %s\ngot:\n  %s", w, strings.Join(lines, "\n  "))
		}
	}
	if got := set.Names(); !slices.Equal(got, []string{"good", "warnonly"}) {
		t.Errorf("loaded %v, want [good warnonly]", got)
	}
}

func TestLoadSetBadSchemaFile(t *testing.T) {
	t.Parallel()
	// A type error in one file stops that folder before semantic checks;
	// this folder's other problems are checked on a fixed copy.
	dir := t.TempDir()
	src := "testdata/set/badschema"
	dst := filepath.Join(dir, "badschema")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"agents.yaml", "structured_outputs.yaml"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dst, "orchestrator.yaml"), []byte("max_turns: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	set, diags := LoadSet(dir, nil)
	var lines []string
	for _, d := range diags {
		lines = append(lines, strings.TrimPrefix(d.String(), filepath.ToSlash(dir)+"/"))
	}
	for _, w := range []string{
		`badschema/agents.yaml:4: agents[0].temperature: want a number between 0 and 2, got 5`,
		`badschema/structured_outputs.yaml:4: models.M.fields.x.type: unknown type "quaternion": want str, int, float, bool, list, dict or a model name`,
		`badschema/structured_outputs.yaml:6: registry.A: unknown model "Missing"`,
	} {
		if !slices.Contains(lines, w) {
			t.Errorf("missing diagnostic\n  %s\ngot:\n  %s", w, strings.Join(lines, "\n  "))
		}
	}
	if len(set.Names()) != 0 {
		t.Errorf("loaded %v, want none", set.Names())
	}
}

func TestLoadGoodWorkflow(t *testing.T) {
	t.Parallel()
	set, _ := loadTestdata(t)
	wf, ok := set.Get("good")
	if !ok {
		t.Fatal("good not loaded")
	}
	if wf.Orchestrator.MaxTurns != 7 || wf.Orchestrator.InitialAgent != "Planner" {
		t.Errorf("orchestrator = %+v", wf.Orchestrator)
	}
	p, _ := wf.Agent("Planner")
	if p.Model != "gpt-test-planner" || p.Temperature == nil || *p.Temperature != 0.3 || p.MaxTokens != 111 {
		t.Errorf("Planner = %+v", p)
	}
	h := wf.Handoffs
	if h[0].HandoffType != HandoffCondition || h[0].ConditionType != ConditionExpression || h[0].Expr == nil {
		t.Errorf("handoff 0 = %+v", h[0])
	}
	if !h[0].Expr.Eval(map[string]any{"stage": "review", "done": false}) {
		t.Error("handoff 0 expression should hold")
	}
	if h[1].HandoffType != HandoffAfterWork || h[1].TargetAgent != TargetUser || h[2].TargetAgent != TargetTerminate {
		t.Errorf("handoffs = %+v", h)
	}
	lookup := wf.ToolsFor("Planner")[0]
	if lookup.TimeoutMS != defaultHTTPTimeoutMS || lookup.MaxResponseBytes != defaultHTTPMaxBytes {
		t.Errorf("http defaults = %d, %d", lookup.TimeoutMS, lookup.MaxResponseBytes)
	}
	end := wf.ToolsFor("Reviewer")[0]
	if end.Builtin != BuiltinEnd || !strings.Contains(string(end.Schema()), `"type":"object"`) {
		t.Errorf("builtin = %+v %s", end, end.Schema())
	}
	var schema map[string]any
	if err := json.Unmarshal(wf.ResponseSchema("Reviewer"), &schema); err != nil {
		t.Fatal(err)
	}
	if got := schema["required"]; len(got.([]any)) != 3 {
		t.Errorf("required = %v", got)
	}
	if wf.ResponseSchema("Planner") != nil {
		t.Error("Planner registered to null should have no schema")
	}
	for _, c := range []struct {
		v    string
		errs int
	}{
		{`{"verdict":"ok","score":3,"notes":null}`, 0},
		{`{"verdict":"ok","score":3,"notes":["a"]}`, 0},
		{`{"verdict":"meh","score":3,"notes":null}`, 1},
		{`{"verdict":"ok","score":"3","notes":null}`, 1},
		{`{"verdict":"ok","score":3.5,"notes":null}`, 1},
		{`{"verdict":"ok"}`, 2},
		{`{"verdict":"ok","score":1,"notes":null,"extra":1}`, 1},
		{`[1]`, 1},
	} {
		var v any
		if err := json.Unmarshal([]byte(c.v), &v); err != nil {
			t.Fatal(err)
		}
		if errs := ValidateJSON(wf.ResponseSchema("Reviewer"), v); len(errs) != c.errs {
			t.Errorf("ValidateJSON(%s) = %v, want %d errors", c.v, errs, c.errs)
		}
	}
}

func TestManifest(t *testing.T) {
	t.Parallel()
	set, _ := loadTestdata(t)
	m, ok := set.Manifest("good")
	if !ok {
		t.Fatal("no manifest")
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"workflow_name":"good","startup_mode":"AgentDriven","human_in_the_loop":true,"initial_message_to_user":"","visual_agents":["Planner"],"entry_point":"Planner","agents":["Planner","Reviewer"],"tools":[{"ui_tool_id":"confirm","component":"ConfirmCard","mode":"artifact","agent":"Planner","workflow":"good"}]}`
	if string(b) != want {
		t.Errorf("manifest\n got %s\nwant %s", b, want)
	}
	for _, secret := range []string{"example.com", "LOOKUP_TOKEN", "Plan for", "Review."} {
		if strings.Contains(string(b), secret) {
			t.Errorf("manifest leaks %q", secret)
		}
	}
	if _, ok := set.Manifest("nope"); ok {
		t.Error("manifest of unknown workflow")
	}
	var none *Set
	if _, ok := none.Get("good"); ok || none.Names() != nil {
		t.Error("a nil set should be empty")
	}
}

func TestDiskOverridesBuiltin(t *testing.T) {
	t.Parallel()
	builtin := fstest.MapFS{
		"hello/orchestrator.yaml":  {Data: []byte("startup_mode: UserDriven\n")},
		"hello/agents.yaml":        {Data: []byte("agents:\n  - name: Builtin\n    system_message: x\n")},
		"other/orchestrator.yaml":  {Data: []byte("max_turns: 3\n")},
		"other/agents.yaml":        {Data: []byte("agents:\n  - name: Other\n    system_message: x\n")},
		"broken/orchestrator.yaml": {Data: []byte("max_turns: 3\n")},
		"notes/README.md":          {Data: []byte("not a workflow")},
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "hello"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, "hello", name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("orchestrator.yaml", "startup_mode: AgentDriven\n")
	write("agents.yaml", "agents:\n  - name: Disk\n    system_message: y\n")
	set, diags := LoadSet(dir, builtin)
	if got := set.Names(); !slices.Equal(got, []string{"hello", "other"}) {
		t.Errorf("names = %v", got)
	}
	wf, _ := set.Get("hello")
	if wf.Agents[0].Name != "Disk" || wf.Orchestrator.StartupMode != StartupAgentDriven {
		t.Errorf("hello came from %s", wf.Source)
	}
	if len(diags) != 1 || diags[0].File != "builtin:broken/agents.yaml" {
		t.Errorf("diags = %v", diags)
	}
	// a missing directory is not an error: the built-ins still serve
	set, diags = LoadSet(filepath.Join(dir, "absent"), builtin)
	if len(set.Names()) != 2 || len(diags) != 1 {
		t.Errorf("absent dir: names %v diags %v", set.Names(), diags)
	}
}

func TestContextTriggerReferences(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{
		"w/orchestrator.yaml": {Data: []byte("max_turns: 3\n")},
		"w/agents.yaml":       {Data: []byte("agents:\n  - {name: A, system_message: a}\n")},
		"w/context_variables.yaml": {Data: []byte(`definitions:
  - name: ok
    source:
      type: state
      triggers:
        - {type: ui_response, tool: nosuch, response_key: x}
        - {type: agent_text, agent: Ghost, contains: hi}
        - {type: webhook}
  - name: ok
    type: colour
    source: {type: config}
`)},
	}
	_, diags := LoadSet("", fsys)
	var lines []string
	for _, d := range diags {
		lines = append(lines, d.String())
	}
	want := []string{
		`builtin:w/context_variables.yaml:6: definitions[0].source.triggers[0].tool: unknown ui tool "nosuch"`,
		`builtin:w/context_variables.yaml:7: definitions[0].source.triggers[1].agent: unknown agent "Ghost"`,
		`builtin:w/context_variables.yaml:8: definitions[0].source.triggers[2].type: unknown trigger "webhook": want agent_text or ui_response`,
		`builtin:w/context_variables.yaml:9: definitions[1].name: duplicate variable "ok"`,
		`builtin:w/context_variables.yaml:10: definitions[1].type: unknown type "colour"`,
		`builtin:w/context_variables.yaml:11: definitions[1].source.env_var: a config variable needs env_var`,
	}
	if !slices.Equal(lines, want) {
		t.Errorf("diagnostics:\n  %s\nwant:\n  %s", strings.Join(lines, "\n  "), strings.Join(want, "\n  "))
	}
}

// The original MozaiksAI layout: agents as a mapping, UI tools declared with
// tool_type and ui:, literal fields, environment sources.
func TestOriginalLayout(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{
		"Gen/orchestrator.yaml": {Data: []byte("workflow_name: Gen\nmax_turns: 20\nhuman_in_the_loop: true\nstartup_mode: AgentDriven\norchestration_pattern: DefaultPattern\nrecipient: PlannerAgent\nvisual_agents: [PlannerAgent]\n")},
		"Gen/agents.yaml": {Data: []byte(`agents:
  PlannerAgent:
    system_message: Plan.
    max_consecutive_auto_reply: 5
    auto_tool_mode: true
    structured_outputs_required: true
  PyAgent:
    system_message: Run.
`)},
		"Gen/tools.yaml": {Data: []byte(`tools:
  - agent: PlannerAgent
    file: action_plan.py
    function: action_plan
    description: Show the plan
    tool_type: UI_Tool
    ui: {component: ActionPlan, mode: artifact}
`)},
		"Gen/context_variables.yaml": {Data: []byte("context_variables:\n  definitions:\n    api_base:\n      type: string\n      source: {type: environment, env_var: API_BASE, default: x}\n")},
		"Gen/structured_outputs.yaml": {Data: []byte(`structured_outputs:
  models:
    Plan:
      type: model
      fields:
        kind: {type: literal, values: [a, b]}
  registry:
    PlannerAgent: Plan
    PyAgent: null
`)},
		"Py/orchestrator.yaml": {Data: []byte("max_turns: 3\n")},
		"Py/agents.yaml":       {Data: []byte("agents:\n  A: {system_message: a}\n")},
		"Py/tools.yaml":        {Data: []byte("tools:\n  - {agent: A, name: calc, file: calc.py, function: calc, tool_type: Agent_Tool}\n")},
	}
	set, diags := LoadSet("", fsys)
	var lines []string
	for _, d := range diags {
		lines = append(lines, d.String())
	}
	want := []string{`builtin:Py/tools.yaml:2: tools[0].file: Python tools (file: calc.py) cannot run in mozaiks: declare the tool with kind: http (and serve it over HTTP), ui or builtin`}
	if !slices.Equal(lines, want) {
		t.Errorf("diagnostics:\n  %s\nwant:\n  %s", strings.Join(lines, "\n  "), strings.Join(want, "\n  "))
	}
	wf, ok := set.Get("Gen")
	if !ok {
		t.Fatal("Gen not loaded")
	}
	tool := wf.Tools[0]
	if tool.Kind != ToolUI || tool.Name != "action_plan" || tool.Component != "ActionPlan" || tool.Display != DisplayArtifact {
		t.Errorf("tool = %+v", tool)
	}
	if wf.Orchestrator.InitialAgent != "PlannerAgent" || wf.ContextVars[0].Source.Type != ContextSourceConfig {
		t.Errorf("orchestrator %+v context %+v", wf.Orchestrator, wf.ContextVars)
	}
	if !strings.Contains(string(wf.ResponseSchema("PlannerAgent")), `"enum":["a","b"]`) {
		t.Errorf("schema = %s", wf.ResponseSchema("PlannerAgent"))
	}
}
