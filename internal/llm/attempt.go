package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

var (
	// errFirstByteTimeout: the attempt got no stream event within
	// FirstByteTimeout of sending its request.
	errFirstByteTimeout = errors.New("no reply from the LLM endpoint within the first-byte timeout")
	// errIdleTimeout: the stream had started, then stalled for IdleTimeout.
	errIdleTimeout = errors.New("the reply stream stalled for the idle timeout")
	// errCallTimeout: the whole Stream call ran out of its Timeout.
	errCallTimeout = errors.New("no complete reply within the call timeout")
	// errBrokenStream is a stream that ended without a finish reason or the
	// usage chunk: the connection closed early even though the HTTP body
	// ended cleanly (go-openai reports that as a plain io.EOF).
	errBrokenStream = errors.New("the stream ended before the reply was complete")
)

// attemptInfo carries what go-openai does not expose from the HTTP response
// of one attempt: its status and Retry-After.
type attemptInfo struct {
	status     int
	retryAfter time.Duration
}

type attemptInfoKey struct{}

func withAttemptInfo(ctx context.Context, ai *attemptInfo) context.Context {
	return context.WithValue(ctx, attemptInfoKey{}, ai)
}

// recordingDoer is the HTTP client go-openai calls; it copies the response
// headers we need into the attempt's attemptInfo. go-openai calls Do on the
// caller's goroutine, so no locking is needed.
type recordingDoer struct{ c *http.Client }

func (d recordingDoer) Do(req *http.Request) (*http.Response, error) {
	resp, err := d.c.Do(req)
	if ai, ok := req.Context().Value(attemptInfoKey{}).(*attemptInfo); ok && resp != nil {
		ai.status = resp.StatusCode
		ai.retryAfter = parseRetryAfter(resp.Header, time.Now())
	}
	return resp, err
}

// callbacks serialises the caller's callbacks of one Stream call: the
// "waiting" status comes from a timer goroutine, everything else from
// Stream's. waiting (guarded by mu) is the attempt whose first event has not
// come yet, 0 when none: clearing it under mu when the first event arrives,
// and when the attempt ends, waits out a status call in flight and stops any
// later one, so onChunk itself needs no lock.
type callbacks struct {
	onChunk  func(Chunk)
	onStatus func(Status)
	// restart: text was streamed by an attempt that failed; the next text
	// chunk must say Restart. Used on Stream's goroutine only.
	restart bool

	mu      sync.Mutex
	waiting int
}

func (cb *callbacks) status(s Status) {
	if cb.onStatus == nil {
		return
	}
	cb.mu.Lock()
	defer cb.mu.Unlock()
	cb.onStatus(s)
}

// waitingFor marks attempt as waiting for its first event (0: none).
func (cb *callbacks) waitingFor(attempt int) {
	if cb.onStatus == nil {
		return
	}
	cb.mu.Lock()
	cb.waiting = attempt
	cb.mu.Unlock()
}

// slow is the timer's report that attempt has waited d for its first event.
func (cb *callbacks) slow(attempt int, d time.Duration) {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	if cb.waiting == attempt {
		cb.onStatus(Status{Kind: StatusWaiting, Attempt: attempt, Waited: d})
	}
}

// attempt streams one completion. emitted says whether onChunk saw any text,
// i.e. whether a retry must tell the caller to restart.
func (c *openAIClient) attempt(ctx context.Context, creq openai.ChatCompletionRequest, cb *callbacks, n int) (_ *Response, emitted bool, _ error) {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ai := &attemptInfo{}
	actx = withAttemptInfo(actx, ai)
	// One watchdog: first the first-byte timeout, then, reset at every
	// event, the idle timeout.
	var started atomic.Bool
	watchdog := time.AfterFunc(c.opts.FirstByteTimeout, func() {
		if started.Load() {
			cancel(errIdleTimeout)
		} else {
			cancel(errFirstByteTimeout)
		}
	})
	defer watchdog.Stop()
	if cb.onStatus != nil && c.opts.SlowFirstByte < c.opts.FirstByteTimeout {
		cb.waitingFor(n)
		defer cb.waitingFor(0)
		slow := time.AfterFunc(c.opts.SlowFirstByte, func() { cb.slow(n, c.opts.SlowFirstByte) })
		defer slow.Stop()
	}

	start := time.Now()
	fail := func(err error) (*Response, bool, error) {
		switch cause := context.Cause(actx); {
		case cause == errFirstByteTimeout:
			err = fmt.Errorf("%w (%s)", errFirstByteTimeout, c.opts.FirstByteTimeout)
		case cause == errIdleTimeout:
			err = fmt.Errorf("%w (%s)", errIdleTimeout, c.opts.IdleTimeout)
		case cause == errCallTimeout:
			err = fmt.Errorf("%w (%s)", errCallTimeout, c.opts.Timeout)
		}
		// Otherwise the transport's own error, or the caller's cancel.
		return nil, emitted, &attemptError{err: err, info: *ai}
	}
	stream, err := c.api.CreateChatCompletionStream(actx, creq)
	if err != nil {
		return fail(err)
	}
	defer stream.Close()

	var (
		acc   accumulator
		chunk streamChunk
	)
	for {
		raw, err := stream.RecvRaw()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fail(err)
		}
		if !started.Load() {
			started.Store(true)
			cb.waitingFor(0)
		}
		watchdog.Reset(c.opts.IdleTimeout)
		chunk = streamChunk{}
		if err := json.Unmarshal(raw, &chunk); err != nil {
			return fail(fmt.Errorf("decode stream chunk: %w", err))
		}
		if text := acc.add(&chunk); text != "" && cb.onChunk != nil {
			cb.onChunk(Chunk{Content: text, Restart: cb.restart})
			cb.restart = false
			emitted = true
		}
	}
	if !acc.complete() {
		return fail(errBrokenStream)
	}
	res := acc.response()
	if res.Model == "" {
		res.Model = creq.Model
	}
	res.Duration = time.Since(start)
	return res, false, nil
}

