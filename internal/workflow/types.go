// Package workflow loads and validates declarative workflow folders (the
// MozaiksAI layout: orchestrator.yaml, agents.yaml, handoffs.yaml, ...) into
// plain structs, reporting every problem with its file, line and field. It
// also owns the context-expression language used by handoff conditions.
package workflow

import "encoding/json"

// Orchestration patterns.
const (
	PatternDefault    = "DefaultPattern"
	PatternRoundRobin = "RoundRobinPattern"
	PatternRandom     = "RandomPattern"
	PatternAuto       = "AutoPattern"
)

// Startup modes.
const (
	StartupAgentDriven = "AgentDriven"
	StartupUserDriven  = "UserDriven"
)

// Special handoff targets.
const (
	TargetUser      = "user"
	TargetTerminate = "terminate"
)

// Tool kinds.
const (
	ToolHTTP    = "http"
	ToolUI      = "ui"
	ToolBuiltin = "builtin"
)

// Builtin tools the engine provides.
const (
	BuiltinSetContext = "set_context_variable"
	BuiltinEnd        = "end_conversation"
	BuiltinTerminate  = "terminate"
	BuiltinHandoff    = "handoff"
)

// DefaultMaxTurns bounds a run when orchestrator.yaml sets no max_turns.
const DefaultMaxTurns = 50

// Workflow is one loaded, validated workflow folder.
type Workflow struct {
	Name              string // folder name; the id used in URLs
	Source            string // where it was loaded from (a path, or "builtin:<name>")
	Orchestrator      Orchestrator
	Agents            []Agent
	Handoffs          []Handoff
	ContextVars       []ContextVar
	Tools             []Tool
	StructuredOutputs StructuredOutputs
	UI                UIConfig

	agentIndex map[string]int
	schemas    map[string]json.RawMessage // agent -> response JSON Schema
}

// Orchestrator is orchestrator.yaml.
type Orchestrator struct {
	WorkflowName         string   `yaml:"workflow_name"`
	MaxTurns             int      `yaml:"max_turns"`
	Pattern              string   `yaml:"orchestration_pattern"`
	StartupMode          string   `yaml:"startup_mode"`
	HumanInTheLoop       *bool    `yaml:"human_in_the_loop"`
	InitialAgent         string   `yaml:"initial_agent"`
	Recipient            string   `yaml:"recipient"` // original name of initial_agent
	InitialMessage       string   `yaml:"initial_message"`
	InitialMessageToUser string   `yaml:"initial_message_to_user"`
	VisualAgents         []string `yaml:"visual_agents"`
	Description          string   `yaml:"description"`
}

// Agent is one entry of agents.yaml.
type Agent struct {
	Name                    string          `yaml:"name"`
	Description             string          `yaml:"description"`
	SystemMessage           string          `yaml:"system_message"`
	PromptSections          []PromptSection `yaml:"prompt_sections"`
	Model                   string          `yaml:"model"`
	Temperature             *float32        `yaml:"temperature"`
	MaxTokens               int             `yaml:"max_tokens"`
	MaxConsecutiveAutoReply int             `yaml:"max_consecutive_auto_reply"`
	HumanInputMode          string          `yaml:"human_input_mode"`
	AutoToolMode            bool            `yaml:"auto_tool_mode"`
	StructuredOutputs       bool            `yaml:"structured_outputs_required"`
}

// PromptSection is one part of an agent's system prompt.
type PromptSection struct {
	ID      string `yaml:"id"`
	Heading string `yaml:"heading"`
	Content string `yaml:"content"`
}

// Handoff is one entry of handoffs.yaml.
type Handoff struct {
	SourceAgent    string `yaml:"source_agent"`
	TargetAgent    string `yaml:"target_agent"`
	HandoffType    string `yaml:"handoff_type"`   // after_work | condition
	ConditionType  string `yaml:"condition_type"` // expression | llm
	Condition      string `yaml:"condition"`
	ConditionScope string `yaml:"condition_scope"`
	Transition     string `yaml:"transition_target"`

	Expr *Expr `yaml:"-"` // parsed Condition when ConditionType is expression
}

