package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/engine"
	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
	"github.com/mozaiks/mozaiks/internal/store"
)

// strayStore plays replica B: just before replica A stores its run's reply,
// B stores a user message (as Submit does: the message and the chat in
// progress) and stops before answering it.
type strayStore struct {
	store.Store
	owner string // A's lease, on the writes of A's run
	once  sync.Once
	err   error
}

func (s *strayStore) before(ctx context.Context, appID, chatID string, ev *store.Event, u store.SessionUpdate) {
	if ev == nil || ev.Type != "chat.text" || ev.Agent != "Assistant" || u.Fence != s.owner {
		return
	}
	s.once.Do(func() { s.err = storeStray(ctx, s.Store, appID, chatID) })
}

func (s *strayStore) AppendEventUpdate(ctx context.Context, appID, chatID string, ev store.Event, message bool, u store.SessionUpdate) (store.Event, error) {
	s.before(ctx, appID, chatID, &ev, u)
	return s.Store.AppendEventUpdate(ctx, appID, chatID, ev, message, u)
}

func (s *strayStore) WriteBatch(ctx context.Context, appID, chatID string, ws []store.Write) ([]store.Event, error) {
	for _, w := range ws {
		s.before(ctx, appID, chatID, w.Event, w.Update)
	}
	return s.Store.(store.Batcher).WriteBatch(ctx, appID, chatID, ws)
}

// storeStray stores, as replica B's Submit does, a user message and the chat
// in progress; B then stops before answering it.
func storeStray(ctx context.Context, st store.Store, appID, chatID string) error {
	busy, none := store.StatusInProgress, ""
	_, err := st.AppendEventUpdate(ctx, appID, chatID, store.Event{Type: "chat.text", Agent: "user",
		Data: json.RawMessage(`{"kind":"text","agent":"user","role":"user","content":"from B","message_id":"m_b"}`)}, true,
		store.SessionUpdate{Status: &busy, PendingKind: &none, PendingID: &none})
	return err
}

