package llmtest

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSplitText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		n    int
		want []string
	}{
		{"Hello there, world", 0, []string{"Hello ", "there, ", "world"}},
		{"  lead  and trail ", 0, []string{"  lead  ", "and ", "trail "}},
		{"one", 0, []string{"one"}},
		{"", 0, nil},
		{"abcdefghij", 3, []string{"abc", "def", "ghij"}},
		{"héllo", 2, []string{"hé", "llo"}},
		{"ab", 5, []string{"a", "b"}},
	}
	for _, tt := range tests {
		got := splitText(tt.in, tt.n)
		if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
			t.Errorf("splitText(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
		if strings.Join(got, "") != tt.in {
			t.Errorf("splitText(%q, %d) does not join back: %q", tt.in, tt.n, got)
		}
	}
}

// sse is a raw reading of an event stream: the JSON payloads, and whether
// [DONE] came.
type sse struct {
	events []map[string]any
	raw    []string
	done   bool
	err    error
}

func post(t *testing.T, url, key, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/chat/completions", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readSSE(t *testing.T, r io.Reader) sse {
	t.Helper()
	var out sse
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("line without data prefix: %q", line)
		}
		if out.done {
			t.Fatalf("data after [DONE]: %q", line)
		}
		if data == "[DONE]" {
			out.done = true
			continue
		}
		var ev map[string]any
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatalf("bad chunk JSON %q: %v", data, err)
		}
		out.events = append(out.events, ev)
		out.raw = append(out.raw, data)
	}
	out.err = sc.Err()
	return out
}

func TestStreamWireFormat(t *testing.T) {
	t.Parallel()
	srv := New(t)
	srv.Enqueue(Reply{Text: "Hi there friend", Usage: &Usage{PromptTokens: 7, CompletionTokens: 3, TotalTokens: 10}})
	resp := post(t, srv.URL(), "", `{"model":"m1","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hey"}]}`)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := readSSE(t, resp.Body)
	if s.err != nil || !s.done {
		t.Fatalf("stream error %v, done %v", s.err, s.done)
	}
	// role chunk, 3 words, finish chunk, usage chunk
	if len(s.events) != 6 {
		t.Fatalf("got %d events, want 6:\n%s", len(s.events), strings.Join(s.raw, "\n"))
	}
	var text strings.Builder
	for i, ev := range s.events {
		if ev["object"] != "chat.completion.chunk" || ev["model"] != "m1" {
			t.Errorf("event %d: object %v model %v", i, ev["object"], ev["model"])
		}
		if ev["id"] != s.events[0]["id"] {
			t.Errorf("event %d: id %v differs from %v", i, ev["id"], s.events[0]["id"])
		}
		usage, has := ev["usage"]
		if !has {
			t.Errorf("event %d has no usage key although include_usage was asked", i)
		}
		choices := ev["choices"].([]any)
		if i == len(s.events)-1 {
			if len(choices) != 0 {
				t.Errorf("usage chunk has choices: %v", choices)
			}
			u := usage.(map[string]any)
			if u["prompt_tokens"] != 7.0 || u["completion_tokens"] != 3.0 || u["total_tokens"] != 10.0 {
				t.Errorf("usage = %v", u)
			}
			continue
		}
		if usage != nil {
			t.Errorf("event %d: usage %v, want null", i, usage)
		}
		c := choices[0].(map[string]any)
		delta := c["delta"].(map[string]any)
		if i == 0 && delta["role"] != "assistant" {
			t.Errorf("first delta %v has no assistant role", delta)
		}
		if s, ok := delta["content"].(string); ok {
			text.WriteString(s)
		}
		wantFinish := any(nil)
		if i == len(s.events)-2 {
			wantFinish = "stop"
		}
		if c["finish_reason"] != wantFinish {
			t.Errorf("event %d: finish_reason %v, want %v", i, c["finish_reason"], wantFinish)
		}
	}
	if text.String() != "Hi there friend" {
		t.Errorf("content %q", text.String())
	}
}

func TestStreamWithoutUsageOption(t *testing.T) {
	t.Parallel()
	srv := New(t)
	srv.Enqueue(Reply{Text: "abcdef", Chunks: 2})
	resp := post(t, srv.URL(), "", `{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}`)
	s := readSSE(t, resp.Body)
	if !s.done || len(s.events) != 4 {
		t.Fatalf("done %v, %d events:\n%s", s.done, len(s.events), strings.Join(s.raw, "\n"))
	}
	for _, raw := range s.raw {
		if strings.Contains(raw, `"usage"`) {
			t.Errorf("usage sent without include_usage: %s", raw)
		}
	}
}

