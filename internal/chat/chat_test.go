package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/mozaiks/mozaiks/internal/engine"
	"github.com/mozaiks/mozaiks/internal/llm"
	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
	"github.com/mozaiks/mozaiks/internal/store"
	"github.com/mozaiks/mozaiks/internal/store/sqlite"
	"github.com/mozaiks/mozaiks/internal/workflow"
	"github.com/mozaiks/mozaiks/workflows"
)

// rig is a chat manager on a real embedded store, a real engine and the
// OpenAI-wire fake, as the server builds it. restart builds a new manager on
// the same store, as a process started after a crash would.
type rig struct {
	t   *testing.T
	st  store.Store
	llm *llmtest.Server
	set *workflow.Set
	m   *Manager
}

func newRig(t *testing.T, extra fs.FS) *rig {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fsys := workflows.FS
	if extra != nil {
		fsys = extra
	}
	set, diags := workflow.LoadSet("", fsys)
	for _, d := range diags {
		if d.Severity == workflow.SevError {
			t.Fatalf("load workflows: %s", d)
		}
	}
	g := &rig{t: t, st: st, llm: llmtest.New(t), set: set}
	g.restart()
	return g
}

func (g *rig) restart() {
	if g.m != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		g.m.Shutdown(ctx)
		cancel()
	}
	model := llm.NewOpenAI(llm.Options{APIKey: "sk-test", BaseURL: g.llm.URL(), MaxRetries: -1})
	eng := engine.New(engine.Options{Workflows: g.set, LLM: model, DefaultModel: "m"})
	g.m = NewManager(Options{Store: g.st, Runner: eng, Workflows: g.set, SingleProcess: true})
	m := g.m
	g.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		m.Shutdown(ctx)
	})
}

func (g *rig) events(chatID string) []store.Event {
	g.t.Helper()
	evs, err := g.st.ListEvents(context.Background(), "app", chatID, 0, 10000)
	if err != nil {
		g.t.Fatal(err)
	}
	return evs
}

func (g *rig) session(chatID string) store.Session {
	g.t.Helper()
	s, err := g.st.GetSession(context.Background(), "app", chatID)
	if err != nil {
		g.t.Fatal(err)
	}
	return s
}

