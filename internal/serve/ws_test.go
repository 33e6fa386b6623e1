package serve_test

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
	"github.com/mozaiks/mozaiks/internal/store"
)

const wait = 10 * time.Second

// forEachBackend runs a runtime test on every store backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, st store.Store)) {
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, open(t))
		})
	}
}

// greet connects to a new assistant chat and reads through the greeting.
func greet(t *testing.T, e *env, chatID string) *client {
	t.Helper()
	c := e.mustDial("assistant", "app1", chatID, "u1", "")
	fs := c.until("chat.resume_boundary", wait)
	if fs[0].Type != "chat_meta" || fs[0].str("chat_id") != chatID || fs[0].str("workflow_name") != "assistant" {
		t.Fatalf("first frame = %s", fs[0].raw)
	}
	// UserDriven: the greeting and its input request are stored when the
	// chat is created, so the first connect replays them, in seq order.
	if g := ofType(fs, "chat.text"); len(g) != 1 || g[0].str("agent") != "Assistant" || g[0].Seq != 1 {
		t.Fatalf("greeting in replay = %s", types(fs))
	}
	if q := ofType(fs, "chat.input_request"); len(q) != 1 || q[0].Seq != 2 {
		t.Fatalf("input request in replay = %s", types(fs))
	}
	return c
}

func TestChatStreamsAndStores(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, envOpts{store: st})
		e.LLM.Enqueue(llmtest.Reply{Text: "Paris is the capital of France.", TokenDelay: 2 * time.Millisecond})
		c := greet(t, e, "chat-stream")
		c.send(map[string]any{"type": "user.input.submit", "chat_id": "chat-stream", "text": "Capital of France?"})
		fs := c.until("chat.usage_delta", wait)
		fs = append(fs, c.until("chat.input_request", wait)...)

		echo := ofType(fs, "chat.text")
		if len(echo) < 2 || echo[0].str("agent") != "user" || echo[0].str("content") != "Capital of France?" {
			t.Fatalf("no user echo first: %s", types(fs))
		}
		if len(ofType(fs, "chat.input_ack")) != 1 || len(ofType(fs, "chat.select_speaker")) == 0 {
			t.Fatalf("missing ack or select_speaker: %s", types(fs))
		}
		prints := ofType(fs, "chat.print")
		if len(prints) < 2 {
			t.Fatalf("want >= 2 chat.print chunks, got %d: %s", len(prints), types(fs))
		}
		reply := echo[1]
		var streamed strings.Builder
		for _, p := range prints {
			if p.Seq != 0 || p.str("message_id") != reply.str("message_id") {
				t.Fatalf("print chunk %s: seq must be absent and message_id %s", p.raw, reply.str("message_id"))
			}
			streamed.WriteString(p.str("content"))
		}
		if reply.str("content") != "Paris is the capital of France." || streamed.String() != reply.str("content") {
			t.Fatalf("reply %q, streamed %q", reply.str("content"), streamed.String())
		}
		usage := ofType(fs, "chat.usage_delta")[0]
		for _, k := range []string{"app_id", "user_id", "chat_id", "workflow_name", "model_name"} {
			if usage.str(k) == "" {
				t.Fatalf("usage_delta lacks %s: %s", k, usage.raw)
			}
		}
		var last int64
		for _, f := range fs {
			if f.Seq == 0 {
				continue
			}
			if f.Seq <= last {
				t.Fatalf("seq not strictly increasing: %d after %d in %s", f.Seq, last, types(fs))
			}
			last = f.Seq
		}

		// The same transcript over HTTP and on reconnect.
		var sess sessionResp
		// The run stores its final status just after its last frame.
		for deadline := time.Now().Add(wait); ; time.Sleep(20 * time.Millisecond) {
			e.do("GET", "/api/sessions/chat-stream?app_id=app1&user_id=u1", nil, &sess)
			if sess.Status == "awaiting_input" || time.Now().After(deadline) {
				break
			}
		}
		var httpTexts []string
		for _, m := range sess.Messages {
			httpTexts = append(httpTexts, m.Data["content"].(string))
		}
		c2 := e.mustDial("assistant", "app1", "chat-stream", "u1", "")
		replay := c2.until("chat.resume_boundary", wait)
		var wsTexts []string
		for _, f := range ofType(replay, "chat.text") {
			if !f.Replay {
				t.Fatalf("replayed frame not marked replay: %s", f.raw)
			}
			wsTexts = append(wsTexts, f.str("content"))
		}
		if strings.Join(httpTexts, "|") != strings.Join(wsTexts, "|") || len(wsTexts) != 3 {
			t.Fatalf("transcript over HTTP %q, on reconnect %q", httpTexts, wsTexts)
		}
		if sess.Status != "awaiting_input" || sess.MessageCount != 3 {
			t.Fatalf("session status %s, %d messages", sess.Status, sess.MessageCount)
		}
		var full struct {
			Usage struct {
				TotalTokens int64 `json:"total_tokens"`
			} `json:"usage"`
		}
		e.do("GET", "/api/sessions/chat-stream?app_id=app1", nil, &full)
		if full.Usage.TotalTokens <= 0 {
			t.Fatalf("session usage totals not updated: %+v", full)
		}
	})
}

