package engine

import "time"

// Event is something that happened in a run, one of the types in this file.
// The runtime reads the typed fields it acts on (what is pending, a usage
// record, an artifact) and stores and sends Data as the frame's data, so the
// wire shape (spec/runtime.md §2.1) is defined here, once.
type Event interface {
	// Kind is the frame kind: the frame type is "chat.<kind>".
	Kind() string
	// From is the agent the event belongs to, "" for run-level events.
	From() string
	// Data is the frame's data object (without "kind").
	Data() map[string]any
}

// Stored reports whether the runtime persists the event (and gives it a
// seq): everything but streamed chunks and model status notes.
func Stored(e Event) bool { k := e.Kind(); return k != KindPrint && k != KindStatus }

// RunStart begins a run; Speaker is who speaks first.
type RunStart struct{ RunID, Speaker string }

// SelectSpeaker is emitted before an agent speaks.
type SelectSpeaker struct{ Agent string }

// Print is a streamed chunk of a reply. Restart: the model's stream was
// retried and this chunk starts the reply over.
type Print struct {
	Agent, MessageID, Content string
	Restart                   bool
}

// Status tells the user why nothing streams yet: the model is slow to
// answer (State "waiting") or a failed attempt is retried ("retrying").
type Status struct {
	Agent, MessageID, State string
	Attempt                 int
	Waited, RetryIn         time.Duration
	Cause                   string
}

// Text is a complete message of an agent (or the user).
type Text struct {
	Agent, Role, Content, MessageID string
	Structured                      map[string]any // structured output, when the agent has a schema
}

// ToolCall is an agent's call of a tool. UI is set for a UI tool that waits
// for the user's response.
type ToolCall struct {
	CallID, Name, Agent, MessageID string
	Arguments                      any
	UI                             *UICall
}

// UICall is what a UI tool call carries for the client.
type UICall struct {
	EventID, Component, Display string
	Payload                     any
}

// ToolResponse is a tool's result; Status is "ok" or "error".
type ToolResponse struct {
	CallID, Name, Agent, Status string
	Result                      any
}

// InputRequest says the workflow waits for the user.
type InputRequest struct{ RequestID, Prompt, Agent string }

// UIToolDone closes a UI tool: answered ("completed") or "dismissed".
// Display picks the frame: ui_tool_complete (inline) or ui_tool_dismiss
// (artifact).
type UIToolDone struct{ EventID, ToolName, Agent, Status, Display string }

// Usage is one model call's token count.
type Usage struct {
	AppID, UserID, ChatID, Workflow string
	Agent, Model                    string
	PromptTokens, CompletionTokens  int
	TotalTokens                     int
	Duration                        time.Duration
}

// Error is a failure the user should see; the chat stays usable.
type Error struct {
	Message, Code string
	Retryable     bool
}

// RunComplete ends a run.
type RunComplete struct {
	Status, Reason string
	Tokens         int
	Duration       time.Duration
}

func (RunStart) Kind() string      { return KindRunStart }
func (SelectSpeaker) Kind() string { return KindSelectSpeaker }
func (Print) Kind() string         { return KindPrint }
func (Status) Kind() string        { return KindStatus }
func (Text) Kind() string          { return KindText }
func (ToolCall) Kind() string      { return KindToolCall }
func (ToolResponse) Kind() string  { return KindToolResponse }
func (InputRequest) Kind() string  { return KindInputRequest }
func (e UIToolDone) Kind() string  { return uiDoneKind(e.Display) }
func (Usage) Kind() string         { return KindUsageDelta }
func (Error) Kind() string         { return KindError }
func (RunComplete) Kind() string   { return KindRunComplete }

func (RunStart) From() string        { return "" }
func (e SelectSpeaker) From() string { return e.Agent }
func (e Print) From() string         { return e.Agent }
func (e Status) From() string        { return e.Agent }
func (e Text) From() string          { return e.Agent }
func (e ToolCall) From() string      { return e.Agent }
func (e ToolResponse) From() string  { return e.Agent }
func (e InputRequest) From() string  { return e.Agent }
func (e UIToolDone) From() string    { return e.Agent }
func (e Usage) From() string         { return e.Agent }
func (Error) From() string           { return "" }
func (RunComplete) From() string     { return "" }

func (e RunStart) Data() map[string]any {
	return map[string]any{"run_id": e.RunID, "speaker": e.Speaker}
}

func (e SelectSpeaker) Data() map[string]any { return map[string]any{"agent": e.Agent} }

func (e Print) Data() map[string]any {
	d := map[string]any{"agent": e.Agent, "message_id": e.MessageID, "content": e.Content}
	if e.Restart {
		d["restart"] = true
	}
	return d
}

func (e Status) Data() map[string]any {
	d := map[string]any{"agent": e.Agent, "message_id": e.MessageID, "state": e.State, "attempt": e.Attempt}
	if e.Waited > 0 {
		d["waited_ms"] = e.Waited.Milliseconds()
	}
	if e.RetryIn > 0 {
		d["retry_in_ms"] = e.RetryIn.Milliseconds()
	}
	if e.Cause != "" {
		d["cause"] = e.Cause
	}
	return d
}

func (e Text) Data() map[string]any {
	d := map[string]any{"agent": e.Agent, "role": e.Role, "content": e.Content, "message_id": e.MessageID}
	if e.Structured != nil {
		d["structured_output"] = e.Structured
	}
	return d
}

func (e ToolCall) Data() map[string]any {
	d := map[string]any{"call_id": e.CallID, "name": e.Name, "agent": e.Agent, "arguments": e.Arguments, "message_id": e.MessageID}
	if u := e.UI; u != nil {
		d["tool_name"], d["ui_tool_id"], d["component_type"], d["payload"] = e.Name, e.Name, u.Component, u.Payload
		d["corr"], d["eventId"], d["display"], d["awaiting_response"] = u.EventID, u.EventID, u.Display, true
	}
	return d
}

// Data carries success and content besides status and result: ChatUI reads
// those two.
func (e ToolResponse) Data() map[string]any {
	return map[string]any{"call_id": e.CallID, "name": e.Name, "agent": e.Agent, "status": e.Status, "result": e.Result,
		"success": e.Status == "ok", "content": resultText(e.Result)}
}

func (e InputRequest) Data() map[string]any {
	return map[string]any{"request_id": e.RequestID, "prompt": e.Prompt, "agent": e.Agent}
}

func (e UIToolDone) Data() map[string]any {
	return map[string]any{"eventId": e.EventID, "ui_tool_id": e.ToolName, "status": e.Status}
}

func (e Usage) Data() map[string]any {
	return map[string]any{
		"app_id": e.AppID, "user_id": e.UserID, "chat_id": e.ChatID, "workflow_name": e.Workflow,
		"agent_name": e.Agent, "model_name": e.Model,
		"prompt_tokens": e.PromptTokens, "completion_tokens": e.CompletionTokens,
		"total_tokens": e.TotalTokens, "duration_ms": e.Duration.Milliseconds(),
	}
}

func (e Error) Data() map[string]any {
	return map[string]any{"message": e.Message, "error_code": e.Code, "retryable": e.Retryable}
}

func (e RunComplete) Data() map[string]any {
	return map[string]any{"status": e.Status, "reason": e.Reason, "total_tokens": e.Tokens, "duration_sec": e.Duration.Seconds()}
}
