package llm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

// DefaultModel is used when neither the request nor Options name a model.
const DefaultModel = "gpt-4o-mini"

// Options configures the OpenAI-compatible client. Zero values take the
// defaults noted on each field.
type Options struct {
	APIKey string
	// BaseURL is any OpenAI-compatible endpoint including its version path,
	// e.g. http://127.0.0.1:1234/v1 (default https://api.openai.com/v1).
	BaseURL      string
	DefaultModel string       // default DefaultModel
	HTTPClient   *http.Client // default: a pooled client without an overall timeout (streams are long)
	// MaxRetries is how many times a failed call is retried (default 4; a
	// negative value disables retries).
	MaxRetries  int
	BaseBackoff time.Duration // first wait (default 500ms), doubled per retry, with jitter
	// MaxBackoff caps a wait (default 30s). A Retry-After longer than this
	// ends the retries at once: waiting that long inside a chat turn helps
	// nobody.
	MaxBackoff time.Duration
	// FirstByteTimeout bounds each attempt's wait from sending the request to
	// the first event of the reply stream (default DefaultFirstByteTimeout):
	// a silent endpoint is retried (or given up on) after this long, not
	// after Timeout.
	FirstByteTimeout time.Duration
	// IdleTimeout bounds each gap between events once the stream has started
	// (default DefaultIdleTimeout), so a stalled stream is retried.
	IdleTimeout time.Duration
	// Timeout bounds a whole Stream call: every attempt and every back-off
	// (default DefaultTimeout). A retry that could not start before it
	// runs out is not made.
	Timeout time.Duration
	// SlowFirstByte is how long an attempt waits for its first event before
	// Request.OnStatus hears StatusWaiting (default 5s; never, when it is
	// not shorter than FirstByteTimeout).
	SlowFirstByte time.Duration
	Logger        *slog.Logger // default: discard
}

// Default timeouts of the OpenAI-compatible client.
const (
	DefaultFirstByteTimeout = 30 * time.Second
	DefaultIdleTimeout      = 30 * time.Second
	DefaultTimeout          = 5 * time.Minute
	DefaultSlowFirstByte    = 5 * time.Second
)

// New builds the client for a provider name as configured by LLM_PROVIDER:
// "openai" (or "") or "echo".
func New(provider string, o Options) (Client, error) {
	switch strings.ToLower(provider) {
	case "", ProviderOpenAI:
		return NewOpenAI(o), nil
	case ProviderEcho:
		return NewEcho(), nil
	}
	return nil, fmt.Errorf("unknown LLM provider %q: want %s or %s", provider, ProviderOpenAI, ProviderEcho)
}

// Provider names returned by Client.Provider.
const (
	ProviderOpenAI = "openai"
	ProviderEcho   = "echo"
)

type openAIClient struct {
	api  *openai.Client
	opts Options
	log  *slog.Logger
	// jitter picks the wait in [d/2, d]; replaceable so tests need not sleep
	// at random.
	jitter func(d time.Duration) time.Duration
}

