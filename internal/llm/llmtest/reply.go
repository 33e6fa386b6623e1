package llmtest

import (
	"encoding/json"
	"time"
)

// Reply scripts one response of the fake. The zero Reply streams an empty
// assistant message that finishes with "stop".
type Reply struct {
	// Text is the assistant content, streamed in pieces (see Chunks).
	Text string
	// Chunks splits Text into this many pieces of about equal length; 0
	// streams it word by word (each word keeps its trailing space).
	Chunks int
	// ToolCalls are streamed as OpenAI does: per call, one delta with id and
	// name, then the arguments in several fragments.
	ToolCalls []ToolCall
	// FinishReason overrides the default ("tool_calls" when ToolCalls is set,
	// else "stop").
	FinishReason string
	// Model overrides the model echoed in the chunks (default: the request's).
	Model string
	// Usage overrides the token counts of the usage chunk / usage field
	// (default: words of the prompt, pieces of the reply).
	Usage *Usage

	// Status, when not 0 or 200, answers with that HTTP status and an OpenAI
	// error body instead of a completion.
	Status int
	// ErrorMessage, ErrorType and ErrorCode fill the error body; each has a
	// realistic default for the status.
	ErrorMessage string
	ErrorType    string
	ErrorCode    string
	// RetryAfter is sent as the Retry-After header as is ("1", or an HTTP
	// date), with any status.
	RetryAfter string

	// Cut drops the connection (no finish chunk, no [DONE], the HTTP body
	// left unterminated) after CutAfter pieces: text pieces and tool-call
	// deltas, not counting the leading role chunk.
	Cut      bool
	CutAfter int
	// CutClean, with Cut, ends the HTTP body properly instead, as a proxy
	// giving up on a slow upstream does: the client sees a clean end of
	// stream that still lacks the finish chunk and [DONE].
	CutClean bool
	// With Cut and Status 0, a non-empty ErrorMessage is sent at the cut as
	// an in-stream error event (data: {"error":{...}}), as OpenAI does when
	// a reply fails part-way; the body then ends cleanly.

	// FirstByteDelay waits before the status line; TokenDelay waits before
	// every piece. Both stop early when the client goes away. A "silent"
	// model is FirstByteDelay: time.Hour.
	FirstByteDelay time.Duration
	TokenDelay     time.Duration
	// FirstChunkDelay, when streaming, sends the 200 status line and headers
	// at once and then waits before the first event (the role chunk), as a
	// server that accepts a request and then processes a long prompt does
	// (llama.cpp, vLLM). It stops early when the client goes away.
	FirstChunkDelay time.Duration
}

// ToolCall is a function call the fake model makes.
type ToolCall struct {
	ID        string `json:"id"` // default "call_<n>"
	Name      string `json:"name"`
	Arguments string `json:"arguments"` // JSON text
}

// Usage is a token count as the wire carries it.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// Request is one request the fake received, parsed from the wire.
type Request struct {
	Method     string
	Path       string // e.g. "/v1/chat/completions", "/v1/models"
	APIKey     string // the bearer token sent, "" if none
	ReceivedAt time.Time

	Model          string
	Messages       []Message
	Tools          []Tool
	ToolChoice     json.RawMessage
	Temperature    *float64
	MaxTokens      *int // max_tokens, or max_completion_tokens when that is set
	ResponseFormat *ResponseFormat
	Stream         bool
	IncludeUsage   bool            // stream_options.include_usage
	Body           json.RawMessage // the raw JSON body
}

// Message is one chat message of a request; array content is flattened to
// its text parts.
type Message struct {
	Role       string     `json:"role"`
	Content    string     `json:"content"`
	Name       string     `json:"name,omitempty"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
}

// Tool is a function offered in a request.
type Tool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

// ResponseFormat is the response_format of a request.
type ResponseFormat struct {
	Type   string          `json:"type"` // text | json_object | json_schema
	Name   string          `json:"name,omitempty"`
	Schema json.RawMessage `json:"schema,omitempty"`
	Strict bool            `json:"strict,omitempty"`
}

// LastUserMessage is the content of the last message with role "user".
func (r Request) LastUserMessage() string {
	for i := len(r.Messages) - 1; i >= 0; i-- {
		if r.Messages[i].Role == "user" {
			return r.Messages[i].Content
		}
	}
	return ""
}
