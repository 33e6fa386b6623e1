package llmtest

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// completion is one reply being written in OpenAI's wire format.
type completion struct {
	id      string
	created int64
	model   string
	req     *Request
	rep     Reply
}

type chunkJSON struct {
	ID                string          `json:"id"`
	Object            string          `json:"object"`
	Created           int64           `json:"created"`
	Model             string          `json:"model"`
	SystemFingerprint string          `json:"system_fingerprint"`
	Choices           []choiceJSON    `json:"choices"`
	Usage             json.RawMessage `json:"usage,omitempty"` // null on every chunk but the last when include_usage
}

type choiceJSON struct {
	Index        int        `json:"index"`
	Delta        *deltaJSON `json:"delta,omitempty"`
	Message      *deltaJSON `json:"message,omitempty"`
	Logprobs     *struct{}  `json:"logprobs"`
	FinishReason *string    `json:"finish_reason"`
}

type deltaJSON struct {
	Role      string         `json:"role,omitempty"`
	Content   *string        `json:"content,omitempty"`
	ToolCalls []toolCallJSON `json:"tool_calls,omitempty"`
}

type toolCallJSON struct {
	Index    *int   `json:"index,omitempty"`
	ID       string `json:"id,omitempty"`
	Type     string `json:"type,omitempty"`
	Function struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// piece is one streamed delta after the role chunk.
type piece struct {
	text string
	tool *toolCallJSON
}

func (c *completion) pieces() []piece {
	var out []piece
	for _, t := range splitText(c.rep.Text, c.rep.Chunks) {
		out = append(out, piece{text: t})
	}
	for i, tc := range c.rep.ToolCalls {
		head := &toolCallJSON{Index: ptr(i), ID: c.toolID(i, tc), Type: "function"}
		head.Function.Name = tc.Name
		out = append(out, piece{tool: head})
		for _, frag := range splitN(tc.Arguments, 3) {
			d := &toolCallJSON{Index: ptr(i)}
			d.Function.Arguments = frag
			out = append(out, piece{tool: d})
		}
	}
	return out
}

func (c *completion) toolID(i int, tc ToolCall) string {
	if tc.ID != "" {
		return tc.ID
	}
	return "call_" + strings.TrimPrefix(c.id, "chatcmpl-") + "_" + strconv.Itoa(i)
}

func (c *completion) finishReason() string {
	switch {
	case c.rep.FinishReason != "":
		return c.rep.FinishReason
	case len(c.rep.ToolCalls) > 0:
		return "tool_calls"
	}
	return "stop"
}

func (c *completion) usage(pieces int) Usage {
	if c.rep.Usage != nil {
		return *c.rep.Usage
	}
	u := Usage{CompletionTokens: pieces}
	for _, m := range c.req.Messages {
		u.PromptTokens += len(strings.Fields(m.Content)) + 1
	}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	return u
}

func (c *completion) chunk(choices []choiceJSON) chunkJSON {
	ch := chunkJSON{
		ID: c.id, Object: "chat.completion.chunk", Created: c.created, Model: c.model,
		SystemFingerprint: "fp_llmtest", Choices: choices,
	}
	if c.req.IncludeUsage {
		ch.Usage = json.RawMessage("null")
	}
	return ch
}

// stream writes the reply as server-sent events, or drops the connection
// part-way when the reply says Cut.
func (c *completion) stream(w http.ResponseWriter, r *http.Request) {
	flusher, _ := w.(http.Flusher)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Request-Id", "req_"+c.id)
	w.WriteHeader(http.StatusOK)
	if c.rep.FirstChunkDelay > 0 {
		if flusher != nil {
			flusher.Flush()
		}
		if !sleep(r.Context(), c.rep.FirstChunkDelay) {
			return
		}
	}
	buf := make([]byte, 0, 512)
	send := func(v any) {
		b, _ := json.Marshal(v)
		buf = append(buf[:0], "data: "...)
		buf = append(buf, b...)
		buf = append(buf, "\n\n"...)
		_, _ = w.Write(buf)
		if flusher != nil {
			flusher.Flush()
		}
	}
	empty := ""
	send(c.chunk([]choiceJSON{{Delta: &deltaJSON{Role: "assistant", Content: &empty}}}))
	pieces := c.pieces()
	for i, p := range pieces {
		if c.rep.Cut && i == c.rep.CutAfter {
			c.cut(send)
			return
		}
		if !sleep(r.Context(), c.rep.TokenDelay) {
			return
		}
		d := &deltaJSON{}
		if p.tool != nil {
			d.ToolCalls = []toolCallJSON{*p.tool}
		} else {
			text := p.text
			d.Content = &text
		}
		send(c.chunk([]choiceJSON{{Delta: d}}))
	}
	if c.rep.Cut {
		c.cut(send)
		return
	}
	fr := c.finishReason()
	send(c.chunk([]choiceJSON{{Delta: &deltaJSON{}, FinishReason: &fr}}))
	if c.req.IncludeUsage {
		u, _ := json.Marshal(c.usage(len(pieces)))
		last := c.chunk([]choiceJSON{})
		last.Usage = u
		send(last)
	}
	_, _ = w.Write([]byte("data: [DONE]\n\n"))
	if flusher != nil {
		flusher.Flush()
	}
}

// whole writes the reply as one chat.completion object (stream=false).
func (c *completion) whole(w http.ResponseWriter, r *http.Request) {
	if c.rep.Cut {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"id":"` + c.id + `","object":`))
		abort()
	}
	pieces := c.pieces()
	if !sleep(r.Context(), time.Duration(len(pieces))*c.rep.TokenDelay) {
		return
	}
	msg := &deltaJSON{Role: "assistant"}
	if c.rep.Text != "" || len(c.rep.ToolCalls) == 0 {
		text := c.rep.Text
		msg.Content = &text
	}
	for i, tc := range c.rep.ToolCalls {
		t := toolCallJSON{ID: c.toolID(i, tc), Type: "function"}
		t.Function.Name, t.Function.Arguments = tc.Name, tc.Arguments
		msg.ToolCalls = append(msg.ToolCalls, t)
	}
	fr := c.finishReason()
	u := c.usage(len(pieces))
	writeJSON(w, http.StatusOK, struct {
		ID                string       `json:"id"`
		Object            string       `json:"object"`
		Created           int64        `json:"created"`
		Model             string       `json:"model"`
		SystemFingerprint string       `json:"system_fingerprint"`
		Choices           []choiceJSON `json:"choices"`
		Usage             Usage        `json:"usage"`
	}{c.id, "chat.completion", c.created, c.model, "fp_llmtest",
		[]choiceJSON{{Message: msg, FinishReason: &fr}}, u})
}

func (c *completion) cut(send func(any)) {
	if c.rep.ErrorMessage != "" {
		e := apiError{Message: c.rep.ErrorMessage, Type: c.rep.ErrorType, Code: c.rep.ErrorCode}
		if e.Type == "" {
			e.Type = "server_error"
		}
		send(errorBody(e))
		return
	}
	if !c.rep.CutClean {
		abort()
	}
}

// abort drops the connection without finishing the response, the way a
// crashing upstream or a proxy timeout does; net/http recovers this panic
// silently.
func abort() { panic(http.ErrAbortHandler) }

type apiError struct {
	Message string
	Type    string
	Code    string
}

func errorFor(rep Reply, model string) apiError {
	e := apiError{Message: rep.ErrorMessage, Type: rep.ErrorType, Code: rep.ErrorCode}
	var def apiError
	switch rep.Status {
	case http.StatusBadRequest:
		def = apiError{"Invalid request.", "invalid_request_error", ""}
	case http.StatusUnauthorized:
		def = apiError{"Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.", "invalid_request_error", "invalid_api_key"}
	case http.StatusForbidden:
		def = apiError{"You are not allowed to sample from this model.", "invalid_request_error", "permission_denied"}
	case http.StatusNotFound:
		def = apiError{"The model `" + model + "` does not exist or you do not have access to it.", "invalid_request_error", "model_not_found"}
	case http.StatusTooManyRequests:
		def = apiError{"Rate limit reached for " + model + " in organization org-llmtest on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 1s.", "requests", "rate_limit_exceeded"}
	case http.StatusInternalServerError:
		def = apiError{"The server had an error while processing your request. Sorry about that!", "server_error", ""}
	case http.StatusServiceUnavailable:
		def = apiError{"The engine is currently overloaded, please try again later.", "server_error", ""}
	default:
		def = apiError{http.StatusText(rep.Status), "server_error", ""}
	}
	if e.Message == "" {
		e.Message = def.Message
	}
	if e.Type == "" {
		e.Type = def.Type
	}
	if e.Code == "" {
		e.Code = def.Code
	}
	return e
}

// writeError writes OpenAI's error body: {"error":{"message","type","param","code"}}.
func writeError(w http.ResponseWriter, status int, e apiError) {
	writeJSON(w, status, errorBody(e))
}

type errorJSON struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func errorBody(e apiError) errorJSON {
	var b errorJSON
	b.Error.Message, b.Error.Type = e.Message, e.Type
	if e.Code != "" {
		b.Error.Code = &e.Code
	}
	return b
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// sleep waits d, and reports false when the client went away first.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// splitText cuts s into n pieces of about equal length, or word by word
// (each word with the spaces after it) when n <= 0. Joining the pieces gives
// s back.
func splitText(s string, n int) []string {
	if s == "" {
		return nil
	}
	if n > 0 {
		return splitN(s, n)
	}
	var out []string
	start, prevSpace, word := 0, false, false
	for i, r := range s {
		if unicode.IsSpace(r) {
			prevSpace = true
			continue
		}
		if prevSpace && word {
			out = append(out, s[start:i])
			start = i
		}
		prevSpace, word = false, true
	}
	return append(out, s[start:])
}

// splitN cuts s into at most n non-empty pieces of about equal rune count,
// never inside a UTF-8 sequence.
func splitN(s string, n int) []string {
	runes := utf8.RuneCountInString(s)
	if s == "" || n <= 0 {
		return nil
	}
	if n > runes {
		n = runes
	}
	out := make([]string, 0, n)
	start, seen, k := 0, 0, 1
	for i := range s {
		if seen == runes*k/n && seen > 0 {
			out = append(out, s[start:i])
			start = i
			k++
		}
		seen++
	}
	return append(out, s[start:])
}

func ptr[T any](v T) *T { return &v }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
