package workflow

import "encoding/json"

// HasAgent reports whether the workflow has an agent of that name.
func (w *Workflow) HasAgent(name string) bool { _, ok := w.agentIndex[name]; return ok }

// Agent returns the named agent.
func (w *Workflow) Agent(name string) (*Agent, bool) {
	i, ok := w.agentIndex[name]
	if !ok {
		return nil, false
	}
	return &w.Agents[i], true
}

// AgentNames lists the agents in declaration order.
func (w *Workflow) AgentNames() []string {
	names := make([]string, len(w.Agents))
	for i, a := range w.Agents {
		names[i] = a.Name
	}
	return names
}

// HumanInTheLoop reports whether the workflow involves the user (default true).
func (w *Workflow) HumanInTheLoop() bool {
	return w.Orchestrator.HumanInTheLoop == nil || *w.Orchestrator.HumanInTheLoop
}

// ToolsFor lists the tools offered to an agent.
func (w *Workflow) ToolsFor(agent string) []*Tool {
	var ts []*Tool
	for i := range w.Tools {
		if w.Tools[i].Agent == agent {
			ts = append(ts, &w.Tools[i])
		}
	}
	return ts
}

// ResponseSchema is the JSON Schema an agent's replies must follow, or nil.
func (w *Workflow) ResponseSchema(agent string) json.RawMessage { return w.schemas[agent] }

// ResponseModel names the structured-output model registered for an agent.
func (w *Workflow) ResponseModel(agent string) string { return w.StructuredOutputs.Registry[agent] }

// ContextVar returns the named context variable definition.
func (w *Workflow) ContextVar(name string) (*ContextVar, bool) {
	for i := range w.ContextVars {
		if w.ContextVars[i].Name == name {
			return &w.ContextVars[i], true
		}
	}
	return nil, false
}

func (w *Workflow) hasVar(name string) bool { _, ok := w.ContextVar(name); return ok }

func (w *Workflow) hasUITool(name string) bool {
	for _, t := range w.Tools {
		if t.Kind == ToolUI && t.Name == name {
			return true
		}
	}
	return false
}

// Schema is the tool's parameters as JSON Schema text.
func (t *Tool) Schema() json.RawMessage { return t.schema }