// settled waits until the chat is no longer in progress and nothing runs.
func (g *rig) settled(chatID string) store.Session {
	g.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := g.session(chatID)
		if s.Status != store.StatusInProgress && g.m.ActiveRuns() == 0 {
			return s
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("chat %s still %s after 10s; events: %s", chatID, s.Status, describe(g.events(chatID)))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func describe(evs []store.Event) string {
	out := ""
	for _, ev := range evs {
		var d map[string]any
		_ = json.Unmarshal(ev.Data, &d)
		out += fmt.Sprintf("\n  %d %s %s %v", ev.Seq, ev.Type, ev.Agent, d["content"])
	}
	return out
}

// texts lists the stored chat.text events as "agent: content".
func texts(evs []store.Event) []string {
	var out []string
	for _, ev := range evs {
		if ev.Type == "chat.text" {
			var d map[string]any
			_ = json.Unmarshal(ev.Data, &d)
			out = append(out, fmt.Sprintf("%s: %v", ev.Agent, d["content"]))
		}
	}
	return out
}

func (g *rig) open(workflow, chatID string) store.Session {
	g.t.Helper()
	sess, _, err := g.m.Open(context.Background(), OpenRequest{Workflow: workflow, AppID: "app", ChatID: chatID, UserID: "u1"})
	if err != nil {
		g.t.Fatal(err)
	}
	return sess
}

func (g *rig) submit(chatID, text string) Ack {
	g.t.Helper()
	ack, err := g.m.Submit(context.Background(), Submission{AppID: "app", ChatID: chatID, UserID: "u1", Text: text})
	if err != nil {
		g.t.Fatal(err)
	}
	return ack
}

func TestGreetingStoredBeforeTheFirstMessage(t *testing.T) {
	t.Parallel()
	g := newRig(t, nil)
	g.llm.Enqueue(llmtest.Reply{Text: "Hello there."})
	sess := g.open("assistant", "c1")
	if sess.Status != store.StatusAwaitingInput || sess.LastSeq != 2 || sess.PendingKind != "input" {
		t.Fatalf("new chat = %+v, want the greeting and its input request stored, awaiting input", sess)
	}
	g.submit("c1", "hi")
	g.settled("c1")
	got := texts(g.events("c1"))
	want := []string{"Assistant: Hi! What can I help you with?", "user: hi", "Assistant: Hello there."}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("texts = %q, want %q", got, want)
	}
}

// Frames reach a watcher in seq order, and replay after a reconnect never
// offers an input request that was answered.
func TestOrderAndAnsweredRequestNotOffered(t *testing.T) {
	t.Parallel()
	g := newRig(t, nil)
	for i := range 5 {
		g.llm.Enqueue(llmtest.Reply{Text: fmt.Sprintf("answer %d", i), TokenDelay: time.Millisecond})
	}
	g.open("assistant", "c1")
	sub := g.m.Subscribe("app", "c1", 4096)
	defer g.m.Unsubscribe(sub)
	for i := range 5 {
		g.submit("c1", fmt.Sprintf("question %d", i)) // sent while earlier ones run: queued, answered in order
	}
	sess := g.settled("c1")
	var frames []Frame
	for len(frames) == 0 || frames[len(frames)-1].Seq < sess.LastSeq {
		select {
		case <-sub.Ready:
			frames = append(frames, sub.Take(nil)...)
		case <-time.After(5 * time.Second):
			t.Fatalf("live frames stopped at %d of %d", len(frames), sess.LastSeq)
		}
	}
	last := int64(2) // greeting and its request were stored before the subscription
	for _, f := range frames {
		if f.Seq == 0 {
			continue
		}
		if f.Seq != last+1 {
			t.Fatalf("live frame seq %d after %d (%s)", f.Seq, last, f.Bytes)
		}
		last = f.Seq
	}
	// Questions are stored as they arrive, answers as they come: both in
	// order, each answer after its question.
	got := texts(g.events("c1"))
	pos := map[string]int{}
	for i, x := range got {
		pos[x] = i
	}
	if len(got) != 11 {
		t.Fatalf("texts = %q", got)
	}
	for i := range 5 {
		q, a := pos[fmt.Sprintf("user: question %d", i)], pos[fmt.Sprintf("Assistant: answer %d", i)]
		if q == 0 || a == 0 || a < q || (i > 0 && (q < pos[fmt.Sprintf("user: question %d", i-1)] || a < pos[fmt.Sprintf("Assistant: answer %d", i-1)])) {
			t.Fatalf("texts = %q: each question answered once, in order", got)
		}
	}
	// Each run read the question it answers last.
	reqs := g.llm.ChatRequests()
	for i, req := range reqs {
		if last := req.Messages[len(req.Messages)-1]; last.Content != fmt.Sprintf("question %d", i) {
			t.Fatalf("run %d answered %q", i, last.Content)
		}
	}
	// The greeting's request (seq 2) was answered: a first connect replays
	// texts and only the request that still waits, in seq order.
	sess = g.session("c1")
	var seqs []int64
	var requests []string
	if _, _, err := g.m.Replay(context.Background(), "app", "c1", 0, true, sess.PendingID, func(f Frame) error {
		seqs = append(seqs, f.Seq)
		if f.Type == "chat.input_request" {
			var d struct {
				Data struct {
					RequestID string `json:"request_id"`
				} `json:"data"`
			}
			_ = json.Unmarshal(f.Bytes, &d)
			requests = append(requests, d.Data.RequestID)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			t.Fatalf("replay seqs not increasing: %v", seqs)
		}
	}
	if len(requests) != 1 || requests[0] != sess.PendingID {
		t.Fatalf("replayed requests %v, want only the pending %s", requests, sess.PendingID)
	}
}

// A user message acknowledged just before the process died (nothing of its
// run stored) is answered once after a restart.
func TestRecoverAcknowledgedMessage(t *testing.T) {
	t.Parallel()
	g := newRig(t, nil)
	g.open("assistant", "c1")
	// What Submit stores before a crash: the message and the busy status.
	busy, none := store.StatusInProgress, ""
	if _, err := g.st.AppendEventUpdate(context.Background(), "app", "c1", store.Event{Type: "chat.text", Agent: "user",
		Data: json.RawMessage(`{"kind":"text","agent":"user","role":"user","content":"still there?","message_id":"m_x"}`)}, true,
		store.SessionUpdate{Status: &busy, PendingKind: &none, PendingID: &none}); err != nil {
		t.Fatal(err)
	}
	g.llm.Enqueue(llmtest.Reply{Text: "Yes."})
	g.restart()
	if n, err := g.m.Recover(context.Background()); err != nil || n != 1 {
		t.Fatalf("Recover = %d, %v; want 1 chat", n, err)
	}
	sess := g.settled("c1")
	want := []string{"Assistant: Hi! What can I help you with?", "user: still there?", "Assistant: Yes."}
	if got := texts(g.events("c1")); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("texts = %q, want %q", got, want)
	}
	if sess.Status != store.StatusAwaitingInput || sess.PendingKind != "input" {
		t.Fatalf("after recovery: %+v", sess)
	}
	// A second restart finds nothing left to do.
	g.restart()
	if n, err := g.m.Recover(context.Background()); err != nil || n != 0 {
		t.Fatalf("second Recover = %d, %v", n, err)
	}
	if calls := len(g.llm.ChatRequests()); calls != 1 {
		t.Fatalf("%d model calls, want 1", calls)
	}
}

// crashAfter plays one turn, then rewrites history as if the process had
// died after the first keep events of the run: the later events and the
// state the run ended in are gone, and the chat is still in progress.
func crashAfter(t *testing.T, g *rig, chatID string, keep int) {
	t.Helper()
	before := g.session(chatID)
	g.submit(chatID, "question")
	g.settled(chatID)
	evs := g.events(chatID)
	// Rebuild the chat in a fresh store up to the cut.
	st2, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st2.Close() })
	s := g.session(chatID)
	s.Status, s.State, s.LastSeq, s.MessageCount = store.StatusInProgress, before.State, 0, 0
	s.PendingKind, s.PendingID = "", ""
	if _, _, err := st2.CreateSession(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	var userSeq int64
	for _, ev := range evs {
		if ev.Type == "chat.text" && ev.Agent == "user" {
			userSeq = ev.Seq
		}
		if userSeq > 0 && ev.Seq > userSeq+int64(keep) {
			break
		}
		// As the writer stores them: the question a run asks is pending
		// from the moment it is stored.
		var u store.SessionUpdate
		if ev.Type == "chat.input_request" {
			var d map[string]any
			_ = json.Unmarshal(ev.Data, &d)
			kind, id := "input", fmt.Sprint(d["request_id"])
			u = store.SessionUpdate{PendingKind: &kind, PendingID: &id}
		}
		if _, err := st2.AppendEventUpdate(context.Background(), "app", chatID, store.Event{Type: ev.Type, Agent: ev.Agent, Data: ev.Data},
			ev.Type == "chat.text", u); err != nil {
			t.Fatal(err)
		}
	}
	g.st = st2
	g.restart()
}

