package main_test

import (
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
	"github.com/mozaiks/mozaiks/internal/testutil/ferret"
)

// The built binary is killed with SIGKILL at random points of a turn, 24
// times per store, each time restarted on the same data: every acknowledged
// message ends with exactly one answer (or, when a tool with side effects was
// running, a RUN_INTERRUPTED error), no chat stays in progress, the replay
// from seq 0 is strictly increasing, and the chat answers the next message.
func TestCrashRecovery(t *testing.T) {
	t.Parallel()
	t.Run("embedded", func(t *testing.T) {
		t.Parallel()
		crashRounds(t, nil, 10*time.Second)
	})
	t.Run("mongodb", func(t *testing.T) {
		t.Parallel()
		// A killed process's run lease runs out (2 s here, 15 s by
		// default); then the restarted process takes the run over.
		crashRounds(t, []string{"MONGO_URI=" + ferret.DB(t), "MOZAIKS_RUN_LEASE=2s"}, 10*time.Second)
	})
}

// Kill points, in the order the rounds cycle through them.
var killPoints = []string{"before-ack", "after-ack", "mid-stream", "after-text", "during-tool"}

func crashRounds(t *testing.T, env []string, settle time.Duration) {
	dir := t.TempDir()
	var toolCalls atomic.Int32
	toolStarted := make(chan struct{}, 16)
	tool := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		toolCalls.Add(1)
		toolStarted <- struct{}{}
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
		_, _ = w.Write([]byte(`{"booked":true}`))
	}))
	t.Cleanup(tool.Close)
	writeToolWorkflow(t, dir, tool.URL)
	fake := llmtest.New(t, llmtest.WithResponder(func(req llmtest.Request) llmtest.Reply {
		last := req.Messages[len(req.Messages)-1]
		switch {
		case last.Role == "tool":
			return llmtest.Reply{Text: "Booked."}
		case strings.Contains(last.Content, "book"):
			return llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: fmt.Sprintf("call_%d", mrand.Int()), Name: "book", Arguments: `{"what":"a table"}`}}}
		}
		return llmtest.Reply{Text: "Answer to " + last.Content + ": " + strings.Repeat("word ", 40), TokenDelay: 3 * time.Millisecond}
	}))
	env = append(env, "OPENAI_BASE_URL="+fake.URL(), "OPENAI_API_KEY=sk-test")

	p := serve(t, dir, env...)
	const rounds = 24
	for i := range rounds {
		point := killPoints[i%len(killPoints)]
		workflow, text := "assistant", fmt.Sprintf("question %d", i)
		if point == "during-tool" {
			workflow, text = "booking", fmt.Sprintf("book %d", i)
		}
		chatID := fmt.Sprintf("crash-%d", i)
		acked := killDuring(t, p, workflow, chatID, text, point, toolStarted)
		p.wait(10 * time.Second)
		prev := p.stderr.String()
		p = serve(t, dir, env...)
		p.prev = prev
		checkRecovered(t, p, workflow, chatID, text, acked, settle, fmt.Sprintf("round %d (%s)", i, point))
	}
	t.Logf("%d rounds; the http tool ran %d times", rounds, toolCalls.Load())
}

// killDuring sends text on a new chat and SIGKILLs the server at point. It
// reports whether the message was acknowledged before the kill.
func killDuring(t *testing.T, p *proc, workflow, chatID, text, point string, toolStarted chan struct{}) bool {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(wsBase(p)+"/ws/"+workflow+"/default/"+chatID+"/u1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	wsUntil(t, c, "chat.resume_boundary")
	for len(toolStarted) > 0 {
		<-toolStarted
	}
	if err := c.WriteJSON(map[string]any{"type": "user.input.submit", "text": text}); err != nil {
		t.Fatal(err)
	}
	acked := false
	switch point {
	case "before-ack":
		time.Sleep(time.Duration(mrand.IntN(3000)) * time.Microsecond)
	case "after-ack":
		wsUntil(t, c, "chat.input_ack")
		acked = true
		time.Sleep(time.Duration(mrand.IntN(5000)) * time.Microsecond)
	case "mid-stream":
		wsUntil(t, c, "chat.input_ack")
		acked = true
		wsUntil(t, c, "chat.print")
		// The reply streams for about 130 ms (41 words, 3 ms apart), in
		// fewer frames than words (STREAM_CHUNK_INTERVAL): kill at a
		// random time of it, not after a number of frames.
		time.Sleep(time.Duration(mrand.IntN(100)) * time.Millisecond)
	case "after-text":
		wsUntil(t, c, "chat.input_ack")
		acked = true
		for {
			f := wsUntil(t, c, "chat.text")
			if f[len(f)-1]["agent"] != "user" {
				break
			}
		}
	case "during-tool":
		wsUntil(t, c, "chat.input_ack")
		acked = true
		select {
		case <-toolStarted:
		case <-time.After(20 * time.Second):
			t.Fatalf("the tool was not called")
		}
	}
	p.signal(syscall.SIGKILL)
	return acked
}

func wsBase(p *proc) string { return "ws" + strings.TrimPrefix(p.url, "http") }

type storedFrame struct {
	Type string         `json:"type"`
	Seq  int64          `json:"seq"`
	Data map[string]any `json:"data"`
}

// replayAll reads every stored event of the chat over a socket (after_seq=0).
func replayAll(t *testing.T, p *proc, workflow, chatID string) []storedFrame {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(wsBase(p)+"/ws/"+workflow+"/default/"+chatID+"/u1?after_seq=0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out []storedFrame
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("replay: %v", err)
		}
		var f storedFrame
		_ = json.Unmarshal(msg, &f)
		if f.Type == "chat.resume_boundary" {
			return out
		}
		if f.Seq > 0 {
			out = append(out, f)
		}
	}
}