func TestToolCallDeltas(t *testing.T) {
	t.Parallel()
	srv := New(t)
	srv.Enqueue(Reply{ToolCalls: []ToolCall{
		{ID: "call_a", Name: "get_weather", Arguments: `{"city":"Paris"}`},
		{Name: "get_time", Arguments: `{"tz":"CET"}`},
	}})
	resp := post(t, srv.URL(), "", `{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}`)
	s := readSSE(t, resp.Body)
	type call struct{ id, name, args string }
	calls := map[float64]*call{}
	var finish any
	for _, ev := range s.events {
		c := ev["choices"].([]any)[0].(map[string]any)
		if c["finish_reason"] != nil {
			finish = c["finish_reason"]
		}
		tcs, _ := c["delta"].(map[string]any)["tool_calls"].([]any)
		for _, raw := range tcs {
			tc := raw.(map[string]any)
			idx := tc["index"].(float64)
			fn := tc["function"].(map[string]any)
			cur, seen := calls[idx]
			if !seen {
				// The first delta of a call names it and carries its id.
				if tc["id"] == nil || fn["name"] == nil || tc["type"] != "function" {
					t.Errorf("first delta of call %v lacks id/name/type: %v", idx, tc)
				}
				cur = &call{id: tc["id"].(string), name: fn["name"].(string)}
				calls[idx] = cur
			} else if tc["id"] != nil || fn["name"] != nil {
				t.Errorf("later delta of call %v repeats id or name: %v", idx, tc)
			}
			cur.args += fn["arguments"].(string)
		}
	}
	if finish != "tool_calls" {
		t.Errorf("finish_reason %v", finish)
	}
	if len(calls) != 2 || calls[0].id != "call_a" || calls[0].name != "get_weather" || calls[0].args != `{"city":"Paris"}` ||
		calls[1].name != "get_time" || calls[1].args != `{"tz":"CET"}` || calls[1].id == "" {
		t.Errorf("calls = %+v %+v", calls[0], calls[1])
	}
}