// NewOpenAI builds a client for an OpenAI-compatible endpoint. It does no
// I/O; a client with neither key nor base URL reports Configured() == false
// and fails every call with LLM_NOT_CONFIGURED.
func NewOpenAI(o Options) Client {
	if o.DefaultModel == "" {
		o.DefaultModel = DefaultModel
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = 4
	} else if o.MaxRetries < 0 {
		o.MaxRetries = 0
	}
	if o.BaseBackoff <= 0 {
		o.BaseBackoff = 500 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.FirstByteTimeout <= 0 {
		o.FirstByteTimeout = DefaultFirstByteTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.SlowFirstByte <= 0 {
		o.SlowFirstByte = DefaultSlowFirstByte
	}
	if o.HTTPClient == nil {
		o.HTTPClient = defaultHTTPClient()
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg := openai.DefaultConfig(o.APIKey)
	if o.BaseURL != "" {
		cfg.BaseURL = strings.TrimRight(o.BaseURL, "/")
	}
	cfg.HTTPClient = recordingDoer{o.HTTPClient}
	return &openAIClient{
		api:  openai.NewClientWithConfig(cfg),
		opts: o,
		log:  log.With("llm_provider", ProviderOpenAI),
		jitter: func(d time.Duration) time.Duration {
			return d/2 + rand.N(d/2+1)
		},
	}
}

func defaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	// Many chats stream from one endpoint at once; keeping fewer idle
	// connections than chats in flight makes the rest dial (and shake TLS
	// hands) anew on every turn, on the path to the first token. Idle
	// connections close after IdleConnTimeout (90 s) anyway.
	t.MaxIdleConns = 2048
	t.MaxIdleConnsPerHost = 1024
	return &http.Client{Transport: t}
}

func (c *openAIClient) Provider() string { return ProviderOpenAI }

func (c *openAIClient) Configured() bool { return c.opts.APIKey != "" || c.opts.BaseURL != "" }

func notConfigured() *Error {
	return &Error{
		Code: CodeNotConfigured,
		Msg:  "no LLM is configured: set OPENAI_API_KEY (or OPENAI_BASE_URL for a compatible endpoint), or LLM_PROVIDER=echo for the offline stand-in",
	}
}

// Stream runs one chat completion with bounded retries; see Options for the
// policy and Chunk.Restart for how a retry after streamed text is announced.
func (c *openAIClient) Stream(ctx context.Context, req Request, onChunk func(Chunk)) (*Response, error) {
	if !c.Configured() {
		return nil, notConfigured()
	}
	creq, err := c.chatRequest(req)
	if err != nil {
		return nil, &Error{Code: CodeRejected, Msg: err.Error()}
	}
	cctx, cancel := context.WithTimeoutCause(ctx, c.opts.Timeout, errCallTimeout)
	defer cancel()
	cb := &callbacks{onChunk: onChunk, onStatus: req.OnStatus}
	for attempt := 1; ; attempt++ {
		res, emitted, err := c.attempt(cctx, creq, cb, attempt)
		if err == nil {
			if cb.restart && onChunk != nil {
				// The reply has no text to carry the restart.
				onChunk(Chunk{Restart: true})
			}
			res.Attempts = attempt
			return res, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("stream completion: %w", ctx.Err())
		}
		f := c.classify(err, creq.Model)
		if !f.retryable {
			return nil, &Error{Code: CodeRejected, Status: f.status, Msg: f.msg, Err: f.cause}
		}
		unavailable := func(why string) error {
			msg := fmt.Sprintf("the LLM endpoint is unavailable: %s, %d attempt%s", f.msg, attempt, plural(attempt))
			if why != "" {
				msg += "; " + why
			}
			return &Error{Code: CodeUnavailable, Status: f.status, Retryable: true, Msg: msg, Err: f.cause}
		}
		if errors.Is(err, errCallTimeout) {
			return nil, unavailable("")
		}
		wait, retry, why := c.wait(attempt, f)
		if !retry {
			return nil, unavailable(why)
		}
		if deadline, ok := cctx.Deadline(); ok && time.Until(deadline) <= wait {
			return nil, unavailable(fmt.Sprintf("no time left for another attempt within the call timeout (%s)", c.opts.Timeout))
		}
		c.log.LogAttrs(ctx, slog.LevelWarn, "llm call failed, retrying",
			slog.String("model", creq.Model), slog.Int("attempt", attempt), slog.Int("status", f.status),
			slog.String("reason", f.msg), slog.Duration("wait", wait), slog.Bool("mid_stream", emitted))
		if emitted {
			cb.restart = true
		}
		cb.status(Status{Kind: StatusRetrying, Attempt: attempt + 1, RetryIn: wait, Cause: f.msg})
		if err := sleepCtx(cctx, wait); err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("stream completion: wait to retry: %w", ctx.Err())
			}
			return nil, unavailable("")
		}
	}
}

// wait decides how long to back off before the next attempt, or that there
// is none (and why, when it is not just the retry budget).
func (c *openAIClient) wait(failures int, f failure) (d time.Duration, retry bool, why string) {
	if failures > c.opts.MaxRetries {
		return 0, false, ""
	}
	if f.retryAfter > c.opts.MaxBackoff {
		return 0, false, fmt.Sprintf("it asks to retry after %s", f.retryAfter.Round(time.Second))
	}
	d = c.opts.BaseBackoff << (failures - 1)
	if d > c.opts.MaxBackoff || d <= 0 {
		d = c.opts.MaxBackoff
	}
	d = c.jitter(d)
	// Retry-After is the server's floor, never shortened by jitter.
	return max(d, f.retryAfter), true, ""
}

