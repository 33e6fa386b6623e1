package llm

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
)

const testKey = "sk-test-secret-0123456789abcdef"

// newTestClient points a real client at srv with fast backoff; mods adjust
// the options.
func newTestClient(t *testing.T, srv *llmtest.Server, mods ...func(*Options)) Client {
	t.Helper()
	o := Options{
		APIKey:           testKey,
		BaseURL:          srv.URL(),
		DefaultModel:     "gpt-4o-mini",
		BaseBackoff:      time.Millisecond,
		MaxBackoff:       5 * time.Second,
		FirstByteTimeout: 5 * time.Second,
		IdleTimeout:      5 * time.Second,
		Timeout:          time.Minute,
	}
	for _, m := range mods {
		m(&o)
	}
	return NewOpenAI(o)
}

func userSays(s string) Request {
	return Request{Messages: []Message{{Role: "system", Content: "be brief"}, {Role: "user", Content: s}}}
}

// recorder collects what onChunk receives.
type recorder struct {
	mu     sync.Mutex
	chunks []Chunk
}

func (r *recorder) on(c Chunk) {
	r.mu.Lock()
	r.chunks = append(r.chunks, c)
	r.mu.Unlock()
}

// texts renders the chunks with a restart shown as a "<restart>" prefix.
func (r *recorder) texts() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.chunks {
		if c.Restart {
			out = append(out, "<restart>"+c.Content)
			continue
		}
		out = append(out, c.Content)
	}
	return out
}

// shown is the text a client that follows Restart (replace, then append)
// ends up showing.
func (r *recorder) shown() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, c := range r.chunks {
		if c.Restart {
			b.Reset()
		}
		b.WriteString(c.Content)
	}
	return b.String()
}

func asLLMError(t *testing.T, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *llm.Error", err, err)
	}
	return e
}

func TestStreamText(t *testing.T) {
	t.Parallel()
	srv := llmtest.New(t, llmtest.WithAPIKey(testKey))
	srv.Enqueue(llmtest.Reply{Text: "The quick brown fox jumps."})
	c := newTestClient(t, srv)
	var rec recorder
	res, err := c.Stream(context.Background(), userSays("hi"), rec.on)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"The ", "quick ", "brown ", "fox ", "jumps."}
	if got := rec.texts(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("chunks %q, want %q", got, want)
	}
	if res.Content != "The quick brown fox jumps." || res.FinishReason != "stop" || res.Attempts != 1 ||
		res.Model != "gpt-4o-mini" || len(res.ToolCalls) != 0 || res.Duration <= 0 {
		t.Errorf("response %+v", res)
	}
	if c.Provider() != "openai" || !c.Configured() {
		t.Errorf("provider %q configured %v", c.Provider(), c.Configured())
	}
}

func TestStreamChunkedText(t *testing.T) {
	t.Parallel()
	srv := llmtest.New(t)
	text := strings.Repeat("lorem ipsum dolor sit amet ", 20)
	srv.Enqueue(llmtest.Reply{Text: text, Chunks: 7})
	var rec recorder
	res, err := newTestClient(t, srv).Stream(context.Background(), userSays("hi"), rec.on)
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.texts(); len(got) != 7 || strings.Join(got, "") != text || res.Content != text {
		t.Errorf("%d chunks joining to %q", len(got), strings.Join(got, ""))
	}
}