// Handoff types and condition types.
const (
	HandoffAfterWork     = "after_work"
	HandoffCondition     = "condition"
	ConditionExpression  = "expression"
	ConditionLLM         = "llm"
	ContextSourceConfig  = "config"
	ContextSourceState   = "state"
	TriggerAgentText     = "agent_text"
	TriggerUIResponse    = "ui_response"
	DisplayInline        = "inline"
	DisplayArtifact      = "artifact"
	defaultHTTPTimeoutMS = 10_000
	defaultHTTPMaxBytes  = 1 << 20
)

// ContextVar is one context variable definition.
type ContextVar struct {
	Name        string        `yaml:"name"`
	Type        string        `yaml:"type"` // string | integer | number | boolean | object | list
	Description string        `yaml:"description"`
	Source      ContextSource `yaml:"source"`
}

// ContextSource says where a context variable's value comes from.
type ContextSource struct {
	Type     string    `yaml:"type"`    // config | state
	EnvVar   string    `yaml:"env_var"` // config
	Default  any       `yaml:"default"`
	Triggers []Trigger `yaml:"triggers"` // state
}

// Trigger sets a state variable when something happens.
type Trigger struct {
	Type        string `yaml:"type"`         // agent_text | ui_response
	Agent       string `yaml:"agent"`        // agent_text: whose text (empty: any)
	Contains    string `yaml:"contains"`     // agent_text: phrase to look for
	Equals      string `yaml:"equals"`       // agent_text: whole text (trimmed) to match
	Tool        string `yaml:"tool"`         // ui_response: which UI tool
	ResponseKey string `yaml:"response_key"` // ui_response: which field of the response
	Value       any    `yaml:"value"`        // the value to set (agent_text default true)
}

// Tool is one entry of tools.yaml.
type Tool struct {
	Agent       string         `yaml:"agent"`
	Name        string         `yaml:"name"`
	Description string         `yaml:"description"`
	Kind        string         `yaml:"kind"`
	Parameters  map[string]any `yaml:"parameters"`

	// http
	URL              string            `yaml:"url"`
	TimeoutMS        int               `yaml:"timeout_ms"`
	Headers          map[string]string `yaml:"headers"` // header name -> env var holding its value
	MaxResponseBytes int64             `yaml:"max_response_bytes"`

	// ui
	Component string `yaml:"component"`
	Display   string `yaml:"display"` // inline | artifact
	Mode      string `yaml:"mode"`    // alias of display in the original layout
	// ComponentWorkflow names the ChatUI folder holding Component when it is
	// not the workflow's own: ChatUI loads src/workflows/<payload.workflow,
	// else the chat's workflow>/components/index.js, so a component it ships
	// (e.g. Generator's ActionPlan) serves any workflow. Sent as payload.workflow.
	ComponentWorkflow string `yaml:"component_workflow"`

	// the original layout: tool_type UI_Tool with ui: {component, mode}; Python tools (file, function) cannot run here
	ToolType string  `yaml:"tool_type"`
	UI       *toolUI `yaml:"ui"`
	File     string  `yaml:"file"`
	Function string  `yaml:"function"`

	// builtin
	Builtin  string   `yaml:"builtin"`  // which builtin; defaults to Name
	Variable string   `yaml:"variable"` // set_context_variable: restrict to this variable
	Targets  []string `yaml:"targets"`  // handoff: allowed agents (default all)

	schema json.RawMessage
}

type toolUI struct {
	Component string `yaml:"component"`
	Mode      string `yaml:"mode"`
}

// StructuredOutputs is structured_outputs.yaml.
type StructuredOutputs struct {
	Models   map[string]OutputModel `yaml:"models"`
	Registry map[string]string      `yaml:"registry"` // agent -> model
}

// OutputModel is one structured-output model: a set of typed fields.
type OutputModel struct {
	Type        string                 `yaml:"type"`
	Description string                 `yaml:"description"`
	Fields      map[string]OutputField `yaml:"fields"`
}

// OutputField is one field of a structured-output model.
type OutputField struct {
	Type        string   `yaml:"type"` // str|string, int|integer, float|number, bool|boolean, list|array, dict|object, or a model name
	Description string   `yaml:"description"`
	Items       string   `yaml:"items"` // element type of a list
	Enum        []string `yaml:"enum"`
	Values      []string `yaml:"values"` // the original's literal values
	Optional    bool     `yaml:"optional"`
}

// UIConfig is ui_config.yaml.
type UIConfig struct {
	VisualAgents []string `yaml:"visual_agents"`
}
