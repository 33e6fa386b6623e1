package chat

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
	"github.com/mozaiks/mozaiks/internal/store"
)

// stallAndTakeOver has replica a answer a message with a slow streamed
// reply, then stalls a (its lease renewals held, stall) while replica B
// takes the lease once it has run out, all within limit. It returns the
// deadline, for the test to go on waiting within it.
func (g *rig) stallAndTakeOver(a *Manager, stall *stallStore, limit time.Duration) time.Time {
	g.t.Helper()
	g.llm.Enqueue(llmtest.Reply{Text: strings.Repeat("slow ", 60), TokenDelay: 50 * time.Millisecond})
	if _, err := a.Submit(context.Background(), Submission{AppID: "app", ChatID: "c1", UserID: "u1", Text: "question"}); err != nil {
		g.t.Fatal(err)
	}
	deadline := time.Now().Add(limit)
	for a.ActiveRuns() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	stall.mu.Lock()
	stall.stalled = make(chan struct{})
	stall.mu.Unlock()
	for {
		ok, err := g.st.AcquireLease(context.Background(), "app", "c1", "replica-b", time.Minute)
		if err != nil {
			g.t.Fatal(err)
		}
		if ok {
			return deadline
		}
		if time.Now().After(deadline) {
			g.t.Fatal("replica B never got the expired lease")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// unstall lets replica a, stalled on s, go on, and waits until deadline for
// its run (whose lease was taken meanwhile) to stop.
func (g *rig) unstall(a *Manager, s *stallStore, deadline time.Time) {
	g.t.Helper()
	s.mu.Lock()
	close(s.stalled)
	s.stalled = nil
	s.mu.Unlock()
	for a.ActiveRuns() > 0 {
		if time.Now().After(deadline) {
			g.t.Fatal("the run whose lease was taken is still running")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stallStore holds this replica's lease renewals while stalled, as a
// process paused by the machine or a slow database would.
type stallStore struct {
	store.Store
	mu      sync.Mutex
	stalled chan struct{} // open while stalled
}

func (s *stallStore) AcquireLease(ctx context.Context, appID, chatID, owner string, ttl time.Duration) (bool, error) {
	if err := s.stall(ctx); err != nil {
		return false, err
	}
	return s.Store.AcquireLease(ctx, appID, chatID, owner, ttl)
}

func (s *stallStore) RenewLease(ctx context.Context, appID, chatID, owner string, ttl time.Duration) (bool, error) {
	if err := s.stall(ctx); err != nil {
		return false, err
	}
	return s.Store.RenewLease(ctx, appID, chatID, owner, ttl)
}

func (s *stallStore) stall(ctx context.Context) error {
	s.mu.Lock()
	ch := s.stalled
	s.mu.Unlock()
	if ch != nil {
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (s *stallStore) WriteBatch(ctx context.Context, appID, chatID string, ws []store.Write) ([]store.Event, error) {
	return s.Store.(store.Batcher).WriteBatch(ctx, appID, chatID, ws)
}

// A replica whose run stalls past its lease loses the chat to another: from
// then on its run's writes are fenced off (nothing of the reply it was
// streaming is stored, nor the state it ends in) and it stops, while the
// new owner's writes and the user's messages go through.
func TestRunThatLostItsLeaseWritesNothing(t *testing.T) {
	g := newRig(t, nil)
	g.open("assistant", "c1")
	stall := &stallStore{Store: g.st}
	a := g.replica(stall, "replica-a", 600*time.Millisecond)
	// The reply streams; then replica A stalls and its lease runs out.
	deadline := g.stallAndTakeOver(a, stall, 5*time.Second)
	before := g.session("c1")
	// A's renewal finds B's lease: A's run stops, long before its 3 s reply ends.
	g.unstall(a, stall, deadline)
	after := g.session("c1")
	evs := g.events("c1")
	for _, ev := range evs {
		if ev.Seq > before.LastSeq {
			t.Fatalf("replica A wrote seq %d after losing the lease (last seq %d then): %s", ev.Seq, before.LastSeq, describe(evs))
		}
		if ev.Type == "chat.text" && ev.Agent == "Assistant" && strings.Contains(string(ev.Data), "slow") {
			t.Fatalf("the reply of the run that lost its lease was stored: %s", describe(evs))
		}
	}
	if after.LastSeq != before.LastSeq || string(after.State) != string(before.State) || after.Status != before.Status {
		t.Fatalf("replica A changed the chat after losing the lease:\nbefore %+v\nafter  %+v", before, after)
	}
	// The user's messages are not fenced: B runs the chat, A still stores
	// what its sockets send.
	ack, err := a.Submit(context.Background(), Submission{AppID: "app", ChatID: "c1", UserID: "u1", Text: "still there?"})
	if err != nil || ack.Seq != before.LastSeq+1 {
		t.Fatalf("a message through replica A: %+v %v", ack, err)
	}
	if _, err := g.st.AppendEventUpdate(context.Background(), "app", "c1", store.Event{Type: "chat.text", Agent: "Assistant"}, true,
		store.SessionUpdate{Fence: "replica-b"}); err != nil {
		t.Fatalf("the new owner's write: %v", err)
	}
}
