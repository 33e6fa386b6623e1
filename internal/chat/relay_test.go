package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/relay"
	"github.com/mozaiks/mozaiks/internal/store"
	"github.com/mozaiks/mozaiks/internal/store/sqlite"
)

// scriptRelay lets the test play the other replicas: it records watches and
// hands the test their callbacks.
type scriptRelay struct {
	mu         sync.Mutex
	after      int64
	onEvent    func(store.Event)
	onFrame    func([]byte)
	stops      int
	transients [][]byte
	alone      bool
}

func (s *scriptRelay) Alone() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.alone }

func (s *scriptRelay) Transient(_ context.Context, _, _ string, frame []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.transients = append(s.transients, frame)
	return nil
}

func (s *scriptRelay) Watch(_, _ string, after int64, onEvent func(store.Event), onFrame func([]byte)) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.after, s.onEvent, s.onFrame = after, onEvent, onFrame
	return func() { s.mu.Lock(); s.stops++; s.mu.Unlock() }
}

func (s *scriptRelay) Mode() string { return relay.ModePoll }

// A room merges its own frames with the relay's by seq: each seq reaches
// the subscriber once, in order, whichever replica stored it and whichever
// path brought it first; a seq the relay skips (lost) releases what waited
// behind it; a late chunk of a message already complete is dropped.
func TestRoomMergesRelayBySeq(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rel := &scriptRelay{}
	m := NewManager(Options{Store: st, Relay: rel, SingleProcess: true})
	if _, _, err := st.CreateSession(ctx, store.Session{ChatID: "c", AppID: "a", UserID: "u", Workflow: "w", Status: store.StatusInProgress}); err != nil {
		t.Fatal(err)
	}
	var stored []store.Event
	appendElsewhere := func() store.Event { // another replica stores an event
		ev, err := st.AppendEvent(ctx, "a", "c", store.Event{Type: "chat.text", Data: json.RawMessage(`{"content":"x"}`)}, true)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, ev)
		return ev
	}
	for range 20 {
		appendElsewhere()
	}

	sub := m.Subscribe("a", "c", 0)
	if rel.after != 20-watchMargin {
		t.Fatalf("watch starts after %d, want %d", rel.after, 20-watchMargin)
	}
	r := m.room("a", "c")
	appendElsewhere() // seq 21, not yet seen here
	local, err := m.postEvent(r, "chat.text", "Agent", map[string]any{"content": "mine"}, true, nil).wait(ctx)
	if err != nil || local.Seq != 22 {
		t.Fatalf("local publish: seq %d, %v", local.Seq, err)
	}
	if got := seqs(sub.Take(nil)); len(got) != 0 {
		t.Fatalf("seq 22 went out before 5..21: %v", got)
	}
	for _, ev := range stored[4:] { // the relay catches up: 5..21
		rel.onEvent(ev)
	}
	rel.onEvent(local) // and brings this replica's own event too
	if got, want := seqs(sub.Take(nil)), span(5, 22); !slices.Equal(got, want) {
		t.Fatalf("after catching up: %v, want %v", got, want)
	}

	// Seq 23 was lost (its insert failed): a local frame at 24 waits, and
	// goes once the relay skips to 25.
	m.fanoutStored(r, Encode("chat.text", 24, time.Now(), map[string]any{}, false))
	if got := seqs(sub.Take(nil)); len(got) != 0 {
		t.Fatalf("seq 24 went out with 23 missing: %v", got)
	}
	rel.onEvent(store.Event{ChatID: "c", Seq: 25, Type: "chat.text", Data: json.RawMessage(`{"message_id":"m1","content":"hi"}`)})
	if got := seqs(sub.Take(nil)); !slices.Equal(got, []int64{24, 25}) {
		t.Fatalf("after the relay skipped 23: %v", got)
	}

	// Chunks of another replica's message: delivered until its text is.
	rel.onFrame([]byte(`{"type":"chat.print","data":{"message_id":"m2","content":"a"}}`))
	rel.onEvent(store.Event{ChatID: "c", Seq: 26, Type: "chat.text", Data: json.RawMessage(`{"message_id":"m2","content":"ab"}`)})
	rel.onFrame([]byte(`{"type":"chat.print","data":{"message_id":"m2","content":"b"}}`))
	rel.onFrame([]byte(`{"type":"chat.print","data":{"message_id":"m3","content":"c"}}`))
	var types []string
	for _, f := range sub.Take(nil) {
		types = append(types, fmt.Sprintf("%s/%d", f.Type, f.Seq))
	}
	if want := []string{"chat.print/0", "chat.text/26", "chat.print/0"}; !slices.Equal(types, want) {
		t.Fatalf("chunks around a remote text: %v, want %v", types, want)
	}

	// Alone, the relay reads nothing back: what waits goes, in order, with
	// the next frame.
	m.fanoutStored(r, Encode("chat.text", 28, time.Now(), map[string]any{}, false))
	rel.mu.Lock()
	rel.alone = true
	rel.mu.Unlock()
	m.fanoutStored(r, Encode("chat.text", 30, time.Now(), map[string]any{}, false))
	if got := seqs(sub.Take(nil)); !slices.Equal(got, []int64{28, 30}) {
		t.Fatalf("alone: %v", got)
	}

	// This replica's chunks are announced; the last subscriber stops the watch.
	m.relayTransient(r, EncodePrint(time.Now(), map[string]any{"kind": "print", "content": "z", "message_id": "m4"}))
	m.Unsubscribe(sub)
	rel.mu.Lock()
	defer rel.mu.Unlock()
	if len(rel.transients) != 1 || rel.stops != 1 {
		t.Fatalf("announced %d frames, stopped %d watches; want 1 and 1", len(rel.transients), rel.stops)
	}
}

func seqs(fs []Frame) []int64 {
	var out []int64
	for _, f := range fs {
		out = append(out, f.Seq)
	}
	return out
}

func span(from, to int64) []int64 {
	var out []int64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}
