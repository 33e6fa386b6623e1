package llm

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
)

// silent answers every request with nothing for an hour.
func silent(llmtest.Request) llmtest.Reply {
	return llmtest.Reply{Text: "never", FirstByteDelay: time.Hour}
}

// statuses collects what OnStatus hears and fails the test if it is called
// after Stream returned.
type statuses struct {
	t        *testing.T
	mu       sync.Mutex
	got      []Status
	returned atomic.Bool
}

func (s *statuses) on(st Status) {
	if s.returned.Load() {
		s.t.Errorf("OnStatus(%+v) after Stream returned", st)
	}
	s.mu.Lock()
	s.got = append(s.got, st)
	s.mu.Unlock()
}

func (s *statuses) list() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Status(nil), s.got...)
}

func (s *statuses) kinds() string {
	var k []string
	for _, st := range s.list() {
		k = append(k, st.Kind)
	}
	return strings.Join(k, ",")
}

// The finding of issue 11: a silent model held a chat for MaxRetries+1 times
// the per-attempt timeout. Each attempt is now bounded by the first-byte
// timeout, whatever the idle timeout is.
func TestSilentModelFailsOverWithinFirstByteTimeout(t *testing.T) {
	t.Parallel()
	srv := llmtest.New(t, llmtest.WithResponder(silent))
	c := newTestClient(t, srv, func(o *Options) {
		o.FirstByteTimeout, o.IdleTimeout, o.Timeout, o.MaxRetries = 100*time.Millisecond, time.Hour, time.Hour, 2
	})
	_, err := c.Stream(context.Background(), userSays("hi"), nil)
	e := asLLMError(t, err)
	if e.Code != CodeUnavailable || !e.Retryable || !strings.Contains(e.Msg, "no response within 100ms, 3 attempts") {
		t.Errorf("error %+v", e)
	}
	if n := len(srv.ChatRequests()); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

// Headers at once and then nothing is as silent as no answer at all: the
// headers are not the first byte of the reply.
func TestHeadersWithoutEventsHitFirstByteTimeout(t *testing.T) {
	t.Parallel()
	srv := llmtest.New(t)
	srv.Enqueue(llmtest.Reply{Text: "thinking", FirstChunkDelay: time.Hour}, llmtest.Reply{Text: "ready"})
	c := newTestClient(t, srv, func(o *Options) { o.FirstByteTimeout, o.IdleTimeout = 100*time.Millisecond, time.Hour })
	res, err := c.Stream(context.Background(), userSays("hi"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Content != "ready" || res.Attempts != 2 {
		t.Errorf("content %q attempts %d", res.Content, res.Attempts)
	}
}

func TestCallTimeoutBoundsEverything(t *testing.T) {
	t.Parallel()
	t.Run("one long attempt", func(t *testing.T) {
		t.Parallel()
		srv := llmtest.New(t, llmtest.WithResponder(silent))
		c := newTestClient(t, srv, func(o *Options) {
			o.FirstByteTimeout, o.IdleTimeout, o.Timeout = time.Hour, time.Hour, 200*time.Millisecond
		})
		_, err := c.Stream(context.Background(), userSays("hi"), nil)
		e := asLLMError(t, err)
		if e.Code != CodeUnavailable || !e.Retryable || !strings.Contains(e.Msg, "no complete reply within 200ms, 1 attempt") {
			t.Errorf("error %+v", e)
		}
		if n := len(srv.ChatRequests()); n != 1 {
			t.Errorf("%d requests: the call timeout must not be retried", n)
		}
	})
	t.Run("a stream slower than the call timeout", func(t *testing.T) {
		t.Parallel()
		srv := llmtest.New(t)
		srv.SetResponder(func(llmtest.Request) llmtest.Reply {
			return llmtest.Reply{Text: strings.Repeat("word ", 100), TokenDelay: 20 * time.Millisecond}
		})
		c := newTestClient(t, srv, func(o *Options) { o.Timeout = 300 * time.Millisecond })
		var rec recorder
		_, err := c.Stream(context.Background(), userSays("hi"), rec.on)
		if e := asLLMError(t, err); e.Code != CodeUnavailable || !strings.Contains(e.Msg, "no complete reply within 300ms") {
			t.Errorf("error %+v", e)
		}
		if len(rec.texts()) == 0 {
			t.Error("no text streamed before the timeout")
		}
	})
	t.Run("many short attempts", func(t *testing.T) {
		t.Parallel()
		srv := llmtest.New(t, llmtest.WithResponder(silent))
		c := newTestClient(t, srv, func(o *Options) {
			o.FirstByteTimeout, o.Timeout, o.MaxRetries = 100*time.Millisecond, 450*time.Millisecond, 100
		})
		_, err := c.Stream(context.Background(), userSays("hi"), nil)
		e := asLLMError(t, err)
		if e.Code != CodeUnavailable || !e.Retryable {
			t.Errorf("error %+v", e)
		}
		// 450ms hold at most 4 full attempts of 100ms and the start of a 5th.
		if n := len(srv.ChatRequests()); n < 1 || n > 5 {
			t.Errorf("%d requests within a 450ms budget of 100ms attempts", n)
		}
	})
	t.Run("a back-off beyond the budget is not waited", func(t *testing.T) {
		t.Parallel()
		srv := llmtest.New(t)
		srv.Enqueue(llmtest.Reply{Status: 429, RetryAfter: "3"}, llmtest.Reply{Text: "too late"})
		c := newTestClient(t, srv, func(o *Options) { o.Timeout = time.Second })
		_, err := c.Stream(context.Background(), userSays("hi"), nil)
		e := asLLMError(t, err)
		if e.Code != CodeUnavailable || e.Status != 429 || !strings.Contains(e.Msg, "no time left for another attempt within the call timeout (1s)") {
			t.Errorf("error %+v", e)
		}
		if n := len(srv.ChatRequests()); n != 1 {
			t.Errorf("%d requests", n)
		}
	})
}

func TestCallerCancelIsNotATimeout(t *testing.T) {
	t.Parallel()
	srv := llmtest.New(t, llmtest.WithResponder(silent))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := newTestClient(t, srv).Stream(ctx, userSays("hi"), nil)
	var e *Error
	if !errors.Is(err, context.DeadlineExceeded) || errors.As(err, &e) {
		t.Errorf("error %v (%T), want the caller's own deadline, not an *llm.Error", err, err)
	}
}

func TestStatusWaitingWhenFirstByteIsSlow(t *testing.T) {
	t.Parallel()
	srv := llmtest.New(t)
	srv.Enqueue(llmtest.Reply{Text: "at last", FirstByteDelay: time.Second})
	c := newTestClient(t, srv, func(o *Options) { o.SlowFirstByte = 20 * time.Millisecond })
	st := &statuses{t: t}
	req := userSays("hi")
	req.OnStatus = st.on
	var rec recorder
	res, err := c.Stream(context.Background(), req, rec.on)
	st.returned.Store(true)
	if err != nil {
		t.Fatal(err)
	}
	got := st.list()
	if len(got) != 1 || got[0] != (Status{Kind: StatusWaiting, Attempt: 1, Waited: 20 * time.Millisecond}) {
		t.Errorf("statuses %+v, want one waiting for attempt 1", got)
	}
	if res.Content != "at last" || rec.shown() != "at last" {
		t.Errorf("content %q shown %q", res.Content, rec.shown())
	}
}

func TestNoStatusForAPromptReply(t *testing.T) {
	t.Parallel()
	srv := llmtest.New(t)
	srv.Enqueue(llmtest.Reply{Text: "quick"})
	st := &statuses{t: t}
	req := userSays("hi")
	req.OnStatus = st.on
	if _, err := newTestClient(t, srv).Stream(context.Background(), req, nil); err != nil {
		t.Fatal(err)
	}
	st.returned.Store(true)
	if got := st.list(); len(got) != 0 {
		t.Errorf("statuses %+v", got)
	}
}

func TestStatusRetrying(t *testing.T) {
	t.Parallel()
	srv := llmtest.New(t)
	srv.Enqueue(llmtest.Reply{Status: 503}, llmtest.Reply{Status: 429, RetryAfter: "0.05"}, llmtest.Reply{Text: "ok"})
	st := &statuses{t: t}
	req := userSays("hi")
	req.OnStatus = st.on
	res, err := newTestClient(t, srv).Stream(context.Background(), req, nil)
	st.returned.Store(true)
	if err != nil || res.Attempts != 3 {
		t.Fatalf("%v, %+v", err, res)
	}
	got := st.list()
	if len(got) != 2 {
		t.Fatalf("statuses %+v, want two retries", got)
	}
	if s := got[0]; s.Kind != StatusRetrying || s.Attempt != 2 || s.RetryIn <= 0 || s.Cause != "server error (503)" {
		t.Errorf("first retry %+v", s)
	}
	if s := got[1]; s.Kind != StatusRetrying || s.Attempt != 3 || s.RetryIn < 50*time.Millisecond || s.Cause != "rate limited (429)" {
		t.Errorf("second retry %+v", s)
	}
}

// A silent endpoint, as the user would live it: waiting, retrying, waiting,
// ... then the error; and nothing once Stream has returned.
func TestStatusesOfASilentModel(t *testing.T) {
	t.Parallel()
	srv := llmtest.New(t, llmtest.WithResponder(silent))
	c := newTestClient(t, srv, func(o *Options) {
		o.FirstByteTimeout, o.SlowFirstByte, o.MaxRetries = 300*time.Millisecond, 20*time.Millisecond, 2
	})
	st := &statuses{t: t}
	req := userSays("hi")
	req.OnStatus = st.on
	_, err := c.Stream(context.Background(), req, nil)
	st.returned.Store(true)
	if e := asLLMError(t, err); e.Code != CodeUnavailable {
		t.Fatalf("error %+v", e)
	}
	if got := st.kinds(); got != "waiting,retrying,waiting,retrying,waiting" {
		t.Errorf("statuses %s", got)
	}
	for _, s := range st.list() {
		if s.Kind == StatusRetrying && s.Cause != "no response within 300ms" {
			t.Errorf("retry cause %q", s.Cause)
		}
	}
	time.Sleep(50 * time.Millisecond) // a late timer would report now
}

// Restart is set once per failed attempt that streamed text, on the first
// text chunk of the next attempt that streams any; following it (replace,
// then append) shows exactly the reply.
func TestRestartExactlyOncePerRestart(t *testing.T) {
	t.Parallel()
	const text = "alpha beta gamma delta"
	cut := func(after int) llmtest.Reply { return llmtest.Reply{Text: text, Cut: true, CutAfter: after} }
	tests := []struct {
		name    string
		replies []llmtest.Reply
		want    string
	}{
		{"one cut", []llmtest.Reply{cut(2), {Text: text}},
			"alpha |beta |<restart>alpha |beta |gamma |delta"},
		{"two cuts", []llmtest.Reply{cut(2), cut(1), {Text: text}},
			"alpha |beta |<restart>alpha |<restart>alpha |beta |gamma |delta"},
		{"cut, then a failure before any text", []llmtest.Reply{cut(3), {Status: 500}, cut(0), {Text: text}},
			"alpha |beta |gamma |<restart>alpha |beta |gamma |delta"},
		{"cut before any text", []llmtest.Reply{cut(0), {Text: text}},
			"alpha |beta |gamma |delta"},
		{"cut, then a reply without text", []llmtest.Reply{cut(2), {ToolCalls: []llmtest.ToolCall{{Name: "f", Arguments: "{}"}}}},
			"alpha |beta |<restart>"},
		{"in-stream error", []llmtest.Reply{{Text: text, Cut: true, CutAfter: 1, ErrorMessage: "overloaded"}, {Text: text}},
			"alpha |<restart>alpha |beta |gamma |delta"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := llmtest.New(t)
			srv.Enqueue(tt.replies...)
			st := &statuses{t: t}
			req := userSays("hi")
			req.OnStatus = st.on // the locked path
			var rec recorder
			res, err := newTestClient(t, srv).Stream(context.Background(), req, rec.on)
			st.returned.Store(true)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(rec.texts(), "|"); got != tt.want {
				t.Errorf("chunks %q, want %q", got, tt.want)
			}
			if rec.shown() != res.Content {
				t.Errorf("a client following Restart shows %q, the reply is %q", rec.shown(), res.Content)
			}
			if res.Attempts != len(tt.replies) {
				t.Errorf("attempts %d", res.Attempts)
			}
		})
	}
}
