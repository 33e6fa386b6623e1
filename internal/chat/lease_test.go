package chat

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/engine"
	"github.com/mozaiks/mozaiks/internal/llm"
	"github.com/mozaiks/mozaiks/internal/store"
)

// replica is a manager on the rig's store that runs chats under leases, as
// one of several replicas does.
func (g *rig) replica(st store.Store, owner string, ttl time.Duration) *Manager {
	g.t.Helper()
	return g.manager(Options{Store: st, Owner: owner, LeaseTTL: ttl})
}

// manager is another manager with the rig's engine and workflows (o adds
// the store and the rest), shut down when the test ends.
func (g *rig) manager(o Options) *Manager {
	model := llm.NewOpenAI(llm.Options{APIKey: "sk-test", BaseURL: g.llm.URL(), MaxRetries: -1})
	o.Runner = engine.New(engine.Options{Workflows: g.set, LLM: model, DefaultModel: "m"})
	o.Workflows = g.set
	m := NewManager(o)
	g.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		m.Shutdown(ctx)
	})
	return m
}

// A replica whose run stalls past its lease, while another replica takes
// the lease, runs the chat and releases it, does not get the lease back
// when it wakes up: its renewal finds the lease was taken (even though it
// is free now) and its run stops, writing nothing more. Renewing by taking
// the lease again (AcquireLease) let it go on and store its reply.
func TestRenewalDoesNotRetakeAReleasedLease(t *testing.T) {
	g := newRig(t, nil)
	g.open("assistant", "c1")
	stall := &stallStore{Store: g.st}
	a := g.replica(stall, "replica-a", 600*time.Millisecond)

	// Replica B takes the expired lease, runs the chat and lets it go.
	deadline := g.stallAndTakeOver(a, stall, 10*time.Second)
	if err := g.st.ReleaseLease(context.Background(), "app", "c1", "replica-b"); err != nil {
		t.Fatal(err)
	}
	before := g.session("c1")
	g.unstall(a, stall, deadline)
	evs := g.events("c1")
	for _, ev := range evs {
		if ev.Seq > before.LastSeq {
			t.Fatalf("replica A wrote seq %d after its lease was taken (last seq %d then): %s", ev.Seq, before.LastSeq, describe(evs))
		}
	}
	after := g.session("c1")
	if after.LastSeq != before.LastSeq || string(after.State) != string(before.State) || after.Status != before.Status {
		t.Fatalf("replica A changed the chat after its lease was taken:\nbefore %+v\nafter  %+v", before, after)
	}
}

// Once a write of a run is refused (ErrFenced: another replica took the
// lease), every later write of that run is refused too, even after this
// replica holds the lease again (it took it for something else, or the
// other replica released it and a renewal took it back): the run that lost
// the chat stores nothing more. A new lease (a new run) writes as usual.
func TestFencedOffStaysUntilANewLease(t *testing.T) {
	g := newRig(t, nil)
	g.open("assistant", "c1")
	g.settled("c1")
	a := g.replica(g.st, "replica-a", time.Minute)
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	text := func(r *room, s string) error {
		_, err := a.postEvent(r, "chat.text", "Assistant", map[string]any{"kind": "text", "content": s}, true, nil).wait(ctx)
		return err
	}

	r := a.lockRoom("app", "c1")
	r.mu.Unlock()
	if !a.lease(ctx, r, log) {
		t.Fatal("replica A could not take the lease")
	}
	if err := text(r, "under A's lease"); err != nil {
		t.Fatalf("a write under A's lease: %v", err)
	}
	// A's lease lapses, say, and replica B takes the chat.
	if err := g.st.ReleaseLease(ctx, "app", "c1", "replica-a"); err != nil {
		t.Fatal(err)
	}
	if ok, err := g.st.AcquireLease(ctx, "app", "c1", "replica-b", time.Minute); !ok || err != nil {
		t.Fatalf("B takes the lease: %v %v", ok, err)
	}
	if err := text(r, "after B took it"); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("a write of A's run under B's lease: %v, want ErrFenced", err)
	}
	// B lets go, and replica A holds the lease again.
	if err := g.st.ReleaseLease(ctx, "app", "c1", "replica-b"); err != nil {
		t.Fatal(err)
	}
	if ok, err := g.st.AcquireLease(ctx, "app", "c1", "replica-a", time.Minute); !ok || err != nil {
		t.Fatalf("A holds the lease again: %v %v", ok, err)
	}
	last := g.session("c1").LastSeq
	for _, o := range []*op{
		a.postEvent(r, "chat.text", "Assistant", map[string]any{"kind": "text", "content": "the stalled run's end"}, true, nil),
		a.postUpdate(r, store.SessionUpdate{}, func() string { return store.StatusCompleted }),
	} {
		if _, err := o.wait(ctx); !errors.Is(err, store.ErrFenced) {
			t.Fatalf("a later write of the run that lost the chat: %v, want ErrFenced", err)
		}
	}
	if s := g.session("c1"); s.LastSeq != last || s.Status == store.StatusCompleted {
		t.Fatalf("the run that lost the chat wrote: last seq %d (was %d), status %s; events: %s", s.LastSeq, last, s.Status, describe(g.events("c1")))
	}

	// A new run takes a new lease and writes.
	a.unlease(r, log)
	if !a.lease(ctx, r, log) {
		t.Fatal("replica A could not take a new lease")
	}
	defer a.unlease(r, log)
	if err := text(r, "a new run"); err != nil {
		t.Fatalf("a write under a new lease: %v", err)
	}
	evs := g.events("c1")
	if got := texts(evs); got[len(got)-1] != "Assistant: a new run" || strings.Contains(strings.Join(got, "|"), "stalled") ||
		strings.Contains(strings.Join(got, "|"), "after B took it") {
		t.Fatalf("texts = %q", got)
	}
}
