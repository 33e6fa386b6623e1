package relay_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mozaiks/mozaiks/internal/relay"
	"github.com/mozaiks/mozaiks/internal/store"
	"github.com/mozaiks/mozaiks/internal/store/mongo"
	"github.com/mozaiks/mozaiks/internal/store/sqlite"
	"github.com/mozaiks/mozaiks/internal/testutil/ferret"
)

// replicas opens n store clients on one FerretDB database, each with its
// own Poller: n replicas of one deployment, as far as the store can tell.
func replicas(t testing.TB, n int) ([]*mongo.Store, []*relay.Poller) {
	return replicasWith(t, n, relay.Options{MinInterval: 5 * time.Millisecond, MaxInterval: 50 * time.Millisecond,
		PeerEvery: 50 * time.Millisecond})
}

func replicasWith(t testing.TB, n int, o relay.Options) ([]*mongo.Store, []*relay.Poller) {
	t.Helper()
	uri := ferret.DB(t)
	stores := make([]*mongo.Store, n)
	pollers := make([]*relay.Poller, n)
	for i := range n {
		s, err := mongo.Open(context.Background(), uri, mongo.Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if err := s.EnsureFeedIndexes(context.Background()); err != nil {
			t.Fatal(err)
		}
		stores[i] = s
		o.Origin = fmt.Sprintf("r%d", i)
		pollers[i] = relay.NewPoller(s, o)
		t.Cleanup(pollers[i].Close)
	}
	// Replicas write each other frames once they know of each other.
	deadline := time.Now().Add(20 * time.Second)
	for _, p := range pollers {
		for p.Stats().Peers != int64(n-1) {
			if time.Now().After(deadline) {
				t.Fatalf("replica %s knows of %d others, want %d", p.Origin(), p.Stats().Peers, n-1)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return stores, pollers
}

// recorder collects what one watch delivers.
type recorder struct {
	mu     sync.Mutex
	seqs   []int64
	frames []string
	more   chan struct{}
}

func newRecorder() *recorder { return &recorder{more: make(chan struct{}, 1)} }

func (r *recorder) event(ev store.Event) {
	r.mu.Lock()
	r.seqs = append(r.seqs, ev.Seq)
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) transient(b []byte) {
	r.mu.Lock()
	r.frames = append(r.frames, string(b))
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) poke() {
	select {
	case r.more <- struct{}{}:
	default:
	}
}

// waitFor waits until cond holds on the recorder (or fails after 20 s).
func (r *recorder) waitFor(t *testing.T, what string, cond func(seqs []int64, frames []string) bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		r.mu.Lock()
		ok := cond(r.seqs, r.frames)
		seqs, frames := slices.Clone(r.seqs), slices.Clone(r.frames)
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.more:
		case <-deadline:
			t.Fatalf("%s: not within 20 s; have seqs %v, frames %v", what, seqs, frames)
		}
	}
}

func newChat(t testing.TB, s store.Store, chatID string) {
	t.Helper()
	if _, _, err := s.CreateSession(context.Background(), store.Session{ChatID: chatID, AppID: "app", UserID: "u",
		Workflow: "wf", Status: store.StatusInProgress}); err != nil {
		t.Fatal(err)
	}
}

// Events appended concurrently through two or three store clients reach a
// watch on every replica once each, in seq order, exactly as stored.
func TestPollerStoredEventsAcrossReplicas(t *testing.T) {
	t.Parallel()
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d replicas", n), func(t *testing.T) {
			t.Parallel()
			stores, pollers := replicas(t, n)
			newChat(t, stores[0], "c1")
			recs := make([]*recorder, n)
			for i, p := range pollers {
				recs[i] = newRecorder()
				stop := p.Watch("app", "c1", 0, recs[i].event, recs[i].transient)
				t.Cleanup(stop)
			}
			const perReplica = 15
			var wg sync.WaitGroup
			for i, s := range stores {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := range perReplica {
						if _, err := s.AppendEvent(context.Background(), "app", "c1", store.Event{Type: "chat.text",
							Data: []byte(fmt.Sprintf(`{"k":"%d-%d"}`, i, k))}, true); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			stored, err := stores[0].ListEvents(context.Background(), "app", "c1", 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]int64, len(stored))
			for i, ev := range stored {
				want[i] = ev.Seq
			}
			if len(want) != n*perReplica {
				t.Fatalf("stored %d events, want %d", len(want), n*perReplica)
			}
			for i, r := range recs {
				r.waitFor(t, fmt.Sprintf("replica %d", i), func(seqs []int64, _ []string) bool {
					return len(seqs) >= len(want)
				})
				r.mu.Lock()
				got := slices.Clone(r.seqs)
				r.mu.Unlock()
				if !slices.Equal(got, want) {
					t.Errorf("replica %d saw %v, stored %v", i, got, want)
				}
			}
		})
	}
}