// idle waits until the manager has nothing going on any chat (its runs,
// their ends and their writes are done).
func idle(t *testing.T, m *Manager) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m.mu.Lock()
		n := len(m.rooms)
		m.mu.Unlock()
		if n == 0 && m.ActiveRuns() == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the manager is still busy after 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A user message another replica stored during a run (after the run read
// the chat) and left unanswered is not hidden by the run's end: the end's
// status is stored only if nothing was stored since the run read the chat
// but the run's own events, so the chat stays in progress and the sweep
// answers the message. Before, the run's end marked the chat as waiting for
// the user, no sweep looked at it, and the message was never answered.
func TestRunEndDoesNotHideAMessageStoredDuringIt(t *testing.T) {
	g := newRig(t, nil)
	g.open("assistant", "c1")
	g.settled("c1")
	st := &strayStore{Store: g.st, owner: "replica-a"}
	a := g.replica(st, "replica-a", 600*time.Millisecond)

	g.llm.Enqueue(llmtest.Reply{Text: "First answer."})
	g.llm.Enqueue(llmtest.Reply{Text: "Answer to B."})
	if _, err := a.Submit(context.Background(), Submission{AppID: "app", ChatID: "c1", UserID: "u1", Text: "question"}); err != nil {
		t.Fatal(err)
	}
	idle(t, a)
	if st.err != nil {
		t.Fatalf("replica B's message: %v", st.err)
	}
	evs := g.events("c1")
	if got := texts(evs); !slices.Contains(got, "user: from B") || !slices.Contains(got, "Assistant: First answer.") {
		t.Fatalf("texts = %q", got)
	}
	if s := g.session("c1"); s.Status != store.StatusInProgress {
		t.Fatalf("after A's run the chat is %s, want in_progress (B's message is unanswered); events: %s", s.Status, describe(evs))
	}

	// The sweep takes the chat once it is a lease old, and answers B's message.
	a.RecoverInBackground(time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Contains(texts(g.events("c1")), "Assistant: Answer to B.") {
		if time.Now().After(deadline) {
			t.Fatalf("B's message never answered; chat %s; events: %s", g.session("c1").Status, describe(g.events("c1")))
		}
		time.Sleep(20 * time.Millisecond)
	}
	idle(t, a)
	if s := g.session("c1"); s.Status != store.StatusAwaitingInput {
		t.Fatalf("after the sweep the chat is %s, want awaiting_input", s.Status)
	}
	reqs := g.llm.ChatRequests()
	if len(reqs) != 2 {
		t.Fatalf("%d model calls, want 2", len(reqs))
	}
	if msgs := reqs[1].Messages; len(msgs) == 0 || msgs[len(msgs)-1].Role != "user" || msgs[len(msgs)-1].Content != "from B" {
		t.Fatalf("the second model call does not answer B's message: %+v", msgs)
	}
}

// runsDone waits until the chat's room on m runs nothing and has nothing
// queued (its room may stay, watched by a socket).
func runsDone(t *testing.T, m *Manager, chatID string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := m.lockRoom("app", chatID)
		busy := r.running || len(r.queue) > 0 || r.writing || len(r.out) > 0
		r.mu.Unlock()
		if !busy {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the chat's runs are not done after 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The same, with a socket on replica A keeping the chat's room (and its
// cached transcript, which lacks B's message) alive, and the user's next
// message arriving through A before any sweep: the next run does not
// answer only its own message from the stale cache and mark the chat idle
// (hiding B's message for good); it reads the chat again and answers both.
func TestNextRunAnswersAMessageStoredDuringTheLastOne(t *testing.T) {
	g := newRig(t, nil)
	g.open("assistant", "c1")
	g.settled("c1")
	st := &strayStore{Store: g.st, owner: "replica-a"}
	a := g.replica(st, "replica-a", time.Minute) // no sweep within the test
	sub := a.Subscribe("app", "c1", 4096)
	defer a.Unsubscribe(sub)

	for range 3 {
		g.llm.Enqueue(llmtest.Reply{Text: "Answer."})
	}
	if _, err := a.Submit(context.Background(), Submission{AppID: "app", ChatID: "c1", UserID: "u1", Text: "question"}); err != nil {
		t.Fatal(err)
	}
	runsDone(t, a, "c1")
	if st.err != nil {
		t.Fatalf("replica B's message: %v", st.err)
	}
	if _, err := a.Submit(context.Background(), Submission{AppID: "app", ChatID: "c1", UserID: "u1", Text: "next"}); err != nil {
		t.Fatal(err)
	}
	runsDone(t, a, "c1")
	evs := g.events("c1")
	answers := 0
	for _, x := range texts(evs) {
		if x == "Assistant: Answer." {
			answers++
		}
	}
	if answers != 3 {
		t.Fatalf("%d answers, want 3 (question, B's message, next); events: %s", answers, describe(evs))
	}
	var asked []string
	for _, req := range g.llm.ChatRequests() {
		asked = append(asked, req.Messages[len(req.Messages)-1].Content)
	}
	if !slices.Contains(asked, "from B") || !slices.Contains(asked, "next") {
		t.Fatalf("the model was asked about %q, want B's message and the next one among them", asked)
	}
	if s := g.session("c1"); s.Status != store.StatusAwaitingInput {
		t.Fatalf("the chat is %s, want awaiting_input", s.Status)
	}
}

// With nobody else writing, a replica's run ends the chat waiting for the
// user, as one process alone does: the run's own events do not fail its
// end's condition, nor does a message of the user queued during the run
// (that one keeps the chat in progress until its own run has answered it).
func TestReplicaRunEndMarksIdle(t *testing.T) {
	g := newRig(t, nil)
	g.open("assistant", "c1")
	g.settled("c1")
	a := g.replica(g.st, "replica-a", time.Minute)
	for i, reply := range []llmtest.Reply{{Text: "One."}, {Text: "Two.", TokenDelay: 50 * time.Millisecond, Chunks: 5}, {Text: "Three."}} {
		g.llm.Enqueue(reply)
		if i == 2 {
			continue // asked while the second run streams
		}
		if _, err := a.Submit(context.Background(), Submission{AppID: "app", ChatID: "c1", UserID: "u1", Text: fmt.Sprint("q", i)}); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			idle(t, a)
			if s := g.session("c1"); s.Status != store.StatusAwaitingInput {
				t.Fatalf("after one turn the chat is %s, want awaiting_input; events: %s", s.Status, describe(g.events("c1")))
			}
		}
	}
	for a.ActiveRuns() == 0 {
		time.Sleep(time.Millisecond)
	}
	if _, err := a.Submit(context.Background(), Submission{AppID: "app", ChatID: "c1", UserID: "u1", Text: "q2"}); err != nil {
		t.Fatal(err)
	}
	idle(t, a)
	got := texts(g.events("c1"))
	for _, want := range []string{"user: q0", "Assistant: One.", "user: q1", "user: q2", "Assistant: Two."} {
		if !slices.Contains(got, want) {
			t.Fatalf("texts = %q, want %q among them", got, want)
		}
	}
	if got[len(got)-1] != "Assistant: Three." {
		t.Fatalf("texts = %q, want the third answer last", got)
	}
	if s := g.session("c1"); s.Status != store.StatusAwaitingInput {
		t.Fatalf("after three turns the chat is %s, want awaiting_input; events: %s", s.Status, describe(g.events("c1")))
	}
}

// What a run's end counts as its own since it read the chat: the seqs
// cached after the read, each once, and the highest of them.
func TestCachedAfter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		seqs   []int64
		read   int64
		n, top int64
	}{
		{"nothing after", []int64{1, 2, 3}, 3, 0, 3},
		{"in order", []int64{1, 2, 3, 4, 5}, 3, 2, 5},
		{"a hole (a seq another replica stored)", []int64{1, 2, 3, 5, 6}, 3, 2, 6},
		{"cached twice", []int64{1, 2, 3, 4, 4, 5}, 3, 2, 5},
		{"out of order", []int64{1, 2, 4, 3, 5}, 2, 3, 5},
		{"empty cache", nil, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &room{}
			for _, s := range tc.seqs {
				r.tr.evs = append(r.tr.evs, engine.StoredEvent{Seq: s})
			}
			if n, top := r.cachedAfter(tc.read); n != tc.n || top != tc.top {
				t.Fatalf("cachedAfter(%d) = %d, %d; want %d, %d", tc.read, n, top, tc.n, tc.top)
			}
		})
	}
}

// A run fenced off (its replica lost the lease) leaves its run_start, and
// the chat in progress, with its message unanswered. A job that finds its
// message already taken by that run (or a start already done) must not
// settle the chat over it: it recovers the run. Settling marked the chat
// idle with the question never answered, and no sweep looked again (seen
// under load on FerretDB: "acknowledged q9-1 answered 0 times").
func TestSettleDoesNotHideAFencedOffRun(t *testing.T) {
	g := newRig(t, nil)
	g.open("assistant", "c1")
	g.settled("c1")
	ctx := context.Background()
	busy, none := store.StatusInProgress, ""
	msg, err := g.st.AppendEventUpdate(ctx, "app", "c1", store.Event{Type: "chat.text", Agent: "user",
		Data: json.RawMessage(`{"kind":"text","agent":"user","role":"user","content":"question","message_id":"m_q"}`)}, true,
		store.SessionUpdate{Status: &busy, PendingKind: &none, PendingID: &none})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.st.AppendEvent(ctx, "app", "c1", store.Event{Type: "chat.run_start",
		Data: json.RawMessage(fmt.Sprintf(`{"kind":"run_start","run_id":"run_fenced","speaker":"Assistant","input_seq":%d}`, msg.Seq))}, false); err != nil {
		t.Fatal(err)
	}
	b := g.replica(g.st, "replica-b", time.Minute) // no sweep within the test
	g.llm.Enqueue(llmtest.Reply{Text: "Answer."})
	// The job replica B queued for the message, which reaches the lease
	// after replica A's run took the message.
	o := newOp()
	o.data, o.ev = map[string]any{"kind": "text", "agent": "user", "content": "question", "message_id": "m_q"}, msg
	close(o.done)
	b.enqueueChat("app", "c1", job{msg: o, msgID: "m_q", input: &engine.Input{Kind: engine.InputMessage, Text: "question"}})
	runsDone(t, b, "c1")

	evs := g.events("c1")
	if got := texts(evs); fmt.Sprint(got) != fmt.Sprint([]string{"Assistant: Hi! What can I help you with?", "user: question", "Assistant: Answer."}) {
		t.Fatalf("texts = %q; events:%s", got, describe(evs))
	}
	if s := g.session("c1"); s.Status != store.StatusAwaitingInput {
		t.Fatalf("the chat is %s, want awaiting_input", s.Status)
	}
}