func TestErrorReplies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		rep        Reply
		wantStatus int
		wantType   string
		wantCode   any
	}{
		{"rate limit", Reply{Status: 429, RetryAfter: "2"}, 429, "requests", "rate_limit_exceeded"},
		{"server error", Reply{Status: 500}, 500, "server_error", nil},
		{"unknown model", Reply{Status: 404}, 404, "invalid_request_error", "model_not_found"},
		{"custom", Reply{Status: 400, ErrorMessage: "bad schema", ErrorCode: "invalid_schema"}, 400, "invalid_request_error", "invalid_schema"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := New(t)
			srv.Enqueue(tt.rep)
			resp := post(t, srv.URL(), "", `{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}`)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if resp.Header.Get("Retry-After") != tt.rep.RetryAfter {
				t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
			}
			var body struct {
				Error map[string]any `json:"error"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"message", "type", "param", "code"} {
				if _, ok := body.Error[k]; !ok {
					t.Errorf("error body lacks %q: %v", k, body.Error)
				}
			}
			if body.Error["type"] != tt.wantType || body.Error["code"] != tt.wantCode || body.Error["message"] == "" {
				t.Errorf("error body %v", body.Error)
			}
		})
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	srv := New(t, WithAPIKey("sk-test-0123456789abcdef"))
	tests := []struct {
		key        string
		wantStatus int
		wantMsg    string
	}{
		{"", 401, "You didn't provide an API key"},
		{"sk-wrong-0123456789", 401, "Incorrect API key provided: sk-wro********6789"},
		{"sk-test-0123456789abcdef", 200, ""},
	}
	for _, tt := range tests {
		resp := post(t, srv.URL(), tt.key, `{"model":"m","messages":[{"role":"user","content":"x"}]}`)
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != tt.wantStatus || !strings.Contains(string(b), tt.wantMsg) {
			t.Errorf("key %q: %d %s", tt.key, resp.StatusCode, b)
		}
		if tt.wantStatus == 401 && !strings.Contains(string(b), `"code":"invalid_api_key"`) {
			t.Errorf("401 body %s", b)
		}
	}
	reqs := srv.Requests()
	if len(reqs) != 3 || reqs[1].APIKey != "sk-wrong-0123456789" {
		t.Errorf("recorded %+v", reqs)
	}
}

func TestCutDropsConnection(t *testing.T) {
	t.Parallel()
	srv := New(t)
	srv.Enqueue(Reply{Text: "one two three four", Cut: true, CutAfter: 2})
	resp := post(t, srv.URL(), "", `{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}`)
	s := readSSE(t, resp.Body)
	if s.done {
		t.Error("[DONE] after a cut")
	}
	if !errors.Is(s.err, io.ErrUnexpectedEOF) {
		t.Errorf("read error %v, want unexpected EOF", s.err)
	}
	if len(s.events) != 3 { // role + 2 words
		t.Errorf("%d events before the cut:\n%s", len(s.events), strings.Join(s.raw, "\n"))
	}
}

func TestCutClean(t *testing.T) {
	t.Parallel()
	srv := New(t)
	srv.Enqueue(Reply{Text: "one two three four", Cut: true, CutAfter: 3, CutClean: true})
	resp := post(t, srv.URL(), "", `{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}`)
	s := readSSE(t, resp.Body)
	if s.done || s.err != nil || len(s.events) != 4 {
		t.Errorf("done %v, err %v, %d events", s.done, s.err, len(s.events))
	}
}

func TestInStreamError(t *testing.T) {
	t.Parallel()
	srv := New(t)
	srv.Enqueue(Reply{Text: "one two", Cut: true, CutAfter: 1, ErrorMessage: "boom"})
	resp := post(t, srv.URL(), "", `{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}`)
	s := readSSE(t, resp.Body)
	if s.done || s.err != nil || len(s.raw) != 3 || s.raw[2] != `{"error":{"message":"boom","type":"server_error","param":null,"code":null}}` {
		t.Errorf("done %v, err %v, events:\n%s", s.done, s.err, strings.Join(s.raw, "\n"))
	}
}

func TestNonStream(t *testing.T) {
	t.Parallel()
	srv := New(t)
	srv.Enqueue(Reply{Text: "hello", ToolCalls: []ToolCall{{Name: "f", Arguments: "{}"}}})
	resp := post(t, srv.URL(), "", `{"model":"m","messages":[{"role":"user","content":"a b c"}]}`)
	var got struct {
		Object  string `json:"object"`
		Choices []struct {
			Message struct {
				Role      string `json:"role"`
				Content   string `json:"content"`
				ToolCalls []struct {
					ID       string `json:"id"`
					Function struct{ Name, Arguments string }
				} `json:"tool_calls"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage Usage `json:"usage"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	c := got.Choices[0]
	if got.Object != "chat.completion" || c.Message.Content != "hello" || c.Message.Role != "assistant" ||
		len(c.Message.ToolCalls) != 1 || c.Message.ToolCalls[0].Function.Name != "f" || c.FinishReason != "tool_calls" {
		t.Errorf("got %+v", got)
	}
	if got.Usage.PromptTokens != 4 || got.Usage.TotalTokens != got.Usage.PromptTokens+got.Usage.CompletionTokens {
		t.Errorf("usage %+v", got.Usage)
	}
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	srv := New(t, WithModels("a", "b"), WithStrictModels())
	resp, err := http.Get(srv.URL() + "/models")
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Object string
		Data   []struct{ ID, Object string }
	}
	err = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if err != nil || list.Object != "list" || len(list.Data) != 2 || list.Data[1].ID != "b" || list.Data[0].Object != "model" {
		t.Errorf("models: %v %+v", err, list)
	}

	tests := []struct {
		name, url, body string
		want            int
		wantMsg         string
	}{
		{"doubled v1", srv.URL() + "/v1", `{}`, 404, "Invalid URL (POST /v1/v1/chat/completions)"},
		{"unlisted model", srv.URL(), `{"model":"zzz","messages":[{"role":"user","content":"x"}]}`, 404, "model_not_found"},
		{"bad json", srv.URL(), `{"model":`, 400, "could not parse"},
		{"no messages", srv.URL(), `{"model":"a","messages":[]}`, 400, "at least one message"},
		{"listed model", srv.URL(), `{"model":"a","messages":[{"role":"user","content":"x"}]}`, 200, "You said: x"},
	}
	for _, tt := range tests {
		resp := post(t, tt.url, "", tt.body)
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != tt.want || !strings.Contains(string(b), tt.wantMsg) {
			t.Errorf("%s: %d %s", tt.name, resp.StatusCode, b)
		}
	}
}

func TestRecordsParsedRequest(t *testing.T) {
	t.Parallel()
	srv := New(t)
	body := `{"model":"m","stream":true,"stream_options":{"include_usage":true},"temperature":0.25,"max_completion_tokens":99,
	"response_format":{"type":"json_schema","json_schema":{"name":"out","schema":{"type":"object"},"strict":true}},
	"tools":[{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object"}}}],
	"messages":[{"role":"system","content":"sys"},{"role":"user","name":"alice","content":[{"type":"text","text":"hi "},{"type":"text","text":"you"}]},
	{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},
	{"role":"tool","tool_call_id":"c1","content":"42"}]}`
	resp := post(t, srv.URL(), "", body)
	_, _ = io.Copy(io.Discard, resp.Body)
	r := srv.ChatRequests()[0]
	if r.Model != "m" || !r.Stream || !r.IncludeUsage || r.Temperature == nil || *r.Temperature != 0.25 || r.MaxTokens == nil || *r.MaxTokens != 99 {
		t.Errorf("scalars: %+v", r)
	}
	if rf := r.ResponseFormat; rf == nil || rf.Type != "json_schema" || rf.Name != "out" || !rf.Strict || string(rf.Schema) != `{"type":"object"}` {
		t.Errorf("response format %+v", r.ResponseFormat)
	}
	if len(r.Tools) != 1 || r.Tools[0].Name != "f" || r.Tools[0].Description != "d" || r.Tools[0].Type != "function" {
		t.Errorf("tools %+v", r.Tools)
	}
	m := r.Messages
	if len(m) != 4 || m[1].Content != "hi you" || m[1].Name != "alice" || m[2].ToolCalls[0].ID != "c1" || m[3].ToolCallID != "c1" {
		t.Errorf("messages %+v", m)
	}
	if r.LastUserMessage() != "hi you" {
		t.Errorf("last user message %q", r.LastUserMessage())
	}
}

func TestQueueIsConcurrencySafe(t *testing.T) {
	t.Parallel()
	srv := New(t, WithResponder(func(Request) Reply { return Reply{Text: "default"} }))
	const n = 40
	for i := range n / 2 {
		srv.Enqueue(Reply{Text: "queued " + string(rune('a'+i))})
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[string]int{}
	)
	for range n {
		wg.Go(func() {
			resp := post(t, srv.URL(), "", `{"model":"m","messages":[{"role":"user","content":"x"}]}`)
			var c struct {
				Choices []struct{ Message struct{ Content string } }
			}
			if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			seen[c.Choices[0].Message.Content]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if seen["default"] != n/2 || len(seen) != n/2+1 || srv.Pending() != 0 || len(srv.Requests()) != n {
		t.Errorf("seen %v, pending %d, recorded %d", seen, srv.Pending(), len(srv.Requests()))
	}
}

func TestDelaysStopWhenClientLeaves(t *testing.T) {
	t.Parallel()
	srv := New(t)
	srv.Enqueue(Reply{Text: "x", FirstByteDelay: time.Hour})
	client := &http.Client{Timeout: 100 * time.Millisecond}
	_, err := client.Post(srv.URL()+"/chat/completions", "application/json",
		strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"x"}]}`))
	if err == nil {
		t.Fatal("want a client timeout")
	}
	// The handler must have returned, or the cleanup's Close would hang for
	// an hour; nothing to assert beyond the test finishing.
}

func TestFirstChunkDelaySendsHeadersFirst(t *testing.T) {
	t.Parallel()
	srv := New(t)
	srv.Enqueue(Reply{Text: "late words", FirstChunkDelay: time.Hour})
	// The headers arrive although the body will not for an hour: the client
	// is not held at Do, only at its first read.
	resp := post(t, srv.URL(), "", `{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}`)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	got := make(chan error, 1)
	go func() {
		_, err := resp.Body.Read(make([]byte, 1))
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("read returned before the delay: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	resp.Body.Close() // the handler sees the client go and returns
	<-got
}
