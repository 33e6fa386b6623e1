// Package llm is the model client the engine talks to: one interface, an
// OpenAI-compatible implementation over github.com/sashabaranov/go-openai with
// streaming, usage and bounded retries, and the offline "echo" provider.
package llm

import (
	"context"
	"encoding/json"
	"time"
)

// Message is one chat message sent to the model.
type Message struct {
	Role       string     `json:"role"` // system | user | assistant | tool
	Content    string     `json:"content,omitempty"`
	Name       string     `json:"name,omitempty"` // speaking agent, for multi-agent transcripts
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
}

// ToolCall is a function call the model asked for.
type ToolCall struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"` // JSON text as the model produced it
}

// Tool is a function offered to the model.
type Tool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"` // JSON Schema
}

// ResponseFormat asks for structured output validated by a JSON Schema.
type ResponseFormat struct {
	Name   string          `json:"name"`
	Schema json.RawMessage `json:"schema"`
	Strict bool            `json:"strict"`
}

// Request is one chat completion.
type Request struct {
	Model          string
	Messages       []Message
	Tools          []Tool
	Temperature    *float32
	MaxTokens      int
	ResponseFormat *ResponseFormat
	// OnStatus, when set, hears what the user would otherwise wait through in
	// silence: a model slow to start (StatusWaiting) and a failed attempt
	// about to be retried (StatusRetrying). It is called from Stream's
	// goroutine or from a timer's, never concurrently with itself or with
	// onChunk, never after Stream returns; it must not block for long.
	OnStatus func(Status)
}

// Status kinds reported through Request.OnStatus.
const (
	// StatusWaiting: the attempt has sent its request but no part of the
	// reply has come for Options.SlowFirstByte. Once per attempt.
	StatusWaiting = "waiting"
	// StatusRetrying: an attempt failed with a transient error; the next one
	// starts after RetryIn. Once per retry.
	StatusRetrying = "retrying"
)

// Status is a progress note about a call that has nothing to stream yet.
type Status struct {
	Kind    string        // StatusWaiting | StatusRetrying
	Attempt int           // waiting: the attempt in flight; retrying: the attempt about to start (2, 3, ...)
	Waited  time.Duration // waiting: how long the attempt has waited so far
	RetryIn time.Duration // retrying: the back-off before the next attempt
	Cause   string        // retrying: why the last attempt failed, safe to show a user
}

// Usage is the token count of one call.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// Response is a completed (streamed) reply.
type Response struct {
	Model        string
	Content      string
	ToolCalls    []ToolCall
	FinishReason string
	Usage        Usage
	Duration     time.Duration // wall time of the successful attempt
	Attempts     int
}

// Chunk is one piece of a streamed reply.
type Chunk struct {
	Content string // text delta
	// Restart says an earlier attempt streamed text and then failed: replace
	// what was streamed so far by this chunk's Content (and what follows). It
	// is set exactly once per failed attempt that had streamed text, on the
	// first text chunk of the next attempt that streams any; when the
	// successful attempt streams no text at all (tool calls only), Stream
	// sends one Chunk{Restart: true} with no Content before it returns.
	Restart bool
}

// Client is a chat model.
type Client interface {
	// Stream runs a completion, calling onChunk for each text delta as it
	// arrives (onChunk may be nil), and returns the whole reply. When it
	// returns an error, text already streamed belongs to no reply.
	Stream(ctx context.Context, req Request, onChunk func(Chunk)) (*Response, error)
	// Models lists the model ids the endpoint offers.
	Models(ctx context.Context) ([]string, error)
	// Provider is "openai" or "echo".
	Provider() string
	// Configured reports whether the client can make calls (a key or a base URL is set, or echo).
	Configured() bool
}

// Error codes carried by *Error, as the runtime reports them in chat.error.
const (
	CodeUnavailable   = "LLM_UNAVAILABLE"    // 429/5xx/timeouts/broken streams, after retries
	CodeNotConfigured = "LLM_NOT_CONFIGURED" // no key / base URL
	CodeRejected      = "LLM_REJECTED"       // 4xx other than 429: bad key, unknown model, bad request
)

// Error is a model failure with a code the client can show.
type Error struct {
	Code      string
	Status    int // HTTP status, 0 if none
	Retryable bool
	Msg       string // safe to show to a user: never contains the key
	Err       error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Msg + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Msg
}

func (e *Error) Unwrap() error { return e.Err }
