package workflow

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"github.com/mozaiks/mozaiks/internal/ids"
)

type agentsFile struct {
	Agents []Agent `yaml:"agents"`
}

type handoffsFile struct {
	Rules []Handoff `yaml:"handoff_rules"`
}

type contextFile struct {
	Definitions []ContextVar   `yaml:"definitions"`
	Agents      map[string]any `yaml:"agents"` // original layout: which agent sees what; accepted, unused
}

type toolsFile struct {
	Tools []Tool `yaml:"tools"`
}

// load reads and validates the workflow folder dir of fsys. shownDir prefixes
// file names in diagnostics. It returns nil when the folder has errors.
func load(fsys fs.FS, dir, shownDir, name string) (*Workflow, []Diagnostic) {
	var diags []Diagnostic
	wf := &Workflow{Name: name, Source: shownDir}
	if !ids.Valid(name) {
		diags = append(diags, Diagnostic{Workflow: name, File: shownDir, Severity: SevError,
			Message: "invalid workflow name: want 1-128 characters of A-Z a-z 0-9 . _ : @ -"})
		return nil, diags
	}
	var af agentsFile
	var hf handoffsFile
	var cf contextFile
	var tf toolsFile
	of, ok1 := loadYAML(fsys, dir, shownDir, "orchestrator.yaml", name, true, &wf.Orchestrator, &diags, "")
	agf, ok2 := loadYAML(fsys, dir, shownDir, "agents.yaml", name, true, &af, &diags, "", "agents")
	hff, ok3 := loadYAML(fsys, dir, shownDir, "handoffs.yaml", name, false, &hf, &diags, "handoffs")
	cff, ok4 := loadYAML(fsys, dir, shownDir, "context_variables.yaml", name, false, &cf, &diags, "context_variables", "definitions")
	tff, ok5 := loadYAML(fsys, dir, shownDir, "tools.yaml", name, false, &tf, &diags, "")
	sof, ok6 := loadYAML(fsys, dir, shownDir, "structured_outputs.yaml", name, false, &wf.StructuredOutputs, &diags, "structured_outputs")
	uif, ok7 := loadYAML(fsys, dir, shownDir, "ui_config.yaml", name, false, &wf.UI, &diags, "")
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) {
		return nil, diags
	}
	wf.Agents, wf.Handoffs, wf.ContextVars, wf.Tools = af.Agents, hf.Rules, cf.Definitions, tf.Tools

	v := &validator{wf: wf}
	v.agents(agf)
	v.orchestrator(of)
	v.contextVars(cff)
	v.tools(tff)
	v.handoffs(hff)
	v.structured(sof)
	for i, a := range wf.UI.VisualAgents {
		if !wf.HasAgent(a) {
			uif.warnf(fmt.Sprintf("visual_agents[%d]", i), "unknown agent %q", a)
		}
	}
	for i, a := range wf.Orchestrator.VisualAgents {
		if !wf.HasAgent(a) {
			of.warnf(fmt.Sprintf("visual_agents[%d]", i), "unknown agent %q", a)
		}
	}
	sortDiags(diags)
	if HasErrors(diags) {
		return nil, diags
	}
	return wf, diags
}

var fileOrder = []string{"orchestrator.yaml", "agents.yaml", "handoffs.yaml", "context_variables.yaml", "tools.yaml", "structured_outputs.yaml", "ui_config.yaml"}

// sortDiags orders a folder's diagnostics by file, then line, so that the
// report reads top to bottom.
func sortDiags(ds []Diagnostic) {
	rank := func(file string) int {
		for i, f := range fileOrder {
			if strings.HasSuffix(file, "/"+f) {
				return i
			}
		}
		return len(fileOrder)
	}
	sort.SliceStable(ds, func(i, j int) bool {
		ri, rj := rank(ds[i].File), rank(ds[j].File)
		if ri != rj {
			return ri < rj
		}
		return ds[i].Line < ds[j].Line
	})
}

type validator struct {
	wf *Workflow
}

var toolNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func (v *validator) agents(f *yamlFile) {
	wf := v.wf
	wf.agentIndex = map[string]int{}
	if len(wf.Agents) == 0 {
		f.errorf("agents", "a workflow needs at least one agent")
	}
	for i, a := range wf.Agents {
		p := fmt.Sprintf("agents[%d]", i)
		switch {
		case a.Name == "":
			f.errorf(p+".name", "missing agent name")
			continue
		case !toolNameRE.MatchString(a.Name):
			f.errorf(p+".name", "invalid agent name %q: want 1-64 characters of A-Z a-z 0-9 _ -", a.Name)
		case isReserved(a.Name):
			f.errorf(p+".name", "%q is reserved for handoff targets", a.Name)
		}
		if _, dup := wf.agentIndex[a.Name]; dup {
			f.errorf(p+".name", "duplicate agent name %q", a.Name)
			continue
		}
		wf.agentIndex[a.Name] = i
		if a.SystemMessage != "" && len(a.PromptSections) > 0 {
			f.errorf(p, "set system_message or prompt_sections, not both")
		}
		if a.SystemMessage == "" && len(a.PromptSections) == 0 {
			f.warnf(p, "agent %q has no system_message or prompt_sections", a.Name)
		}
		for j, s := range a.PromptSections {
			if strings.TrimSpace(s.Content) == "" {
				f.errorf(fmt.Sprintf("%s.prompt_sections[%d].content", p, j), "empty prompt section")
			}
		}
		if a.Temperature != nil && (*a.Temperature < 0 || *a.Temperature > 2) {
			f.errorf(p+".temperature", "want a number between 0 and 2, got %v", *a.Temperature)
		}
		if a.MaxTokens < 0 {
			f.errorf(p+".max_tokens", "must not be negative")
		}
		if a.MaxConsecutiveAutoReply < 0 {
			f.errorf(p+".max_consecutive_auto_reply", "must not be negative")
		}
	}
}

func isReserved(name string) bool {
	return strings.EqualFold(name, TargetUser) || strings.EqualFold(name, TargetTerminate)
}

func (v *validator) orchestrator(f *yamlFile) {
	o := &v.wf.Orchestrator
	if o.WorkflowName != "" && o.WorkflowName != v.wf.Name {
		f.warnf("workflow_name", "%q differs from the folder name; the workflow is served as %q", o.WorkflowName, v.wf.Name)
	}
	if o.MaxTurns < 0 {
		f.errorf("max_turns", "must not be negative")
	}
	if o.MaxTurns == 0 {
		o.MaxTurns = DefaultMaxTurns
	}
	switch o.Pattern {
	case "":
		o.Pattern = PatternDefault
	case PatternDefault, PatternRoundRobin, PatternRandom, PatternAuto:
	default:
		f.errorf("orchestration_pattern", "unknown pattern %q: want DefaultPattern, RoundRobinPattern, RandomPattern or AutoPattern", o.Pattern)
	}
	switch o.StartupMode {
	case "":
		o.StartupMode = StartupAgentDriven
	case StartupAgentDriven, StartupUserDriven:
	default:
		f.errorf("startup_mode", "unknown startup mode %q: want AgentDriven or UserDriven", o.StartupMode)
	}
	field := "initial_agent"
	if o.InitialAgent == "" && o.Recipient != "" {
		o.InitialAgent, field = o.Recipient, "recipient"
	}
	if o.InitialAgent == "" {
		if len(v.wf.Agents) > 0 {
			o.InitialAgent = v.wf.Agents[0].Name
		}
	} else if !v.wf.HasAgent(o.InitialAgent) {
		f.errorf(field, "unknown agent %q", o.InitialAgent)
	}
}

func (v *validator) contextVars(f *yamlFile) {
	seen := map[string]bool{}
	for i := range v.wf.ContextVars {
		c := &v.wf.ContextVars[i]
		p := fmt.Sprintf("definitions[%d]", i)
		if !isIdent(c.Name) {
			f.errorf(p+".name", "invalid variable name %q", c.Name)
		}
		if seen[c.Name] {
			f.errorf(p+".name", "duplicate variable %q", c.Name)
		}
		seen[c.Name] = true
		switch c.Type {
		case "", "string", "str", "integer", "int", "number", "float", "boolean", "bool", "object", "dict", "list", "array":
		default:
			f.errorf(p+".type", "unknown type %q", c.Type)
		}
		switch c.Source.Type {
		case "":
			c.Source.Type = ContextSourceState
		case "environment", "env":
			c.Source.Type = ContextSourceConfig
			if c.Source.EnvVar == "" {
				f.errorf(p+".source.env_var", "a config variable needs env_var")
			}
		case ContextSourceConfig:
			if c.Source.EnvVar == "" {
				f.errorf(p+".source.env_var", "a config variable needs env_var")
			}
			if len(c.Source.Triggers) > 0 {
				f.errorf(p+".source.triggers", "triggers apply to state variables only")
			}
		case ContextSourceState:
		case "database", "data_reference", "data_entity", "computed":
			f.errorf(p+".source.type", "source %q of the original runtime is not supported: want config or state", c.Source.Type)
		default:
			f.errorf(p+".source.type", "unknown source %q: want config or state", c.Source.Type)
		}
		for j, t := range c.Source.Triggers {
			tp := fmt.Sprintf("%s.source.triggers[%d]", p, j)
			switch t.Type {
			case TriggerAgentText:
				if t.Contains == "" && t.Equals == "" {
					f.errorf(tp, "an agent_text trigger needs contains or equals")
				}
				if t.Agent != "" && !v.wf.HasAgent(t.Agent) {
					f.errorf(tp+".agent", "unknown agent %q", t.Agent)
				}
			case TriggerUIResponse:
				if t.Tool == "" {
					f.errorf(tp+".tool", "a ui_response trigger needs tool")
				} else if !v.wf.hasUITool(t.Tool) {
					f.errorf(tp+".tool", "unknown ui tool %q", t.Tool)
				}
				if t.ResponseKey == "" && t.Value == nil {
					f.errorf(tp+".response_key", "a ui_response trigger needs response_key or value")
				}
			default:
				f.errorf(tp+".type", "unknown trigger %q: want agent_text or ui_response", t.Type)
			}
		}
	}
}