// attemptError is a failed attempt with the HTTP facts classify needs.
type attemptError struct {
	err  error
	info attemptInfo
}

func (e *attemptError) Error() string { return e.err.Error() }
func (e *attemptError) Unwrap() error { return e.err }

// accumulator assembles a streamed reply: content deltas, tool calls from
// their deltas (keyed by index), the finish reason and the usage chunk.
type accumulator struct {
	model   string
	content strings.Builder
	tools   []ToolCall
	slot    map[int]int // delta index -> position in tools
	finish  string
	usage   *Usage
}

// streamChunk is the part of a chat.completion.chunk we use. Decoding it
// instead of go-openai's full response type saves about a fifth of the
// client's allocations per token (see BenchmarkStreamClient).
type streamChunk struct {
	Model   string `json:"model"`
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Content   string      `json:"content"`
			ToolCalls []toolDelta `json:"tool_calls"`
		} `json:"delta"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage *Usage `json:"usage"`
}

type toolDelta struct {
	Index    *int   `json:"index"`
	ID       string `json:"id"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// add folds one chunk in and returns its text delta.
func (a *accumulator) add(ch *streamChunk) string {
	if a.model == "" {
		a.model = ch.Model
	}
	if ch.Usage != nil {
		u := *ch.Usage
		a.usage = &u
	}
	var text string
	for i := range ch.Choices {
		choice := &ch.Choices[i]
		if choice.Index != 0 {
			continue // we never ask for n > 1
		}
		if choice.Delta.Content != "" {
			text += choice.Delta.Content
			a.content.WriteString(choice.Delta.Content)
		}
		for _, d := range choice.Delta.ToolCalls {
			a.addToolDelta(d)
		}
		if choice.FinishReason != "" {
			a.finish = choice.FinishReason
		}
	}
	return text
}

func (a *accumulator) addToolDelta(d toolDelta) {
	if a.slot == nil {
		a.slot = map[int]int{}
	}
	var idx int
	switch {
	case d.Index != nil:
		idx = *d.Index
	case d.ID != "" || len(a.tools) == 0:
		// Servers that omit the index start a call with its id.
		idx = len(a.tools)
	default:
		idx = len(a.tools) - 1
	}
	pos, ok := a.slot[idx]
	if !ok {
		pos = len(a.tools)
		a.slot[idx] = pos
		a.tools = append(a.tools, ToolCall{})
	}
	tc := &a.tools[pos]
	if d.ID != "" {
		tc.ID = d.ID
	}
	// Some servers repeat the whole name in every delta, others stream it in
	// pieces.
	if d.Function.Name != "" && d.Function.Name != tc.Name {
		tc.Name += d.Function.Name
	}
	tc.Arguments += d.Function.Arguments
}

func (a *accumulator) complete() bool { return a.finish != "" || a.usage != nil }

func (a *accumulator) response() *Response {
	r := &Response{Model: a.model, Content: a.content.String(), FinishReason: a.finish}
	if a.usage != nil {
		r.Usage = *a.usage
	}
	// Deltas may arrive out of index order; callers want index order.
	idxs := make([]int, 0, len(a.slot))
	for idx := range a.slot {
		idxs = append(idxs, idx)
	}
	slices.Sort(idxs)
	for _, idx := range idxs {
		r.ToolCalls = append(r.ToolCalls, a.tools[a.slot[idx]])
	}
	return r
}
