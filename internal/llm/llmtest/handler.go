// Package llmtest is a scriptable OpenAI-compatible HTTP server for tests: it
// speaks the real wire format (SSE chat.completion.chunk events, tool-call
// deltas, the usage chunk, [DONE], OpenAI error bodies, Retry-After) so the
// real go-openai client can be tested against it over loopback.
//
// Replies come from a FIFO queue (Enqueue) and, when it is empty, from a
// responder function (WithResponder / SetResponder; by default EchoResponder).
// Every request is recorded, parsed, for assertions (Requests, ChatRequests).
//
//	srv := llmtest.New(t, llmtest.WithAPIKey("sk-test"))
//	srv.Enqueue(
//		llmtest.Reply{Status: 429, RetryAfter: "1"},
//		llmtest.Reply{Text: "Hello there", ToolCalls: []llmtest.ToolCall{{Name: "lookup", Arguments: `{"q":"x"}`}}},
//	)
//	client := llm.NewOpenAI(llm.Options{BaseURL: srv.URL(), APIKey: "sk-test"})
//	...
//	got := srv.ChatRequests()[1].Temperature
//
// The fake does not import package llm, so it can serve tests of any client
// and, through NewHandler, run as a standalone process.
package llmtest

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultModels is what GET /v1/models lists unless WithModels says otherwise.
var DefaultModels = []string{"gpt-4o-mini", "gpt-4o"}

// maxBody bounds a request body; OpenAI's own limit is far higher, but no
// test needs more.
const maxBody = 16 << 20

type config struct {
	apiKey       string
	models       []string
	strictModels bool
	responder    func(Request) Reply
	recordLimit  int
}

// Option configures a Handler (and so a Server).
type Option func(*config)

// WithAPIKey makes the fake require "Authorization: Bearer <key>" and answer
// 401 with OpenAI's error body otherwise.
func WithAPIKey(key string) Option { return func(c *config) { c.apiKey = key } }

// WithModels sets the model ids GET /v1/models lists.
func WithModels(ids ...string) Option {
	return func(c *config) { c.models = append([]string(nil), ids...) }
}

// WithStrictModels makes a chat request for a model not listed answer 404
// model_not_found, as OpenAI does.
func WithStrictModels() Option { return func(c *config) { c.strictModels = true } }

// WithResponder sets the reply used when the queue is empty.
func WithResponder(f func(Request) Reply) Option { return func(c *config) { c.responder = f } }

// WithRecordLimit keeps only the last n requests (0: all), for long-running
// use outside tests.
func WithRecordLimit(n int) Option { return func(c *config) { c.recordLimit = n } }

// EchoResponder is the default responder: it repeats the last user message.
func EchoResponder(r Request) Reply {
	return Reply{Text: "You said: " + r.LastUserMessage()}
}

// Handler is the fake's http.Handler, usable on its own (NewHandler) to serve
// the fake from a standalone process.
type Handler struct {
	cfg  config
	ids  atomic.Int64
	mu   sync.Mutex
	q    []Reply
	resp func(Request) Reply
	reqs []Request
}

// NewHandler builds the fake's handler. Routes: POST /v1/chat/completions,
// GET /v1/models; anything else gets OpenAI's 404 "Invalid URL" error.
func NewHandler(opts ...Option) *Handler {
	cfg := config{models: DefaultModels, responder: EchoResponder}
	for _, o := range opts {
		o(&cfg)
	}
	return &Handler{cfg: cfg, resp: cfg.responder}
}

// Enqueue appends replies to the FIFO queue; each chat request takes one.
func (h *Handler) Enqueue(replies ...Reply) {
	h.mu.Lock()
	h.q = append(h.q, replies...)
	h.mu.Unlock()
}

// SetResponder replaces the reply used when the queue is empty.
func (h *Handler) SetResponder(f func(Request) Reply) {
	h.mu.Lock()
	h.resp = f
	h.mu.Unlock()
}

// Pending is the number of queued replies not used yet.
func (h *Handler) Pending() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.q)
}

// Requests returns a copy of every request received so far (all paths,
// including the ones answered 401 or 404), in arrival order.
func (h *Handler) Requests() []Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Request(nil), h.reqs...)
}