func TestResumeAfterDisconnectMidStream(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, envOpts{store: st})
		text := strings.Repeat("word ", 40)
		e.LLM.Enqueue(llmtest.Reply{Text: text, TokenDelay: 15 * time.Millisecond})
		c := greet(t, e, "chat-resume")
		c.send(map[string]any{"type": "user.input.submit", "text": "long answer please"})
		fs := c.until("chat.print", wait)
		// The last seq this client saw: the greeting's input request (2) at
		// least; chunks do not wait for the frames stored before them.
		lastSeq := int64(2)
		for _, f := range fs {
			lastSeq = max(lastSeq, f.Seq)
		}
		c.c.Close() // drop mid-stream
		time.Sleep(900 * time.Millisecond)
		c2 := e.mustDial("assistant", "app1", "chat-resume", "u1", "after_seq="+itoa(lastSeq))
		got := c2.until("chat.input_request", wait)
		var replies []frame
		seen := map[int64]bool{}
		for _, f := range got {
			if f.Seq != 0 {
				if seen[f.Seq] || f.Seq <= lastSeq {
					t.Fatalf("seq %d delivered twice or at/below after_seq %d: %s", f.Seq, lastSeq, types(got))
				}
				seen[f.Seq] = true
			}
			if f.Type == "chat.text" && f.str("agent") != "user" {
				replies = append(replies, f)
			}
		}
		if len(replies) != 1 || replies[0].str("content") != strings.TrimSpace(text) && replies[0].str("content") != text {
			t.Fatalf("want the full reply once, got %d: %s", len(replies), types(got))
		}
	})
}

func TestTwoSocketsAndBackToBack(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, envOpts{store: st})
		e.LLM.SetResponder(func(r llmtest.Request) llmtest.Reply {
			return llmtest.Reply{Text: "answer to " + r.LastUserMessage(), TokenDelay: time.Millisecond}
		})
		a := greet(t, e, "chat-two")
		b := e.mustDial("assistant", "app1", "chat-two", "u1", "")
		b.until("chat.resume_boundary", wait)
		a.send(map[string]any{"type": "user.input.submit", "text": "first"})
		a.send(map[string]any{"type": "user.input.submit", "text": "second"})
		for name, c := range map[string]*client{"a": a, "b": b} {
			var answers []string
			deadline := time.Now().Add(wait)
			for len(answers) < 2 {
				f, ok := c.next(time.Until(deadline))
				if !ok {
					t.Fatalf("socket %s: got answers %q", name, answers)
				}
				if f.Type == "chat.text" && f.str("agent") != "user" {
					answers = append(answers, f.str("content"))
				}
			}
			if answers[0] != "answer to first" || answers[1] != "answer to second" {
				t.Fatalf("socket %s answers %q", name, answers)
			}
		}
	})
}

