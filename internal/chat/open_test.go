package chat

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/engine"
	"github.com/mozaiks/mozaiks/internal/llm"
	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
	"github.com/mozaiks/mozaiks/internal/store"
)

// readCounting counts the chat reads (sessions and events) of a manager.
type readCounting struct {
	store.Store
	reads atomic.Int64
}

func (s *readCounting) GetSession(ctx context.Context, appID, chatID string) (store.Session, error) {
	s.reads.Add(1)
	return s.Store.GetSession(ctx, appID, chatID)
}

func (s *readCounting) ListEvents(ctx context.Context, appID, chatID string, afterSeq int64, limit int) ([]store.Event, error) {
	s.reads.Add(1)
	return s.Store.ListEvents(ctx, appID, chatID, afterSeq, limit)
}

func (s *readCounting) WriteBatch(ctx context.Context, appID, chatID string, ws []store.Write) ([]store.Event, error) {
	return s.Store.(store.Batcher).WriteBatch(ctx, appID, chatID, ws)
}

// A new chat's first message reads nothing from the store: the room its
// greeting ran in (its transcript, its last run's state) is kept for the
// socket that connects next, or for the message itself when it comes
// without one. After the grace the room is let go.
func TestFirstMessageOfANewChatReadsNothing(t *testing.T) {
	t.Parallel()
	g := newRig(t, nil)
	cs := &readCounting{Store: g.st}
	model := llm.NewOpenAI(llm.Options{APIKey: "sk-test", BaseURL: g.llm.URL(), MaxRetries: -1})
	m := NewManager(Options{Store: cs, Runner: engine.New(engine.Options{Workflows: g.set, LLM: model, DefaultModel: "m"}),
		Workflows: g.set, SingleProcess: true})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		m.Shutdown(ctx)
	})
	ctx := context.Background()
	for _, chatID := range []string{"with_socket", "without"} {
		if _, _, err := m.Open(ctx, OpenRequest{Workflow: "assistant", AppID: "app", ChatID: chatID, UserID: "u1"}); err != nil {
			t.Fatal(err)
		}
		if chatID == "with_socket" {
			sub := m.Subscribe("app", chatID, 64)
			t.Cleanup(func() { m.Unsubscribe(sub) })
		}
		g.llm.Enqueue(llmtest.Reply{Text: "An answer."})
		before := cs.reads.Load()
		if _, err := m.Submit(ctx, Submission{AppID: "app", ChatID: chatID, UserID: "u1", Text: "hi"}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for got := texts(g.events(chatID)); len(got) != 3 || got[2] != "Assistant: An answer." || m.ActiveRuns() > 0; got = texts(g.events(chatID)) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: texts %q after 10 s, want the greeting, the message and the answer", chatID, got)
			}
			time.Sleep(5 * time.Millisecond)
		}
		if n := cs.reads.Load() - before; n != 0 {
			t.Errorf("%s: the first message's turn read the store %d times, want 0", chatID, n)
		}
	}

	// The grace ends: a room nobody uses is let go.
	m.openGrace = 20 * time.Millisecond
	if _, _, err := m.Open(ctx, OpenRequest{Workflow: "assistant", AppID: "app", ChatID: "left", UserID: "u1"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for m.hasRoom("app", "left") {
		if time.Now().After(deadline) {
			t.Fatal("a new chat's room is still kept 5 s after its grace")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (m *Manager) hasRoom(appID, chatID string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.rooms[appID+"\x00"+chatID]
	return ok
}
