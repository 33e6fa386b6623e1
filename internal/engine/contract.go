// Package engine runs a workflow for one chat. It knows nothing of HTTP or
// WebSockets: it takes the workflow, the chat's stored transcript and state, a
// model client and a sink, and emits events until the workflow needs the user,
// ends, or its context is cancelled.
//
// This file is the contract with the runtime (internal/serve/...), which
// persists the events the engine emits (assigning seq), fans them out to
// sockets, stores State with the session, and calls Run again when the user
// answers.
package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Event kinds the engine emits. The runtime sends each as a frame of type
// "chat.<kind>" (see spec/runtime.md §2.1) with Data as the frame's data.
const (
	KindRunStart       = "run_start"        // data: run_id
	KindSelectSpeaker  = "select_speaker"   // data: agent
	KindPrint          = "print"            // data: agent, message_id, content (delta); never stored
	KindText           = "text"             // data: agent, role, content, message_id[, structured_output]
	KindToolCall       = "tool_call"        // data: call_id, name, agent, arguments[, ui fields]
	KindToolResponse   = "tool_response"    // data: call_id, name, agent, status ok|error, result
	KindInputRequest   = "input_request"    // data: request_id, prompt, agent
	KindUIToolComplete = "ui_tool_complete" // data: eventId, ui_tool_id, status
	KindUIToolDismiss  = "ui_tool_dismiss"  // data: eventId, ui_tool_id, status
	KindUsageDelta     = "usage_delta"      // data: agent_name, model_name, prompt_tokens, completion_tokens, total_tokens, duration_ms
	KindError          = "error"            // data: message, error_code, retryable
	KindRunComplete    = "run_complete"     // data: status, reason, total_tokens, duration_sec
	// KindStatus says the model is slow to answer or being retried, so the
	// user sees why nothing streams yet; never stored.
	// data: agent, message_id, state (waiting|retrying), attempt, waited_ms, retry_in_ms, cause
	KindStatus = "status"
)

// Sink receives the events of a run in order. An error from Emit (the store
// is down) stops the run.
type Sink interface {
	Emit(ctx context.Context, ev Event) error
}

// StoredEvent is an event as the runtime stored it, given back to rebuild the
// conversation.
type StoredEvent struct {
	Seq   int64
	Kind  string
	Agent string
	Data  map[string]any
	// hist keeps what the event adds to the model's history once built
	// (history.go), shared by every copy of the event: a chat's cached
	// transcript hands the same events to each of its runs, and each model
	// call rebuilds the history from them. Nil (a StoredEvent literal)
	// builds it at every call.
	hist *histMemo
}

// NewStoredEvent is a StoredEvent that builds what it adds to the model's
// history once, for all its copies. Its Data must not change afterwards.
func NewStoredEvent(seq int64, kind, agent string, data map[string]any) StoredEvent {
	ev := StoredEvent{Seq: seq, Kind: kind, Agent: agent, Data: data}
	if inHistory(kind) {
		ev.hist = &histMemo{} // the others add nothing, and cost nothing to look at
	}
	return ev
}

// inHistory reports whether events of kind add to the model's history (at
// most a message each).
func inHistory(kind string) bool {
	switch kind {
	case KindText, KindToolCall, KindToolResponse, "attachment":
		return true
	}
	return false
}

// Pending is what a chat waits for between runs.
type Pending struct {
	Kind      string `json:"kind"`       // "input" | "ui_tool"
	RequestID string `json:"request_id"` // input request id, or the UI tool's event id
	Agent     string `json:"agent"`
	Prompt    string `json:"prompt,omitempty"`
	CallID    string `json:"call_id,omitempty"`   // ui_tool: the tool call being answered
	ToolName  string `json:"tool_name,omitempty"` // ui_tool
	Display   string `json:"display,omitempty"`   // ui_tool: inline | artifact
}

// State is what the engine needs to continue a chat later. The runtime stores
// it (as JSON) with the session and hands it back unchanged.
type State struct {
	Started      bool           `json:"started"`
	CurrentAgent string         `json:"current_agent,omitempty"`
	Context      map[string]any `json:"context,omitempty"`
	AutoReplies  map[string]int `json:"auto_replies,omitempty"`
	Pending      *Pending       `json:"pending,omitempty"`
	Done         bool           `json:"done,omitempty"` // the workflow terminated
	// Run is the id of the run whose end this state records: a stored
	// run_start with another id did not end (the process died during it).
	Run string `json:"run,omitempty"`
}

// DecodeState reads a state the runtime stored. Only the engine knows its
// shape; an unreadable state comes back empty with the error.
func DecodeState(raw []byte) (State, error) {
	var st State
	if len(raw) == 0 {
		return st, nil
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return State{}, fmt.Errorf("decode engine state: %w", err)
	}
	return st, nil
}

// EncodeState is the stored form of a state.
func EncodeState(st State) []byte {
	b, err := json.Marshal(st)
	if err != nil {
		return nil // only JSON-safe values are put in context
	}
	return b
}

// Started reports whether a stored state has begun its workflow.
func Started(raw []byte) bool {
	st, err := DecodeState(raw)
	return err == nil && st.Started
}

// Input is what starts a run: nil for an AgentDriven start, else the user's
// message (already stored and present at the end of the transcript) or a UI
// tool's response.
type Input struct {
	Kind      string         // "message" | "ui_tool_response"
	Text      string         // message
	RequestID string         // the input request or UI tool event it answers, if any
	Response  map[string]any // ui_tool_response
	Context   map[string]any // optional context sent with a message
}

// Input kinds.
const (
	InputMessage        = "message"
	InputUIToolResponse = "ui_tool_response"
	// InputResume continues the run that the transcript shows unfinished
	// (its process died): from its last stored step, without repeating a
	// stored reply or blindly repeating a tool with side effects.
	InputResume = "resume"
)

// Run statuses, as the session stores them.
const (
	StatusAwaitingInput = "awaiting_input"
	StatusCompleted     = "completed"
	StatusFailed        = "failed"
)

// RunRequest is one call to the engine.
type RunRequest struct {
	Workflow string // workflow name; the engine resolves it through its workflow set
	AppID    string
	UserID   string
	ChatID   string
	// Transcript is everything stored for the chat so far, in seq order.
	// The run appends what it emits to it, in the slice's spare capacity
	// when there is some: give each run a slice of its own (the chat layer
	// builds one with room for a run's events), or a clipped one.
	Transcript []StoredEvent
	State      State
	Input      *Input
	Sink       Sink
}

// Result is how a run ended.
type Result struct {
	State    State
	Status   string // StatusAwaitingInput | StatusCompleted | StatusFailed
	Reason   string // e.g. "terminate", "max_turns", "input_required", "llm_unavailable", "cancelled"
	Tokens   int
	Duration time.Duration
}

// Runner is what the runtime needs from the engine.
type Runner interface {
	Run(ctx context.Context, req RunRequest) (Result, error)
}
