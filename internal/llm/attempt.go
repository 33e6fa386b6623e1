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
	"time"

	openai "github.com/sashabaranov/go-openai"
)

var (
	errAttemptTimeout = errors.New("no data from the LLM endpoint within the timeout")
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

// attempt streams one completion. emitted says whether onChunk saw any text,
// i.e. whether a retry must tell the caller to restart.
func (c *openAIClient) attempt(ctx context.Context, creq openai.ChatCompletionRequest, onChunk func(Chunk)) (_ *Response, emitted bool, _ error) {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ai := &attemptInfo{}
	actx = withAttemptInfo(actx, ai)
	watchdog := time.AfterFunc(c.opts.Timeout, func() { cancel(errAttemptTimeout) })
	defer watchdog.Stop()

	start := time.Now()
	fail := func(err error) (*Response, bool, error) {
		if context.Cause(actx) == errAttemptTimeout && ctx.Err() == nil {
			// The transport's own error only repeats the cancel cause.
			err = fmt.Errorf("%w (%s)", errAttemptTimeout, c.opts.Timeout)
		}
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
		watchdog.Reset(c.opts.Timeout)
		chunk = streamChunk{}
		if err := json.Unmarshal(raw, &chunk); err != nil {
			return fail(fmt.Errorf("decode stream chunk: %w", err))
		}
		if text := acc.add(&chunk); text != "" && onChunk != nil {
			onChunk(Chunk{Content: text})
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