func TestRecoverInterruptedRun(t *testing.T) {
	t.Parallel()
	// The run's events after the user message: run_start, select_speaker,
	// usage_delta, chat.text, input_request.
	for _, tc := range []struct {
		name       string
		keep       int
		modelCalls int // after the restart
	}{
		{"after run_start", 1, 1},
		{"mid-stream (select_speaker stored, reply not)", 2, 1},
		{"usage stored, reply not", 3, 1},
		{"after the final text", 4, 0},
		{"after the input request", 5, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := newRig(t, nil)
			g.open("assistant", "c1")
			g.llm.Enqueue(llmtest.Reply{Text: "First answer."})
			crashAfter(t, g, "c1", tc.keep)
			calls := len(g.llm.ChatRequests())
			if tc.modelCalls > 0 {
				g.llm.Enqueue(llmtest.Reply{Text: "First answer."})
			}
			if n, err := g.m.Recover(context.Background()); err != nil || n != 1 {
				t.Fatalf("Recover = %d, %v", n, err)
			}
			sess := g.settled("c1")
			if got := len(g.llm.ChatRequests()) - calls; got != tc.modelCalls {
				t.Errorf("%d model calls after restart, want %d", got, tc.modelCalls)
			}
			want := []string{"Assistant: Hi! What can I help you with?", "user: question", "Assistant: First answer."}
			if got := texts(g.events("c1")); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("texts = %q, want exactly one answer %q", got, want)
			}
			if sess.Status != store.StatusAwaitingInput || sess.PendingKind != "input" {
				t.Fatalf("after recovery: status %s pending %q; events %s", sess.Status, sess.PendingKind, describe(g.events("c1")))
			}
			// The chat answers the next message.
			g.llm.Enqueue(llmtest.Reply{Text: "Second answer."})
			g.submit("c1", "again")
			g.settled("c1")
			if got := texts(g.events("c1")); got[len(got)-1] != "Assistant: Second answer." {
				t.Fatalf("next turn: %q", got)
			}
		})
	}
}

