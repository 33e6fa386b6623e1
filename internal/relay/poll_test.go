package relay_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

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