// A watch starts after the seq it is given, and a watch that stopped gets
// nothing more.
func TestPollerWatchFromSeqAndStop(t *testing.T) {
	t.Parallel()
	stores, pollers := replicas(t, 2)
	newChat(t, stores[0], "c1")
	for range 5 {
		if _, err := stores[0].AppendEvent(context.Background(), "app", "c1", store.Event{Type: "chat.text"}, true); err != nil {
			t.Fatal(err)
		}
	}
	late, stopped := newRecorder(), newRecorder()
	stopLate := pollers[1].Watch("app", "c1", 3, late.event, late.transient)
	defer stopLate()
	late.waitFor(t, "events after 3", func(seqs []int64, _ []string) bool { return len(seqs) >= 2 })
	stop := pollers[1].Watch("app", "c1", 5, stopped.event, stopped.transient)
	stop()
	if _, err := stores[0].AppendEvent(context.Background(), "app", "c1", store.Event{Type: "chat.text"}, true); err != nil {
		t.Fatal(err)
	}
	late.waitFor(t, "seq 6", func(seqs []int64, _ []string) bool { return len(seqs) >= 3 })
	late.mu.Lock()
	if got := late.seqs; !slices.Equal(got, []int64{4, 5, 6}) {
		t.Errorf("watch after 3 saw %v", got)
	}
	late.mu.Unlock()
	stopped.mu.Lock()
	defer stopped.mu.Unlock()
	if len(stopped.seqs) != 0 {
		t.Errorf("stopped watch saw %v", stopped.seqs)
	}
}