// reasoningModel reports models that take max_completion_tokens and refuse
// max_tokens.
func reasoningModel(m string) bool {
	for _, p := range []string{"o1", "o3", "o4", "gpt-5", "gpt-6"} {
		if strings.HasPrefix(m, p) {
			return true
		}
	}
	return false
}

func (c *openAIClient) chatRequest(req Request) (openai.ChatCompletionRequest, error) {
	model := req.Model
	if model == "" {
		model = c.opts.DefaultModel
	}
	if len(req.Messages) == 0 {
		return openai.ChatCompletionRequest{}, errors.New("a chat completion needs at least one message")
	}
	cr := openai.ChatCompletionRequest{
		Model:         model,
		Stream:        true,
		StreamOptions: &openai.StreamOptions{IncludeUsage: true},
		Messages:      make([]openai.ChatCompletionMessage, 0, len(req.Messages)),
	}
	for _, m := range req.Messages {
		om := openai.ChatCompletionMessage{Role: m.Role, Content: m.Content, Name: m.Name, ToolCallID: m.ToolCallID}
		for _, tc := range m.ToolCalls {
			om.ToolCalls = append(om.ToolCalls, openai.ToolCall{
				ID: tc.ID, Type: openai.ToolTypeFunction,
				Function: openai.FunctionCall{Name: tc.Name, Arguments: tc.Arguments},
			})
		}
		cr.Messages = append(cr.Messages, om)
	}
	for _, t := range req.Tools {
		if t.Name == "" {
			return cr, errors.New("a tool offered to the model has no name")
		}
		params := t.Parameters
		if len(params) == 0 {
			// OpenAI rejects "parameters": null; an empty object schema is
			// what a tool without arguments means.
			params = []byte(`{"type":"object","properties":{}}`)
		}
		cr.Tools = append(cr.Tools, openai.Tool{
			Type:     openai.ToolTypeFunction,
			Function: &openai.FunctionDefinition{Name: t.Name, Description: t.Description, Parameters: params},
		})
	}
	if req.Temperature != nil {
		cr.Temperature = *req.Temperature
		if cr.Temperature == 0 {
			// go-openai drops a zero temperature (omitempty), which would
			// leave the server's default of 1; the smallest positive float
			// is greedy decoding in effect.
			cr.Temperature = math.SmallestNonzeroFloat32
		}
	}
	if req.MaxTokens > 0 {
		if reasoningModel(model) {
			cr.MaxCompletionTokens = req.MaxTokens
		} else {
			// max_tokens is what most compatible servers (vLLM, Ollama,
			// llama.cpp) understand.
			//lint:ignore SA1019 deprecated by OpenAI for its reasoning models only (handled above)
			cr.MaxTokens = req.MaxTokens
		}
	}
	if rf := req.ResponseFormat; rf != nil {
		if rf.Name == "" || len(rf.Schema) == 0 {
			return cr, errors.New("a response format needs a name and a JSON schema")
		}
		cr.ResponseFormat = &openai.ChatCompletionResponseFormat{
			Type:       openai.ChatCompletionResponseFormatTypeJSONSchema,
			JSONSchema: &openai.ChatCompletionResponseFormatJSONSchema{Name: rf.Name, Schema: rf.Schema, Strict: rf.Strict},
		}
	}
	return cr, nil
}

// Models lists the endpoint's model ids in one attempt: it serves checks
// (doctor, init) that want a prompt and precise answer, not patience.
func (c *openAIClient) Models(ctx context.Context) ([]string, error) {
	if !c.Configured() {
		return nil, notConfigured()
	}
	actx, cancel := context.WithTimeout(ctx, c.opts.FirstByteTimeout)
	defer cancel()
	list, err := c.api.ListModels(withAttemptInfo(actx, &attemptInfo{}))
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("list models: %w", ctx.Err())
		}
		if actx.Err() != nil {
			err = errFirstByteTimeout
		}
		f := c.classify(err, "")
		code := CodeRejected
		if f.retryable {
			code = CodeUnavailable
		}
		return nil, &Error{Code: code, Status: f.status, Retryable: f.retryable, Msg: "list models: " + f.msg, Err: f.cause}
	}
	ids := make([]string, 0, len(list.Models))
	for _, m := range list.Models {
		ids = append(ids, m.ID)
	}
	return ids, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