func TestLLMFaults(t *testing.T) {
	t.Parallel()
	t.Run("429 then success honours Retry-After", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOpts{maxRetries: 3})
		e.LLM.Enqueue(llmtest.Reply{Status: 429, RetryAfter: "1"}, llmtest.Reply{Text: "ok after retry"})
		c := greet(t, e, "chat-429")
		start := time.Now()
		c.send(map[string]any{"type": "user.input.submit", "text": "hi"})
		fs := c.until("chat.input_request", wait)
		if time.Since(start) < time.Second {
			t.Fatalf("retried before Retry-After: 1s")
		}
		texts := ofType(fs, "chat.text")
		if texts[len(texts)-1].str("content") != "ok after retry" || len(ofType(fs, "chat.error")) != 0 {
			t.Fatalf("frames %s", types(fs))
		}
	})
	t.Run("500 xN fails the run, chat stays usable", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOpts{maxRetries: 2})
		e.LLM.Enqueue(llmtest.Reply{Status: 500}, llmtest.Reply{Status: 500}, llmtest.Reply{Status: 500}, llmtest.Reply{Text: "back again"})
		c := greet(t, e, "chat-500")
		c.send(map[string]any{"type": "user.input.submit", "text": "hi"})
		fs := c.until("chat.error", wait)
		errf := fs[len(fs)-1]
		if errf.str("error_code") != "LLM_UNAVAILABLE" || errf.Data["retryable"] != true {
			t.Fatalf("error frame %s", errf.raw)
		}
		c.until("chat.run_complete", wait)
		c.send(map[string]any{"type": "user.input.submit", "text": "again"})
		fs = c.until("chat.input_request", wait)
		texts := ofType(fs, "chat.text")
		if texts[len(texts)-1].str("content") != "back again" {
			t.Fatalf("chat not usable after failure: %s", types(fs))
		}
		if n := len(e.LLM.ChatRequests()); n != 4 {
			t.Fatalf("LLM got %d requests, want 3 (1 + 2 retries) + 1", n)
		}
	})
	t.Run("stream cut mid-way is retried", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOpts{maxRetries: 2})
		e.LLM.Enqueue(llmtest.Reply{Text: "one two three four five", Cut: true, CutAfter: 2}, llmtest.Reply{Text: "one two three four five"})
		c := greet(t, e, "chat-cut")
		c.send(map[string]any{"type": "user.input.submit", "text": "count"})
		fs := c.until("chat.input_request", wait)
		texts := ofType(fs, "chat.text")
		if got := texts[len(texts)-1].str("content"); got != "one two three four five" {
			t.Fatalf("final text %q", got)
		}
	})
	t.Run("no key configured", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOpts{noLLM: true})
		c := greet(t, e, "chat-nokey")
		c.send(map[string]any{"type": "user.input.submit", "text": "hi"})
		fs := c.until("chat.error", wait)
		if f := fs[len(fs)-1]; f.str("error_code") != "LLM_NOT_CONFIGURED" {
			t.Fatalf("error frame %s", f.raw)
		}
	})
}

func TestBadFrames(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	c := greet(t, e, "chat-bad")
	cases := []struct {
		frame string
		code  string
	}{
		{`not json`, "INVALID_JSON"},
		{`{"type":`, "INVALID_JSON"},
		{`{"type":"user.input.submit"}`, "SCHEMA_VALIDATION_FAILED"},
		{`{"type":"user.input.submit","text":5}`, "SCHEMA_VALIDATION_FAILED"},
		{`{"type":"user.input.submit","chat_id":"other","text":"x"}`, "SCHEMA_VALIDATION_FAILED"},
		{`[1,2,3]`, "SCHEMA_VALIDATION_FAILED"},
		{"{\"type\":\"user.input.submit\",\"text\":\"\xff\xfe\"}", "INVALID_UTF8"},
		{`{"type":"ui_tool_response","eventId":"nope","response":{}}`, "UI_TOOL_NOT_FOUND"},
	}
	for _, tc := range cases {
		if err := c.c.WriteMessage(websocket.TextMessage, []byte(tc.frame)); err != nil {
			t.Fatal(err)
		}
		f, ok := c.next(wait)
		if !ok || f.Type != "chat.error" || f.str("error_code") != tc.code {
			t.Fatalf("frame %q: got %s, want chat.error %s", tc.frame, f.raw, tc.code)
		}
	}
	// 10,000 frames of unknown types in a row are ignored (spec §2.2, as the
	// original did); the malformed known frame after them is the next answer.
	for i := 0; i < 10000; i++ {
		if err := c.c.WriteMessage(websocket.TextMessage, []byte(`{"type":"junk","text":5}`)); err != nil {
			t.Fatal(err)
		}
	}
	c.send(`{"type":"user.input.submit"}`)
	if f, ok := c.next(wait); !ok || f.str("error_code") != "SCHEMA_VALIDATION_FAILED" {
		t.Fatalf("after 10,000 unknown frames: %s", f.raw)
	}
	e.LLM.Enqueue(llmtest.Reply{Text: "still here"})
	c.send(map[string]any{"type": "user.input.submit", "text": "hello?"})
	fs := c.until("chat.input_request", wait)
	if texts := ofType(fs, "chat.text"); texts[len(texts)-1].str("content") != "still here" {
		t.Fatalf("socket unusable after junk: %s", types(fs))
	}
	// Nothing the bad frames carried was stored.
	var sess sessionResp
	e.do("GET", "/api/sessions/chat-bad?app_id=app1", nil, &sess)
	if sess.MessageCount != 3 {
		t.Fatalf("message_count %d, want 3 (greeting, hello?, reply)", sess.MessageCount)
	}
	// A 2 MiB frame closes with 1009.
	big := `{"type":"user.input.submit","text":"` + strings.Repeat("x", 2<<20) + `"}`
	_ = c.c.WriteMessage(websocket.TextMessage, []byte(big))
	if code := c.closed(wait); code != websocket.CloseMessageTooBig {
		t.Fatalf("oversized frame closed with %d, want 1009", code)
	}
	if code := e.do("GET", "/api/health", nil, nil); code != 200 {
		t.Fatalf("health %d after bad frames", code)
	}
}

func TestSocketAccessRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	greet(t, e, "chat-owned")
	// Wrong Origin: 403 before the upgrade.
	_, resp, err := e.dial("assistant", "app1", "chat-x", "u1", "", http.Header{"Origin": {"http://evil.example.com"}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("wrong origin: err %v resp %v", err, resp)
	}
	// Allowed Origin works.
	c, _, err := e.dial("assistant", "app1", "chat-y", "u1", "", http.Header{"Origin": {"http://app.example.com"}})
	if err != nil {
		t.Fatalf("allowed origin refused: %v", err)
	}
	c.until("chat.resume_boundary", wait)
	// Someone else's chat, another app's, another workflow's: 1008, nothing leaked.
	for _, tc := range []struct{ wf, app, user string }{{"assistant", "app1", "intruder"}, {"assistant", "app2", "u1"}, {"triage", "app1", "u1"}} {
		c, _, err := e.dial(tc.wf, tc.app, "chat-owned", tc.user, "", nil)
		if err != nil {
			t.Fatalf("dial %v: %v", tc, err)
		}
		f, ok := c.next(wait)
		if ok {
			t.Fatalf("%v: got a frame before the close: %s", tc, f.raw)
		}
		if code := c.closed(wait); code != websocket.ClosePolicyViolation {
			t.Fatalf("%v: close code %d, want 1008", tc, code)
		}
	}
	// Invalid ids and unknown workflows never upgrade.
	for _, tc := range []struct {
		wf, chat string
		status   int
	}{{"assistant", "bad$id", 400}, {"nope", "c1", 404}} {
		_, resp, err := e.dial(tc.wf, "app1", tc.chat, "u1", "", nil)
		if err == nil || resp == nil || resp.StatusCode != tc.status {
			t.Fatalf("%v: err %v status %v", tc, err, resp)
		}
	}
}

func TestConcurrentSubmitsKeepSeqUnique(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	e.LLM.SetResponder(func(r llmtest.Request) llmtest.Reply { return llmtest.Reply{Text: "ok"} })
	c := greet(t, e, "chat-conc")
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			code := e.do("POST", "/chat/app1/chat-conc/u1/input", map[string]any{"message": "m" + itoa(int64(i)), "workflow_name": "assistant"}, nil)
			if code != http.StatusAccepted {
				t.Errorf("legacy input = %d", code)
			}
		}(i)
	}
	wg.Wait()
	seen := map[int64]bool{}
	answers := 0
	deadline := time.Now().Add(wait)
	for answers < 5 {
		f, ok := c.next(time.Until(deadline))
		if !ok {
			t.Fatalf("got %d answers", answers)
		}
		if f.Seq != 0 {
			if seen[f.Seq] {
				t.Fatalf("seq %d twice", f.Seq)
			}
			seen[f.Seq] = true
		}
		if f.Type == "chat.text" && f.str("agent") != "user" {
			answers++
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
