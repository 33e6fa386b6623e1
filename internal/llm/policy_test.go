package llm

import (
	"net/http"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name    string
		headers map[string]string
		want    time.Duration
	}{
		{"none", nil, 0},
		{"seconds", map[string]string{"Retry-After": "3"}, 3 * time.Second},
		{"fractional", map[string]string{"Retry-After": "0.5"}, 500 * time.Millisecond},
		{"date", map[string]string{"Retry-After": now.Add(7 * time.Second).Format(http.TimeFormat)}, 7 * time.Second},
		{"past date", map[string]string{"Retry-After": now.Add(-time.Minute).Format(http.TimeFormat)}, 0},
		{"negative", map[string]string{"Retry-After": "-4"}, 0},
		{"garbage", map[string]string{"Retry-After": "soon"}, 0},
		{"ms wins", map[string]string{"Retry-After-Ms": "250", "Retry-After": "9"}, 250 * time.Millisecond},
	}
	for _, tt := range tests {
		h := http.Header{}
		for k, v := range tt.headers {
			h.Set(k, v)
		}
		if got := parseRetryAfter(h, now); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestBackoffPolicy(t *testing.T) {
	t.Parallel()
	c := NewOpenAI(Options{APIKey: "k", MaxRetries: 3, BaseBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}).(*openAIClient)
	c.jitter = func(d time.Duration) time.Duration { return d } // the upper bound, to see the doubling
	tests := []struct {
		failures   int
		retryAfter time.Duration
		want       time.Duration
		retry      bool
	}{
		{1, 0, 100 * time.Millisecond, true},
		{2, 0, 200 * time.Millisecond, true},
		{3, 0, 400 * time.Millisecond, true},
		{4, 0, 0, false}, // retry budget spent
		{1, 700 * time.Millisecond, 700 * time.Millisecond, true},
		{3, 300 * time.Millisecond, 400 * time.Millisecond, true},
		{1, 2 * time.Second, 0, false}, // beyond MaxBackoff
	}
	for _, tt := range tests {
		d, retry, _ := c.wait(tt.failures, failure{retryAfter: tt.retryAfter})
		if d != tt.want || retry != tt.retry {
			t.Errorf("wait(%d, %s) = %s %v, want %s %v", tt.failures, tt.retryAfter, d, retry, tt.want, tt.retry)
		}
	}
	c.opts.MaxRetries = 100
	if d, _, _ := c.wait(60, failure{}); d != time.Second {
		t.Errorf("huge exponent: %s, want the cap", d)
	}
}

func TestJitterBounds(t *testing.T) {
	t.Parallel()
	c := NewOpenAI(Options{APIKey: "k"}).(*openAIClient)
	for range 1000 {
		if d := c.jitter(time.Second); d < 500*time.Millisecond || d > time.Second {
			t.Fatalf("jitter(1s) = %s", d)
		}
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	c := NewOpenAI(Options{APIKey: "my-custom-key-xyz"}).(*openAIClient)
	tests := []struct{ in, want string }{
		{"plain message", "plain message"},
		{"key my-custom-key-xyz here", "key [redacted] here"},
		{"Incorrect API key provided: sk-proj-ab********wxyz.", "Incorrect API key provided: [redacted]."},
		{"rk-live_1234 and pk-abc", "[redacted] and [redacted]"},
		{"task-123 skip-it", "task-123 skip-it"},
	}
	for _, tt := range tests {
		if got := c.redact(tt.in); got != tt.want {
			t.Errorf("redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestAccumulatorToolDeltas(t *testing.T) {
	t.Parallel()
	idx := func(i int) *int { return &i }
	call := func(i *int, id, name, args string) toolDelta {
		d := toolDelta{Index: i, ID: id}
		d.Function.Name, d.Function.Arguments = name, args
		return d
	}
	tests := []struct {
		name   string
		deltas []toolDelta
		want   []ToolCall
	}{
		{"interleaved, out of order", []toolDelta{
			call(idx(1), "b", "second", ""), call(idx(0), "a", "first", ""),
			call(idx(1), "", "", `{"y":`), call(idx(0), "", "", `{"x":1}`), call(idx(1), "", "", `2}`),
		}, []ToolCall{{"a", "first", `{"x":1}`}, {"b", "second", `{"y":2}`}}},
		{"no index", []toolDelta{
			call(nil, "a", "f", `{"a"`), call(nil, "", "", `:1}`), call(nil, "b", "g", `{}`),
		}, []ToolCall{{"a", "f", `{"a":1}`}, {"b", "g", `{}`}}},
		{"name repeated in every delta", []toolDelta{
			call(idx(0), "a", "lookup", `{"q":`), call(idx(0), "a", "lookup", `"x"}`),
		}, []ToolCall{{"a", "lookup", `{"q":"x"}`}}},
		{"name streamed in pieces", []toolDelta{
			call(idx(0), "a", "get_", ""), call(idx(0), "", "weather", `{}`),
		}, []ToolCall{{"a", "get_weather", `{}`}}},
	}
	for _, tt := range tests {
		var a accumulator
		for _, d := range tt.deltas {
			a.addToolDelta(d)
		}
		got := a.response().ToolCalls
		if len(got) != len(tt.want) {
			t.Errorf("%s: %+v", tt.name, got)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%s: call %d = %+v, want %+v", tt.name, i, got[i], tt.want[i])
			}
		}
		if a.complete() {
			t.Errorf("%s: complete without finish reason or usage", tt.name)
		}
	}
}