// A tool with side effects whose outcome is unknown is not run again: the
// run ends with RUN_INTERRUPTED and the chat waits for the user.
func TestRecoverDoesNotRepeatHTTPTool(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	tool := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		_, _ = w.Write([]byte(`{"charged":true}`))
	}))
	t.Cleanup(tool.Close)
	set := fstest.MapFS{
		"w/orchestrator.yaml": {Data: []byte("workflow_name: w\nstartup_mode: UserDriven\nhuman_in_the_loop: true\ninitial_agent: A\n")},
		"w/agents.yaml":       {Data: []byte("agents:\n  - {name: A, system_message: You are A.}\n")},
		"w/tools.yaml": {Data: []byte("tools:\n  - {agent: A, name: charge, kind: http, url: '" + tool.URL +
			"/charge', parameters: {type: object, properties: {amount: {type: number}}}}\n")},
	}
	g := newRig(t, set)
	g.open("w", "c1")
	g.llm.Enqueue(llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "call_1", Name: "charge", Arguments: `{"amount": 5}`}}}, llmtest.Reply{Text: "Charged."})
	// Keep run_start, select_speaker, usage_delta, tool_call: the tool ran
	// (or not) and its result was never stored.
	crashAfter(t, g, "c1", 4)
	before := calls.Load()
	if _, err := g.m.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	sess := g.settled("c1")
	if calls.Load() != before || before != 1 {
		t.Fatalf("the http tool ran again after the restart")
	}
	evs := g.events("c1")
	var codes []string
	for _, ev := range evs {
		if ev.Type == "chat.error" {
			var d map[string]any
			_ = json.Unmarshal(ev.Data, &d)
			codes = append(codes, fmt.Sprint(d["error_code"]))
		}
	}
	if fmt.Sprint(codes) != "[RUN_INTERRUPTED]" || evs[len(evs)-1].Type != "chat.run_complete" || sess.Status != store.StatusAwaitingInput {
		t.Fatalf("errors %v, status %s, events %s", codes, sess.Status, describe(evs))
	}
}

// Every read or change of a chat goes through an access check, and a
// missing check refuses (fails closed).
func TestAccessFailsClosed(t *testing.T) {
	t.Parallel()
	g := newRig(t, nil)
	sess := g.open("assistant", "c1")
	ctx := context.Background()
	if _, err := g.m.Get(ctx, "app", "c1", nil); err != ErrNotYours {
		t.Fatalf("Get without an access check: %v, want ErrNotYours", err)
	}
	if _, err := g.m.Get(ctx, "app", "c1", SameUser("u2")); err != ErrNotYours {
		t.Fatalf("Get of another user's chat: %v", err)
	}
	if _, err := g.m.Get(ctx, "app", "c1", SameUser("u1")); err != nil {
		t.Fatalf("Get of one's own chat: %v", err)
	}
	if _, _, err := g.m.List(ctx, store.ListQuery{AppID: "app", UserID: "u1", Limit: 10}, nil); err != ErrNotYours {
		t.Fatalf("List without an access check: %v", err)
	}
	// Answering by request id: someone else's request looks like none.
	if _, _, err := g.m.AnswerInput(ctx, "app", sess.PendingID, "hi", SameUser("u2")); err != ErrNoPending {
		t.Fatalf("AnswerInput for another user: %v, want ErrNoPending", err)
	}
	if _, _, err := g.m.AnswerInput(ctx, "app", sess.PendingID, "hi", nil); err != ErrNoPending {
		t.Fatalf("AnswerInput without an access check: %v", err)
	}
	if got := g.session("c1"); got.PendingID != sess.PendingID || got.LastSeq != sess.LastSeq {
		t.Fatalf("a refused answer changed the chat: %+v", got)
	}
}

// Messages queued behind a run when the process died are all answered
// after the restart, in order, each once.
func TestRecoverQueuedMessages(t *testing.T) {
	t.Parallel()
	g := newRig(t, nil)
	g.open("assistant", "c1")
	busy, none := store.StatusInProgress, ""
	for i := range 3 {
		data := fmt.Sprintf(`{"kind":"text","agent":"user","role":"user","content":"q%d","message_id":"m_%d"}`, i, i)
		if _, err := g.st.AppendEventUpdate(context.Background(), "app", "c1", store.Event{Type: "chat.text", Agent: "user",
			Data: json.RawMessage(data)}, true, store.SessionUpdate{Status: &busy, PendingKind: &none, PendingID: &none}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		g.llm.Enqueue(llmtest.Reply{Text: fmt.Sprintf("a%d", i)})
	}
	g.restart()
	if _, err := g.m.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	g.settled("c1")
	want := []string{"Assistant: Hi! What can I help you with?", "user: q0", "user: q1", "user: q2", "Assistant: a0", "Assistant: a1", "Assistant: a2"}
	if got := texts(g.events("c1")); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("texts = %q, want %q\n%s", got, want, describe(g.events("c1")))
	}
	for i, req := range g.llm.ChatRequests() {
		if last := req.Messages[len(req.Messages)-1]; last.Content != fmt.Sprintf("q%d", i) {
			t.Fatalf("recovered run %d answered %q", i, last.Content)
		}
	}
}