// Transient frames reach the other replicas' watches of their chat, in the
// order they were made, and never come back to their own replica or go to
// another chat.
func TestPollerTransientFrames(t *testing.T) {
	t.Parallel()
	stores, pollers := replicas(t, 3)
	newChat(t, stores[0], "c1")
	newChat(t, stores[0], "c2")
	recs := make([]*recorder, 3)
	for i, p := range pollers {
		recs[i] = newRecorder()
		defer p.Watch("app", "c1", 0, recs[i].event, recs[i].transient)()
	}
	other := newRecorder()
	defer pollers[1].Watch("app", "c2", 0, other.event, other.transient)()
	waitWatchedElsewhere(t, pollers[0], "c1")
	waitWatchedElsewhere(t, pollers[2], "c1")

	var want []string
	for k := range 50 {
		f := fmt.Sprintf(`{"type":"chat.print","content":"%d"}`, k)
		want = append(want, f)
		if err := pollers[0].Transient(context.Background(), "app", "c1", []byte(f)); err != nil {
			t.Fatal(err)
		}
	}
	// Flush returns once the chat's frames are in the store.
	if err := pollers[0].Flush(context.Background(), "c1"); err != nil {
		t.Fatal(err)
	}
	if st := pollers[0].Stats(); st.TransientFrames != int64(len(want)) {
		t.Fatalf("after Flush %d of %d frames are written", st.TransientFrames, len(want))
	}
	for _, i := range []int{1, 2} {
		recs[i].waitFor(t, fmt.Sprintf("replica %d frames", i), func(_ []int64, frames []string) bool { return len(frames) >= len(want) })
		recs[i].mu.Lock()
		if !slices.Equal(recs[i].frames, want) {
			t.Errorf("replica %d saw %v", i, recs[i].frames)
		}
		recs[i].mu.Unlock()
	}
	// A frame of replica 2 reaches replicas 0 and 1 after all of replica
	// 0's frames: then replica 0 and the watch of c2 have had every chance
	// to get a frame they must not.
	if err := pollers[2].Transient(context.Background(), "app", "c1", []byte(`"end"`)); err != nil {
		t.Fatal(err)
	}
	recs[1].waitFor(t, "end frame on 1", func(_ []int64, frames []string) bool { return len(frames) == len(want)+1 })
	recs[0].waitFor(t, "end frame on 0", func(_ []int64, frames []string) bool { return len(frames) > 0 })
	recs[0].mu.Lock()
	if !slices.Equal(recs[0].frames, []string{`"end"`}) {
		t.Errorf("replica 0 got its own frames back: %v", recs[0].frames)
	}
	recs[0].mu.Unlock()
	other.mu.Lock()
	if len(other.frames) > 0 {
		t.Errorf("the watch of c2 got frames of c1: %v", other.frames)
	}
	other.mu.Unlock()
	if st := pollers[0].Stats(); st.TransientFrames != int64(len(want)) || st.TransientInserts > st.TransientFrames || st.Dropped > 0 {
		t.Errorf("writer stats %+v", st)
	}
}