func checkRecovered(t *testing.T, p *proc, workflow, chatID, text string, acked bool, settle time.Duration, round string) {
	t.Helper()
	var s struct{ Status string }
	deadline := time.Now().Add(settle)
	for {
		if code := call(t, "GET", p.url+"/api/sessions/"+chatID+"?user_id=u1", nil, &s); code == 200 && s.Status != "in_progress" {
			break
		}
		if time.Now().After(deadline) {
			// In progress is only wrong without a live run: a slow
			// recovery (a loaded machine, FerretDB) gets more time.
			var h struct {
				ActiveRuns int `json:"active_runs"`
			}
			call(t, "GET", p.url+"/api/health", nil, &h)
			if h.ActiveRuns == 0 || time.Now().After(deadline.Add(20*time.Second)) {
				t.Fatalf("%s: chat still %q %s after restart with %d runs live:\n%s", round, s.Status, settle, h.ActiveRuns, p.stderr)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	// On MongoDB a seq that the killed process took but never stored is a
	// gap, and events after a gap younger than 5 s are held back from
	// readers (they may be appends still in flight): replay again until the
	// chat has settled into its final transcript.
	var evs []storedFrame
	var questions, answers, interrupted int
	for try := 0; ; try++ {
		evs = replayAll(t, p, workflow, chatID)
		questions, answers, interrupted = count(evs, text)
		if questions == 0 || answers+interrupted > 0 || try == 40 {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	for i, f := range evs {
		if i > 0 && f.Seq <= evs[i-1].Seq {
			t.Fatalf("%s: replay not strictly increasing at %d after %d", round, f.Seq, evs[i-1].Seq)
		}
	}
	if acked && questions != 1 {
		t.Fatalf("%s: acknowledged message stored %d times: %v", round, questions, evs)
	}
	if questions > 1 || (questions == 1 && answers+interrupted != 1) {
		t.Fatalf("%s: message stored %d times, %d answers, %d interruptions (want exactly one):\n%v\nstatus %s, killed server's log:\n%s\nserver log:\n%s",
			round, questions, answers, interrupted, evs, s.Status, p.prev, p.stderr)
	}
	// The chat answers the next message.
	c, _, err := websocket.DefaultDialer.Dial(wsBase(p)+"/ws/"+workflow+"/default/"+chatID+"/u1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	wsUntil(t, c, "chat.resume_boundary")
	_ = c.WriteJSON(map[string]any{"type": "user.input.submit", "text": "next"})
	for {
		f := wsUntil(t, c, "chat.text")
		if last := f[len(f)-1]; last["agent"] != "user" {
			if !strings.HasPrefix(fmt.Sprint(last["content"]), "Answer to next") {
				t.Fatalf("%s: next message answered %q", round, last["content"])
			}
			return
		}
	}
}

// writeToolWorkflow adds a UserDriven workflow whose agent books through an
// http tool (a side effect) to dir/workflows.
// count tells how often text was stored as a user message, and how many
// answers and RUN_INTERRUPTED errors follow it.
func count(evs []storedFrame, text string) (questions, answers, interrupted int) {
	for _, f := range evs {
		switch {
		case f.Type == "chat.text" && f.Data["agent"] == "user":
			if f.Data["content"] == text {
				questions++
			}
		case f.Type == "chat.text" && questions > 0:
			answers++
		case f.Type == "chat.error" && f.Data["error_code"] == "RUN_INTERRUPTED":
			interrupted++
		}
	}
	return questions, answers, interrupted
}

func writeToolWorkflow(t *testing.T, dir, url string) {
	t.Helper()
	wf := filepath.Join(dir, "workflows", "booking")
	if err := os.MkdirAll(wf, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"orchestrator.yaml": "workflow_name: booking\nstartup_mode: UserDriven\nhuman_in_the_loop: true\ninitial_agent: Booker\n" +
			"initial_message_to_user: What shall I book?\n",
		"agents.yaml":   "agents:\n  - {name: Booker, system_message: You book things.}\n",
		"handoffs.yaml": "handoff_rules:\n  - {source_agent: Booker, target_agent: user, handoff_type: after_work}\n",
		"tools.yaml": "tools:\n  - agent: Booker\n    name: book\n    kind: http\n    url: " + url + "\n    timeout_ms: 10000\n" +
			"    parameters: {type: object, properties: {what: {type: string}}}\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(wf, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// A data directory that cannot be used says why (tests run as root, which
// ignores permissions, so a file stands in for the directory).
func TestUnusableDataDirSaysWhy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "data")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := start(t, dir, []string{"MOZAIKS_DATA_DIR=" + file, "PORT=" + freePort(t)}, "serve")
	if code := p.wait(20 * time.Second); code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, p.stderr)
	}
	if out := p.stderr.String(); !strings.Contains(out, "cannot open the embedded store in "+file+": ") ||
		!strings.Contains(out, "not a directory") {
		t.Fatalf("the start-up error does not say why:\n%s", out)
	}
}