func (v *validator) tools(f *yamlFile) {
	wf := v.wf
	seen := map[string]bool{}
	for i := range wf.Tools {
		t := &wf.Tools[i]
		p := fmt.Sprintf("tools[%d]", i)
		if !wf.HasAgent(t.Agent) {
			f.errorf(p+".agent", "unknown agent %q", t.Agent)
		}
		if t.Name == "" {
			t.Name = t.Function // the original names tools by their Python function
		}
		if !toolNameRE.MatchString(t.Name) {
			f.errorf(p+".name", "invalid tool name %q: want 1-64 characters of A-Z a-z 0-9 _ -", t.Name)
		}
		if key := t.Agent + "\x00" + t.Name; seen[key] {
			f.errorf(p+".name", "duplicate tool %q for agent %q", t.Name, t.Agent)
		} else {
			seen[key] = true
		}
		if t.Kind == "" {
			switch {
			case strings.EqualFold(t.ToolType, "UI_Tool") || t.UI != nil:
				t.Kind = ToolUI
				if t.UI != nil {
					t.Component = firstNonEmpty(t.Component, t.UI.Component)
					t.Mode = firstNonEmpty(t.Mode, t.UI.Mode)
				}
			case t.File != "" || t.Function != "":
				f.errorf(p+".file", "Python tools (file: %s) cannot run in mozaiks: declare the tool with kind: http (and serve it over HTTP), ui or builtin", firstNonEmpty(t.File, t.Function))
				continue
			}
		}
		switch t.Kind {
		case ToolHTTP:
			u, err := url.Parse(t.URL)
			switch {
			case t.URL == "":
				f.errorf(p+".url", "an http tool needs url")
			case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
				f.errorf(p+".url", "want an http or https URL, got %q", t.URL)
			}
			if t.TimeoutMS < 0 {
				f.errorf(p+".timeout_ms", "must not be negative")
			}
			if t.TimeoutMS == 0 {
				t.TimeoutMS = defaultHTTPTimeoutMS
			}
			if t.MaxResponseBytes < 0 {
				f.errorf(p+".max_response_bytes", "must not be negative")
			}
			if t.MaxResponseBytes == 0 {
				t.MaxResponseBytes = defaultHTTPMaxBytes
			}
			for h, env := range t.Headers {
				if !envNameRE.MatchString(env) {
					f.errorf(p+".headers."+h, "want the name of an environment variable holding the value, got %q", env)
				}
			}
		case ToolUI:
			if t.Component == "" {
				f.errorf(p+".component", "a ui tool needs component")
			}
			if t.Display == "" {
				t.Display = t.Mode
			}
			switch t.Display {
			case "":
				t.Display = DisplayInline
			case DisplayInline, DisplayArtifact:
			default:
				f.errorf(p+".display", "unknown display %q: want inline or artifact", t.Display)
			}
		case ToolBuiltin:
			if t.Builtin == "" {
				t.Builtin = t.Name
			}
			switch t.Builtin {
			case BuiltinSetContext:
				if t.Variable != "" && !wf.hasVar(t.Variable) {
					f.errorf(p+".variable", "unknown context variable %q", t.Variable)
				}
			case BuiltinEnd, BuiltinTerminate:
			case BuiltinHandoff:
				for j, a := range t.Targets {
					if !wf.HasAgent(a) && a != TargetUser {
						f.errorf(fmt.Sprintf("%s.targets[%d]", p, j), "unknown agent %q", a)
					}
				}
			default:
				f.errorf(p+".builtin", "unknown builtin %q: want set_context_variable, end_conversation, terminate or handoff", t.Builtin)
			}
			if t.Parameters == nil {
				t.Parameters = builtinParams(wf, t)
			}
		case "":
			f.errorf(p+".kind", "missing kind: want http, ui or builtin")
		default:
			f.errorf(p+".kind", "unknown kind %q: want http, ui or builtin", t.Kind)
		}
		if t.Parameters == nil {
			t.Parameters = map[string]any{"type": "object", "properties": map[string]any{}}
		}
		if err := checkObjectSchema(t.Parameters); err != nil {
			f.errorf(p+".parameters", "%v", err)
		} else {
			t.schema = mustJSON(t.Parameters)
		}
	}
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (v *validator) handoffs(f *yamlFile) {
	wf := v.wf
	for i := range wf.Handoffs {
		h := &wf.Handoffs[i]
		p := fmt.Sprintf("handoff_rules[%d]", i)
		if h.SourceAgent != TargetUser && !wf.HasAgent(h.SourceAgent) {
			f.errorf(p+".source_agent", "unknown agent %q", h.SourceAgent)
		}
		h.TargetAgent = normalizeTarget(h.TargetAgent)
		if h.TargetAgent == "" && h.Transition != "" {
			h.TargetAgent = normalizeTarget(h.Transition)
		}
		if h.TargetAgent != TargetUser && h.TargetAgent != TargetTerminate && !wf.HasAgent(h.TargetAgent) {
			f.errorf(p+".target_agent", "unknown target %q: want an agent, user or terminate", h.TargetAgent)
		}
		if h.HandoffType == "" {
			h.HandoffType = HandoffAfterWork
			if h.Condition != "" {
				h.HandoffType = HandoffCondition
			}
		}
		switch h.HandoffType {
		case HandoffAfterWork:
			if h.Condition != "" {
				f.warnf(p+".condition", "after_work handoffs ignore condition")
			}
		case HandoffCondition:
			if strings.TrimSpace(h.Condition) == "" {
				f.errorf(p+".condition", "a condition handoff needs condition")
				continue
			}
			if h.ConditionType == "" {
				h.ConditionType = ConditionLLM
				if strings.Contains(h.Condition, "${") {
					h.ConditionType = ConditionExpression
				}
			}
			switch h.ConditionType {
			case ConditionExpression, "string": // "string" is the original's name
				h.ConditionType = ConditionExpression
				e, err := ParseExpr(h.Condition)
				if err != nil {
					f.errorf(p+".condition", "%v", err)
					continue
				}
				h.Expr = e
				for _, name := range e.Vars() {
					if !wf.hasVar(name) {
						f.warnf(p+".condition", "variable ${%s} is not defined in context_variables.yaml (it will be null)", name)
					}
				}
			case ConditionLLM:
			default:
				f.errorf(p+".condition_type", "unknown condition type %q: want expression or llm", h.ConditionType)
			}
		default:
			f.errorf(p+".handoff_type", "unknown handoff type %q: want after_work or condition", h.HandoffType)
		}
	}
}

// normalizeTarget accepts the original's target spellings.
func normalizeTarget(t string) string {
	switch strings.ToLower(t) {
	case "user", "reverttousertarget", "revert_to_user":
		return TargetUser
	case "terminate", "terminatetarget", "end":
		return TargetTerminate
	}
	return t
}

func (v *validator) structured(f *yamlFile) {
	wf := v.wf
	so := wf.StructuredOutputs
	wf.schemas = map[string]json.RawMessage{}
	names := sortedKeys(so.Models)
	for _, m := range names {
		if !toolNameRE.MatchString(m) {
			f.errorf("models."+m, "invalid model name %q: want 1-64 characters of A-Z a-z 0-9 _ - (it names the response format)", m)
		}
		for _, fn := range sortedKeys(so.Models[m].Fields) {
			fl := so.Models[m].Fields[fn]
			if _, err := fieldSchema(so.Models, fl, 0); err != nil {
				f.errorf("models."+m+".fields."+fn+".type", "%v", err)
			}
		}
	}
	for _, agent := range sortedKeys(so.Registry) {
		model := so.Registry[agent]
		p := "registry." + agent
		if !wf.HasAgent(agent) {
			f.errorf(p, "unknown agent %q", agent)
			continue
		}
		if model == "" || strings.EqualFold(model, "null") {
			continue
		}
		if _, ok := so.Models[model]; !ok {
			f.errorf(p, "unknown model %q", model)
			continue
		}
		s, err := modelSchema(so.Models, model, 0)
		if err == nil {
			wf.schemas[agent] = mustJSON(s)
		}
	}
	for i, a := range wf.Agents {
		if a.StructuredOutputs && wf.schemas[a.Name] == nil {
			f.warnf("registry", "agents[%d] %q requires structured outputs but has no model in the registry", i, a.Name)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