func TestUsageFromUsageChunk(t *testing.T) {
	t.Parallel()
	srv := llmtest.New(t)
	srv.Enqueue(llmtest.Reply{Text: "ok", Usage: &llmtest.Usage{PromptTokens: 123, CompletionTokens: 45, TotalTokens: 168}})
	res, err := newTestClient(t, srv).Stream(context.Background(), userSays("count me"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Usage != (Usage{PromptTokens: 123, CompletionTokens: 45, TotalTokens: 168}) {
		t.Errorf("usage %+v", res.Usage)
	}
	if r := srv.ChatRequests()[0]; !r.Stream || !r.IncludeUsage {
		t.Errorf("request stream=%v include_usage=%v", r.Stream, r.IncludeUsage)
	}
}

func TestToolCallAssembly(t *testing.T) {
	t.Parallel()
	srv := llmtest.New(t)
	srv.Enqueue(llmtest.Reply{
		Text: "Let me check.",
		ToolCalls: []llmtest.ToolCall{
			{ID: "call_weather", Name: "get_weather", Arguments: `{"city":"Paris","unit":"celsius"}`},
			{ID: "call_time", Name: "get_time", Arguments: `{"timezone":"Europe/Paris"}`},
		},
	})
	req := userSays("weather and time in Paris?")
	req.Tools = []Tool{
		{Name: "get_weather", Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}}}`)},
		{Name: "get_time"},
	}
	var rec recorder
	res, err := newTestClient(t, srv).Stream(context.Background(), req, rec.on)
	if err != nil {
		t.Fatal(err)
	}
	want := []ToolCall{
		{ID: "call_weather", Name: "get_weather", Arguments: `{"city":"Paris","unit":"celsius"}`},
		{ID: "call_time", Name: "get_time", Arguments: `{"timezone":"Europe/Paris"}`},
	}
	if len(res.ToolCalls) != 2 || res.ToolCalls[0] != want[0] || res.ToolCalls[1] != want[1] {
		t.Errorf("tool calls %+v, want %+v", res.ToolCalls, want)
	}
	if res.FinishReason != "tool_calls" || res.Content != "Let me check." {
		t.Errorf("finish %q content %q", res.FinishReason, res.Content)
	}
	// Tool-call deltas are not text: only the words reach onChunk.
	if got := strings.Join(rec.texts(), ""); got != "Let me check." {
		t.Errorf("chunks %q", got)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	t.Run("seconds", func(t *testing.T) {
		t.Parallel()
		srv := llmtest.New(t)
		srv.Enqueue(llmtest.Reply{Status: 429, RetryAfter: "1"}, llmtest.Reply{Text: "finally"})
		res, err := newTestClient(t, srv).Stream(context.Background(), userSays("hi"), nil)
		if err != nil {
			t.Fatal(err)
		}
		reqs := srv.ChatRequests()
		if res.Attempts != 2 || len(reqs) != 2 || res.Content != "finally" {
			t.Fatalf("attempts %d, requests %d, content %q", res.Attempts, len(reqs), res.Content)
		}
		if gap := reqs[1].ReceivedAt.Sub(reqs[0].ReceivedAt); gap < time.Second {
			t.Errorf("retried after %s, Retry-After said 1s", gap)
		}
	})
	t.Run("http date", func(t *testing.T) {
		t.Parallel()
		// HTTP dates have whole seconds; the retry may not come before that
		// (wall-clock) instant.
		at := time.Now().Add(2 * time.Second).UTC().Truncate(time.Second)
		srv := llmtest.New(t)
		srv.Enqueue(llmtest.Reply{Status: 503, RetryAfter: at.Format(http.TimeFormat)}, llmtest.Reply{Text: "finally"})
		res, err := newTestClient(t, srv).Stream(context.Background(), userSays("hi"), nil)
		if err != nil {
			t.Fatal(err)
		}
		reqs := srv.ChatRequests()
		if res.Attempts != 2 || len(reqs) != 2 {
			t.Fatalf("attempts %d, requests %d", res.Attempts, len(reqs))
		}
		if got := reqs[1].ReceivedAt.Round(0); got.Before(at) {
			t.Errorf("retried at %s, before the Retry-After date %s", got, at)
		}
	})
}

func TestServerErrorsExhaustRetries(t *testing.T) {
	t.Parallel()
	srv := llmtest.New(t)
	for range 6 {
		srv.Enqueue(llmtest.Reply{Status: 500})
	}
	c := newTestClient(t, srv, func(o *Options) { o.MaxRetries = 3 })
	_, err := c.Stream(context.Background(), userSays("hi"), nil)
	e := asLLMError(t, err)
	if e.Code != CodeUnavailable || !e.Retryable || e.Status != 500 || !strings.Contains(e.Msg, "4 attempts") {
		t.Errorf("error %+v", e)
	}
	if n := len(srv.ChatRequests()); n != 4 {
		t.Errorf("%d requests, want 1 + 3 retries", n)
	}
	if srv.Pending() != 2 {
		t.Errorf("%d replies left, want 2", srv.Pending())
	}
}

func TestBrokenStreamRestarts(t *testing.T) {
	t.Parallel()
	for _, clean := range []bool{false, true} {
		name := "connection dropped"
		if clean {
			name = "clean end without finish"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := llmtest.New(t)
			srv.Enqueue(
				llmtest.Reply{Text: "alpha beta gamma delta", Cut: true, CutAfter: 2, CutClean: clean},
				llmtest.Reply{Text: "alpha beta gamma delta"},
			)
			var rec recorder
			res, err := newTestClient(t, srv).Stream(context.Background(), userSays("hi"), rec.on)
			if err != nil {
				t.Fatal(err)
			}
			want := "alpha |beta |<restart>alpha |beta |gamma |delta"
			if got := strings.Join(rec.texts(), "|"); got != want {
				t.Errorf("chunks %q, want %q", got, want)
			}
			if res.Content != "alpha beta gamma delta" || res.Attempts != 2 {
				t.Errorf("content %q attempts %d", res.Content, res.Attempts)
			}
		})
	}
}

func TestInStreamErrorIsRetried(t *testing.T) {
	t.Parallel()
	srv := llmtest.New(t)
	srv.Enqueue(
		llmtest.Reply{Text: "first try", Cut: true, CutAfter: 1, ErrorMessage: "The server had an error while processing your request."},
		llmtest.Reply{Text: "second try"},
	)
	var rec recorder
	res, err := newTestClient(t, srv).Stream(context.Background(), userSays("hi"), rec.on)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rec.texts(), "|"); got != "first |<restart>second |try" || res.Attempts != 2 {
		t.Errorf("chunks %q, attempts %d", got, res.Attempts)
	}
}

func TestNoRestartWhenNothingWasStreamed(t *testing.T) {
	t.Parallel()
	srv := llmtest.New(t)
	srv.Enqueue(llmtest.Reply{Text: "a b", Cut: true, CutAfter: 0}, llmtest.Reply{Text: "a b"})
	var rec recorder
	if _, err := newTestClient(t, srv).Stream(context.Background(), userSays("hi"), rec.on); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rec.texts(), "|"); got != "a |b" {
		t.Errorf("chunks %q", got)
	}
}

func TestRejections(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		srvOpts    []llmtest.Option
		reply      *llmtest.Reply
		model      string
		wantStatus int
		wantMsg    string
	}{
		{"wrong key", []llmtest.Option{llmtest.WithAPIKey("sk-the-right-key-000000")}, nil, "", 401, "rejected the API key (401)"},
		{"forbidden", nil, &llmtest.Reply{Status: 403}, "", 403, "refused access (403)"},
		{"unknown model", []llmtest.Option{llmtest.WithStrictModels()}, nil, "gpt-nope", 404, `404 for model "gpt-nope"`},
		{"bad request", nil, &llmtest.Reply{Status: 400, ErrorMessage: "Invalid schema for response_format 'out'"}, "", 400, "rejected the request (400): Invalid schema"},
		{"quota", nil, &llmtest.Reply{Status: 429, ErrorCode: "insufficient_quota", ErrorMessage: "You exceeded your current quota"}, "", 429, "no quota left"},
		{"key echoed in message", nil, &llmtest.Reply{Status: 400, ErrorMessage: "bad key " + testKey + " and sk-abc***wxyz"}, "", 400, "bad key [redacted] and [redacted]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := llmtest.New(t, tt.srvOpts...)
			if tt.reply != nil {
				srv.Enqueue(*tt.reply)
			}
			req := userSays("hi")
			req.Model = tt.model
			_, err := newTestClient(t, srv).Stream(context.Background(), req, nil)
			e := asLLMError(t, err)
			if e.Code != CodeRejected || e.Retryable || e.Status != tt.wantStatus || !strings.Contains(e.Msg, tt.wantMsg) {
				t.Errorf("error %+v, want status %d and %q", e, tt.wantStatus, tt.wantMsg)
			}
			// Neither the key nor OpenAI's masked echo of it ("sk-tes****cdef").
			for _, leak := range []string{testKey, "sk-tes", "cdef"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("error text leaks %q: %s", leak, err)
				}
			}
			if n := len(srv.ChatRequests()); n != 1 {
				t.Errorf("%d requests, want no retry", n)
			}
		})
	}
}

func TestNotConfigured(t *testing.T) {
	t.Parallel()
	c := NewOpenAI(Options{})
	if c.Configured() {
		t.Error("configured without key or base URL")
	}
	_, err := c.Stream(context.Background(), userSays("hi"), nil)
	if e := asLLMError(t, err); e.Code != CodeNotConfigured || e.Retryable {
		t.Errorf("stream: %+v", e)
	}
	_, err = c.Models(context.Background())
	if e := asLLMError(t, err); e.Code != CodeNotConfigured {
		t.Errorf("models: %+v", e)
	}
	if !NewOpenAI(Options{BaseURL: "http://127.0.0.1:1/v1"}).Configured() {
		t.Error("a base URL alone (local server without key) should count as configured")
	}
}

// cancelOnRetry is a slog handler that cancels a context when the client
// logs that it is about to back off: the cancel lands inside the wait.
type cancelOnRetry struct {
	slog.Handler
	cancel context.CancelFunc
}

func (h cancelOnRetry) Enabled(context.Context, slog.Level) bool { return true }
func (h cancelOnRetry) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "retrying") {
		h.cancel()
	}
	return nil
}
func (h cancelOnRetry) WithAttrs([]slog.Attr) slog.Handler { return h }

func TestCancelDuringBackoff(t *testing.T) {
	t.Parallel()
	srv := llmtest.New(t)
	srv.Enqueue(llmtest.Reply{Status: 429, RetryAfter: "30"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := newTestClient(t, srv, func(o *Options) {
		o.MaxBackoff = time.Minute
		o.Logger = slog.New(cancelOnRetry{cancel: cancel})
	})
	_, err := c.Stream(ctx, userSays("hi"), nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if n := len(srv.ChatRequests()); n != 1 {
		t.Errorf("%d requests after cancel, want 1", n)
	}
}

func TestRetryAfterBeyondMaxBackoffGivesUp(t *testing.T) {
	t.Parallel()
	srv := llmtest.New(t)
	srv.Enqueue(llmtest.Reply{Status: 429, RetryAfter: "600"})
	_, err := newTestClient(t, srv).Stream(context.Background(), userSays("hi"), nil)
	e := asLLMError(t, err)
	if e.Code != CodeUnavailable || !e.Retryable || e.Status != 429 || !strings.Contains(e.Msg, "retry after 10m0s") {
		t.Errorf("error %+v", e)
	}
	if n := len(srv.ChatRequests()); n != 1 {
		t.Errorf("%d requests", n)
	}
}

func TestFirstByteTimeoutIsRetried(t *testing.T) {
	t.Parallel()
	srv := llmtest.New(t)
	srv.Enqueue(llmtest.Reply{Text: "slow", FirstByteDelay: time.Minute}, llmtest.Reply{Text: "fast"})
	c := newTestClient(t, srv, func(o *Options) { o.FirstByteTimeout, o.IdleTimeout = 300*time.Millisecond, time.Hour })
	res, err := c.Stream(context.Background(), userSays("hi"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Content != "fast" || res.Attempts != 2 {
		t.Errorf("content %q attempts %d", res.Content, res.Attempts)
	}
}

func TestStalledStreamIsRetried(t *testing.T) {
	t.Parallel()
	srv := llmtest.New(t)
	// Headers and the role chunk come at once, then nothing.
	srv.Enqueue(llmtest.Reply{Text: "stuck", TokenDelay: time.Minute}, llmtest.Reply{Text: "flowing"})
	c := newTestClient(t, srv, func(o *Options) { o.FirstByteTimeout, o.IdleTimeout = time.Hour, 300*time.Millisecond })
	res, err := c.Stream(context.Background(), userSays("hi"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Content != "flowing" || res.Attempts != 2 {
		t.Errorf("content %q attempts %d", res.Content, res.Attempts)
	}
}

func TestUnreachableEndpoint(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there any more: connection refused
	c := NewOpenAI(Options{BaseURL: "http://" + addr + "/v1", MaxRetries: 2, BaseBackoff: time.Millisecond})
	_, err = c.Stream(context.Background(), userSays("hi"), nil)
	if e := asLLMError(t, err); e.Code != CodeUnavailable || !e.Retryable || e.Status != 0 || !strings.Contains(e.Msg, "3 attempts") {
		t.Errorf("error %+v", e)
	}
}

func TestRequestReachesServer(t *testing.T) {
	t.Parallel()
	srv := llmtest.New(t)
	c := newTestClient(t, srv)
	temp := float32(0.3)
	schema := json.RawMessage(`{"type":"object","properties":{"answer":{"type":"string"}},"required":["answer"]}`)
	req := Request{
		Model: "gpt-4o",
		Messages: []Message{
			{Role: "system", Content: "You are terse."},
			{Role: "user", Content: "What is 6*7?", Name: "alice"},
			{Role: "assistant", Name: "calculator_agent", ToolCalls: []ToolCall{{ID: "c1", Name: "mul", Arguments: `{"a":6,"b":7}`}}},
			{Role: "tool", ToolCallID: "c1", Content: "42"},
		},
		Tools:          []Tool{{Name: "mul", Description: "multiply", Parameters: json.RawMessage(`{"type":"object"}`)}, {Name: "noargs"}},
		Temperature:    &temp,
		MaxTokens:      77,
		ResponseFormat: &ResponseFormat{Name: "result", Schema: schema, Strict: true},
	}
	if _, err := c.Stream(context.Background(), req, nil); err != nil {
		t.Fatal(err)
	}
	r := srv.ChatRequests()[0]
	if r.APIKey != testKey || r.Model != "gpt-4o" || r.Temperature == nil || float32(*r.Temperature) != 0.3 || r.MaxTokens == nil || *r.MaxTokens != 77 {
		t.Errorf("scalars: key %q model %q temp %v max %v", r.APIKey, r.Model, r.Temperature, r.MaxTokens)
	}
	if rf := r.ResponseFormat; rf == nil || rf.Type != "json_schema" || rf.Name != "result" || !rf.Strict || !jsonEqual(rf.Schema, schema) {
		t.Errorf("response format %+v", r.ResponseFormat)
	}
	if len(r.Tools) != 2 || r.Tools[0].Name != "mul" || r.Tools[0].Description != "multiply" || r.Tools[1].Name != "noargs" ||
		!jsonEqual(r.Tools[1].Parameters, json.RawMessage(`{"type":"object","properties":{}}`)) {
		t.Errorf("tools %+v", r.Tools)
	}
	m := r.Messages
	if len(m) != 4 || m[1].Name != "alice" || m[2].Name != "calculator_agent" || len(m[2].ToolCalls) != 1 ||
		m[2].ToolCalls[0] != (llmtest.ToolCall{ID: "c1", Name: "mul", Arguments: `{"a":6,"b":7}`}) || m[3].ToolCallID != "c1" || m[3].Content != "42" {
		t.Errorf("messages %+v", m)
	}
}

func TestRequestDefaultsAndEdgeValues(t *testing.T) {
	t.Parallel()
	srv := llmtest.New(t)
	c := newTestClient(t, srv, func(o *Options) { o.DefaultModel = "my-default" })
	zero := float32(0)
	for _, req := range []Request{
		{Messages: []Message{{Role: "user", Content: "x"}}, Temperature: &zero},
		{Model: "o3-mini", Messages: []Message{{Role: "user", Content: "x"}}, MaxTokens: 10},
	} {
		if _, err := c.Stream(context.Background(), req, nil); err != nil {
			t.Fatal(err)
		}
	}
	reqs := srv.ChatRequests()
	if r := reqs[0]; r.Model != "my-default" || r.Temperature == nil || *r.Temperature > 1e-30 {
		t.Errorf("default model %q, zero temperature sent as %v", r.Model, r.Temperature)
	}
	if r := reqs[1]; !strings.Contains(string(r.Body), `"max_completion_tokens":10`) || strings.Contains(string(r.Body), `"max_tokens"`) {
		t.Errorf("reasoning model body %s", r.Body)
	}
}

func TestInvalidRequests(t *testing.T) {
	t.Parallel()
	srv := llmtest.New(t)
	c := newTestClient(t, srv)
	tests := []struct {
		name string
		req  Request
	}{
		{"no messages", Request{}},
		{"nameless tool", Request{Messages: []Message{{Role: "user", Content: "x"}}, Tools: []Tool{{Description: "?"}}}},
		{"schema-less format", Request{Messages: []Message{{Role: "user", Content: "x"}}, ResponseFormat: &ResponseFormat{Name: "x"}}},
	}
	for _, tt := range tests {
		_, err := c.Stream(context.Background(), tt.req, nil)
		if e := asLLMError(t, err); e.Code != CodeRejected {
			t.Errorf("%s: %+v", tt.name, e)
		}
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("%d requests sent for invalid input", n)
	}
}

func TestModels(t *testing.T) {
	t.Parallel()
	srv := llmtest.New(t, llmtest.WithAPIKey(testKey), llmtest.WithModels("gpt-4o-mini", "llama3"))
	tests := []struct {
		name     string
		mod      func(*Options)
		want     []string
		wantCode string
		wantMsg  string
	}{
		{"lists", nil, []string{"gpt-4o-mini", "llama3"}, "", ""},
		{"bad key", func(o *Options) { o.APIKey = "sk-bad-bad-bad-bad" }, nil, CodeRejected, "(401)"},
		{"doubled v1", func(o *Options) { o.BaseURL += "/v1" }, nil, CodeRejected, "check the base URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var mods []func(*Options)
			if tt.mod != nil {
				mods = append(mods, tt.mod)
			}
			got, err := newTestClient(t, srv, mods...).Models(context.Background())
			if tt.wantCode == "" {
				if err != nil || strings.Join(got, ",") != strings.Join(tt.want, ",") {
					t.Errorf("models %v, %v", got, err)
				}
				return
			}
			if e := asLLMError(t, err); e.Code != tt.wantCode || !strings.Contains(e.Msg, tt.wantMsg) {
				t.Errorf("error %+v", e)
			}
		})
	}
}

func TestNewProvider(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, want string
		wantErr    bool
	}{{"", "openai", false}, {"openai", "openai", false}, {"ECHO", "echo", false}, {"anthropic", "", true}} {
		c, err := New(tt.name, Options{})
		if (err != nil) != tt.wantErr || (err == nil && c.Provider() != tt.want) {
			t.Errorf("New(%q) = %v, %v", tt.name, c, err)
		}
	}
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}