// ChatRequests returns the recorded requests to /v1/chat/completions.
func (h *Handler) ChatRequests() []Request {
	var out []Request
	for _, r := range h.Requests() {
		if r.Path == "/v1/chat/completions" {
			out = append(out, r)
		}
	}
	return out
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := Request{Method: r.Method, Path: r.URL.Path, ReceivedAt: time.Now()}
	if auth := r.Header.Get("Authorization"); strings.HasPrefix(auth, "Bearer ") {
		rec.APIKey = strings.TrimPrefix(auth, "Bearer ")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return // the client went away
	}
	if len(body) > 0 {
		rec.Body = body
	}
	route := r.Method + " " + r.URL.Path
	var parseErr error
	if route == routeChat && len(body) <= maxBody {
		parseErr = parseChatRequest(body, &rec)
	}
	h.record(rec)

	switch {
	case h.cfg.apiKey != "" && rec.APIKey != h.cfg.apiKey:
		msg := "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
		if rec.APIKey != "" {
			msg = "Incorrect API key provided: " + maskKey(rec.APIKey) + ". You can find your API key at https://platform.openai.com/account/api-keys."
		}
		writeError(w, http.StatusUnauthorized, apiError{Message: msg, Type: "invalid_request_error", Code: "invalid_api_key"})
	case len(body) > maxBody:
		writeError(w, http.StatusRequestEntityTooLarge, apiError{Message: "Request body too large.", Type: "invalid_request_error"})
	case route == routeChat && parseErr != nil:
		writeError(w, http.StatusBadRequest, apiError{Message: parseErr.Error(), Type: "invalid_request_error"})
	case route == routeChat:
		h.chatCompletions(w, r, &rec)
	case route == routeModels:
		h.listModels(w)
	default:
		// OpenAI's answer to a wrong path, e.g. a doubled /v1.
		writeError(w, http.StatusNotFound, apiError{
			Message: "Invalid URL (" + route + ")",
			Type:    "invalid_request_error",
		})
	}
}

const (
	routeChat   = "POST /v1/chat/completions"
	routeModels = "GET /v1/models"
)

func (h *Handler) record(rec Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reqs = append(h.reqs, rec)
	if n := h.cfg.recordLimit; n > 0 && len(h.reqs) > n {
		h.reqs = append(h.reqs[:0], h.reqs[len(h.reqs)-n:]...)
	}
}

// next takes the reply for a request: the queue's head, else the responder.
func (h *Handler) next(req Request) Reply {
	h.mu.Lock()
	if len(h.q) > 0 {
		rep := h.q[0]
		h.q = h.q[1:]
		h.mu.Unlock()
		return rep
	}
	f := h.resp
	h.mu.Unlock()
	return f(req)
}

func (h *Handler) listModels(w http.ResponseWriter) {
	type model struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	list := struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{Object: "list", Data: []model{}}
	for _, id := range h.cfg.models {
		list.Data = append(list.Data, model{ID: id, Object: "model", Created: 1700000000, OwnedBy: "llmtest"})
	}
	writeJSON(w, http.StatusOK, list)
}

func (h *Handler) chatCompletions(w http.ResponseWriter, r *http.Request, rec *Request) {
	if h.cfg.strictModels && !contains(h.cfg.models, rec.Model) {
		writeError(w, http.StatusNotFound, apiError{
			Message: "The model `" + rec.Model + "` does not exist or you do not have access to it.",
			Type:    "invalid_request_error",
			Code:    "model_not_found",
		})
		return
	}
	rep := h.next(*rec)
	if !sleep(r.Context(), rep.FirstByteDelay) {
		return
	}
	if rep.RetryAfter != "" {
		w.Header().Set("Retry-After", rep.RetryAfter)
	}
	if rep.Status != 0 && rep.Status != http.StatusOK {
		writeError(w, rep.Status, errorFor(rep, rec.Model))
		return
	}
	c := completion{
		id:      "chatcmpl-llmtest-" + itoa(h.ids.Add(1)),
		created: time.Now().Unix(),
		model:   rec.Model,
		req:     rec,
		rep:     rep,
	}
	if rep.Model != "" {
		c.model = rep.Model
	}
	if rec.Stream {
		c.stream(w, r)
		return
	}
	c.whole(w, r)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// maskKey hides a key the way OpenAI does in its 401 message: a few leading
// and trailing characters survive, so clients must redact such messages.
func maskKey(k string) string {
	if len(k) <= 10 {
		return "***"
	}
	return k[:6] + strings.Repeat("*", 8) + k[len(k)-4:]
}