// Messages beyond the per-chat queue are refused and not stored; the ones
// taken are all answered.
func TestQueueLimit(t *testing.T) {
	t.Parallel()
	g := newRig(t, nil)
	g.m.opts.MaxQueued = 2
	g.open("assistant", "c1")
	g.llm.Enqueue(llmtest.Reply{Text: "slow", TokenDelay: 300 * time.Millisecond, Chunks: 2},
		llmtest.Reply{Text: "a1"}, llmtest.Reply{Text: "a2"})
	g.submit("c1", "q0")
	deadline := time.Now().Add(5 * time.Second)
	for g.m.ActiveRuns() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // q0's run has begun: the queue is empty
	}
	g.submit("c1", "q1")
	g.submit("c1", "q2")
	if _, err := g.m.Submit(context.Background(), Submission{AppID: "app", ChatID: "c1", UserID: "u1", Text: "q3"}); err != ErrBusy {
		t.Fatalf("third message behind a run: %v, want ErrBusy", err)
	}
	g.settled("c1")
	for _, x := range texts(g.events("c1")) {
		if x == "user: q3" {
			t.Fatalf("a refused message was stored: %q", texts(g.events("c1")))
		}
	}
	if got := texts(g.events("c1")); got[len(got)-1] != "Assistant: a2" {
		t.Fatalf("texts = %q: the queued messages are answered", got)
	}
}

// A run that stored only its opening (run_start, select_speaker) before the
// next message's run started did not answer its message: its replica lost
// the chat or the rest of its writes (seen in CI under load). Recovery
// answers that message, though a run_start names it; a run that stored its
// reply is not asked again.
func TestRecoverMessageWhoseRunStoredOnlyItsStart(t *testing.T) {
	t.Parallel()
	g := newRig(t, nil)
	g.open("assistant", "c1") // seq 1 greeting, 2 input request
	busy, none := store.StatusInProgress, ""
	add := func(typ, agent, data string, message bool) {
		t.Helper()
		if _, err := g.st.AppendEventUpdate(context.Background(), "app", "c1", store.Event{Type: typ, Agent: agent,
			Data: json.RawMessage(data)}, message, store.SessionUpdate{Status: &busy, PendingKind: &none, PendingID: &none}); err != nil {
			t.Fatal(err)
		}
	}
	user := func(i int) string {
		return fmt.Sprintf(`{"kind":"text","agent":"user","role":"user","content":"q%d","message_id":"m_%d"}`, i, i)
	}
	add("chat.text", "user", user(0), true)                                                // seq 3
	add("chat.run_start", "", `{"kind":"run_start","run_id":"r0","input_seq":3}`, false)   // 4: its run stopped here
	add("chat.select_speaker", "", `{"kind":"select_speaker","agent":"Assistant"}`, false) // 5
	add("chat.text", "user", user(1), true)                                                // 6
	add("chat.run_start", "", `{"kind":"run_start","run_id":"r1","input_seq":6}`, false)   // 7: answered
	add("chat.text", "Assistant", `{"kind":"text","agent":"Assistant","role":"assistant","content":"a1","message_id":"x1"}`, true)
	add("chat.input_request", "Assistant", `{"kind":"input_request","agent":"Assistant","request_id":"req_1","prompt":"a1"}`, false)
	add("chat.text", "user", user(2), true)                                               // 10
	add("chat.run_start", "", `{"kind":"run_start","run_id":"r2","input_seq":10}`, false) // 11: answered
	add("chat.text", "Assistant", `{"kind":"text","agent":"Assistant","role":"assistant","content":"a2","message_id":"x2"}`, true)
	add("chat.input_request", "Assistant", `{"kind":"input_request","agent":"Assistant","request_id":"req_2","prompt":"a2"}`, false)
	g.llm.Enqueue(llmtest.Reply{Text: "a0"})
	g.restart()
	if _, err := g.m.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	g.settled("c1")
	want := []string{"Assistant: Hi! What can I help you with?", "user: q0", "user: q1", "Assistant: a1", "user: q2", "Assistant: a2", "Assistant: a0"}
	if got := texts(g.events("c1")); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("texts = %q, want %q\n%s", got, want, describe(g.events("c1")))
	}
	reqs := g.llm.ChatRequests()
	if len(reqs) != 1 || reqs[0].Messages[len(reqs[0].Messages)-1].Content != "q0" {
		t.Fatalf("%d model calls; want one answering q0", len(reqs))
	}
}