// waitWatchedElsewhere waits until p has heard that another replica watches
// chatID (announces come every 50 ms in these tests).
func waitWatchedElsewhere(t *testing.T, p *relay.Poller, chatID string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !p.WatchedElsewhere(chatID) {
		if time.Now().After(deadline) {
			t.Fatalf("replica %s does not hear that another replica watches %s", p.Origin(), chatID)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Chunks are written only for chats another replica has a socket on: with
// a watch on replica A alone, a streamed reply on A writes no frame to the
// store; once replica B watches the chat, B gets A's next message's chunks
// live, in order, and a chat B does not watch still costs nothing. A
// message's chunks are all written or none: B starting to watch in the
// middle of one does not get its tail.
func TestPollerChunksOnlyWhenWatchedElsewhere(t *testing.T) {
	t.Parallel()
	stores, pollers := replicas(t, 2)
	a, pa, pb := stores[0], pollers[0], pollers[1]
	ctx := context.Background()
	for _, id := range []string{"c1", "c2"} {
		newChat(t, a, id)
		onA := newRecorder()
		defer pa.Watch("app", id, 0, onA.event, onA.transient)()
	}
	// Announces go round every 50 ms: let a few pass.
	for n := pa.Stats().Announces + 3; pa.Stats().Announces < n || pb.Stats().Announces < n; {
		time.Sleep(5 * time.Millisecond)
	}
	stream := func(id, msg string, n int) []string {
		var sent []string
		for k := range n {
			f := fmt.Sprintf(`{"type":"chat.print","content":"%s-%d"}`, msg, k)
			sent = append(sent, f)
			if err := pa.Transient(ctx, "app", id, []byte(f)); err != nil {
				t.Fatal(err)
			}
		}
		return sent
	}
	stream("c1", "m1", 20)
	if err := pa.Flush(ctx, "c1"); err != nil { // the message is stored next
		t.Fatal(err)
	}
	if st := pa.Stats(); st.TransientFrames != 0 || st.TransientInserts != 0 || st.Unwatched != 20 {
		t.Fatalf("sockets on A only: %d frames in %d inserts written, %d skipped (want 0, 0, 20)", st.TransientFrames, st.TransientInserts, st.Unwatched)
	}
	if n := relayDocs(t, a, "c1"); n != 0 {
		t.Fatalf("sockets on A only: %d chunk documents of c1 in %s", n, mongo.RelayCollection)
	}

	// B watches c1 from the middle of message m2: m2's tail is not
	// written, m3 is, whole.
	stream("c1", "m2", 5)
	onB := newRecorder()
	defer pb.Watch("app", "c1", 0, onB.event, onB.transient)()
	waitWatchedElsewhere(t, pa, "c1")
	stream("c1", "m2", 5)
	if err := pa.Flush(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	want := stream("c1", "m3", 10)
	stream("c2", "m1", 10) // nobody elsewhere watches c2
	if err := pa.Flush(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	onB.waitFor(t, "m3's chunks on B", func(_ []int64, frames []string) bool { return len(frames) >= len(want) })
	onB.mu.Lock()
	if !slices.Equal(onB.frames, want) {
		t.Errorf("B got %v, want m3's chunks %v", onB.frames, want)
	}
	onB.mu.Unlock()
	if st := pa.Stats(); st.TransientFrames != int64(len(want)) {
		t.Errorf("%d frames written, want m3's %d", st.TransientFrames, len(want))
	}
	if n := relayDocs(t, a, "c2"); n != 0 {
		t.Errorf("%d chunk documents of c2, which only A watches", n)
	}
}

// relayDocs counts the chunk documents of a chat in the relay collection.
func relayDocs(t *testing.T, s *mongo.Store, chatID string) int64 {
	t.Helper()
	n, err := s.Client().Database(s.Database()).Collection(mongo.RelayCollection).CountDocuments(context.Background(),
		bson.D{{Key: "chat_id", Value: chatID}})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The embedded store's relay carries nothing and says so.
func TestLocal(t *testing.T) {
	t.Parallel()
	var r relay.Relay = relay.Local{}
	if r.Mode() != relay.ModeLocal {
		t.Fatal(r.Mode())
	}
	if err := r.Transient(context.Background(), "a", "c", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	r.Watch("a", "c", 0, func(store.Event) { t.Error("event") }, func([]byte) { t.Error("frame") })()
}

// A replica alone writes no frames and polls nothing.
func TestPollerAloneIsFree(t *testing.T) {
	t.Parallel()
	stores, pollers := replicas(t, 1)
	newChat(t, stores[0], "c1")
	rec := newRecorder()
	defer pollers[0].Watch("app", "c1", 0, rec.event, rec.transient)()
	for range 20 {
		_ = pollers[0].Transient(context.Background(), "app", "c1", []byte(`{}`))
	}
	if _, err := stores[0].AppendEvent(context.Background(), "app", "c1", store.Event{Type: "chat.text"}, true); err != nil {
		t.Fatal(err)
	}
	// Let a few announce periods pass: still nothing.
	for st := pollers[0].Stats(); st.Announces < 4; st = pollers[0].Stats() {
		time.Sleep(10 * time.Millisecond)
	}
	st := pollers[0].Stats()
	if st.Polls != 0 || st.EventQueries != 0 || st.TransientInserts != 0 || st.Peers != 0 {
		t.Fatalf("a lone replica used the store: %+v", st)
	}
}

// For picks the relay from the store: the embedded store is one process's;
// FerretDB, like a standalone MongoDB, has no change streams and is polled.
func TestForPicksMode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	emb, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	r, stop := relay.For(ctx, emb, relay.Options{})
	stop()
	if r.Mode() != relay.ModeLocal {
		t.Errorf("embedded store: mode %s", r.Mode())
	}
	stores, _ := replicas(t, 1)
	if yes, err := stores[0].ChangeStreams(ctx); err != nil || yes {
		t.Errorf("FerretDB change streams: %v, %v", yes, err)
	}
	r, stop = relay.For(ctx, stores[0], relay.Options{})
	defer stop()
	if r.Mode() != relay.ModePoll {
		t.Errorf("FerretDB: mode %s", r.Mode())
	}
}
