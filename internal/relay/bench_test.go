package relay_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/relay"
	"github.com/mozaiks/mozaiks/internal/store"
)

// BenchmarkFanout100Chats: two replicas on one FerretDB; 100 chats, the
// first BENCH_WATCHED (default all) of them watched on replica B (the others
// have sockets on A only), of which BENCH_ACTIVE (default all) run on
// replica A: each
// streams a chunk every BENCH_TICK ms (default 1000) and stores an event
// every tenth tick, for BENCH_SECONDS (default 10) after a warm-up; then
// everything idles as long. (FerretDB v1 serialises writes through SQLite
// and saturates at a few dozen concurrent appends per second on a loaded
// machine: faster paces measure its queue, not the relay.)
//
// Reported, per stored event: when a socket on A has it (AppendEvent
// returned: A fans out at once) and when B's watch has it, both from the
// moment the append started; per chunk, when B has it from when A made it
// (on A that is at once). And the relay's store load: queries and inserts
// per second while active and while idle, against the store operations of
// the workload itself (2 per append); chunks written only for the chats B
// watches, and the reads of which chats those are (peer-reads/s).
//
//	go test -run '^$' -bench Fanout100Chats -benchtime 1x ./internal/relay/
func BenchmarkFanout100Chats(b *testing.B) {
	chats, active, watched := 100, 100, 100
	secs, tickMS := 10, 1000
	if v := os.Getenv("BENCH_ACTIVE"); v != "" {
		_, _ = fmt.Sscan(v, &active)
	}
	if v := os.Getenv("BENCH_WATCHED"); v != "" {
		_, _ = fmt.Sscan(v, &watched)
	}
	if v := os.Getenv("BENCH_SECONDS"); v != "" {
		_, _ = fmt.Sscan(v, &secs)
	}
	if v := os.Getenv("BENCH_TICK"); v != "" {
		_, _ = fmt.Sscan(v, &tickMS)
	}
	tick := time.Duration(tickMS) * time.Millisecond
	period := time.Duration(secs) * time.Second
	stores, pollers := replicasWith(b, 2, relay.Options{})
	a, pa, pb := stores[0], pollers[0], pollers[1]
	ctx := context.Background()

	type key struct {
		chat string
		seq  int64
	}
	var mu sync.Mutex
	started := map[key]time.Time{}
	local := map[key]time.Time{}
	remote := map[key]time.Time{}
	var chunkLat []time.Duration
	measuring := false

	for c := range chats {
		id := fmt.Sprintf("chat%03d", c)
		newChat(b, a, id)
		if c >= watched {
			continue
		}
		stop := pb.Watch("app", id, 0, func(ev store.Event) {
			now := time.Now()
			mu.Lock()
			remote[key{id, ev.Seq}] = now
			mu.Unlock()
		}, func(f []byte) {
			now := time.Now()
			var ns int64
			_, _ = fmt.Sscan(string(f), &ns)
			sent := time.Unix(0, ns)
			mu.Lock()
			if measuring {
				chunkLat = append(chunkLat, now.Sub(sent))
			}
			mu.Unlock()
		})
		b.Cleanup(stop)
	}

	run := func(d time.Duration, measure bool) {
		mu.Lock()
		measuring = measure
		mu.Unlock()
		var wg sync.WaitGroup
		end := time.Now().Add(d)
		for c := range active {
			id := fmt.Sprintf("chat%03d", c)
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Spread the chats over the period.
				time.Sleep(time.Duration(c) * tick / time.Duration(active))
				tick := time.NewTicker(tick)
				defer tick.Stop()
				for n := c % 10; time.Now().Before(end); n++ {
					<-tick.C
					if n%10 != 9 {
						_ = pa.Transient(ctx, "app", id, []byte(fmt.Sprint(time.Now().UnixNano())))
						continue
					}
					t0 := time.Now()
					ev, err := a.AppendEvent(ctx, "app", id, store.Event{Type: "chat.text", Data: []byte(`{"content":"x"}`)}, true)
					if err != nil {
						b.Error(err)
						return
					}
					t1 := time.Now()
					if measure && c < watched {
						mu.Lock()
						started[key{id, ev.Seq}], local[key{id, ev.Seq}] = t0, t1
						mu.Unlock()
					}
				}
			}()
		}
		wg.Wait()
	}

	b.ResetTimer()
	for range b.N {
		run(10*tick+time.Second, false) // warm-up: every chat has events, the reader is fast
		s0, q0 := pb.Stats(), pa.Stats()
		t0 := time.Now()
		run(period, true)
		time.Sleep(time.Second) // the last frames arrive
		activeFor := time.Since(t0)
		s1, q1 := pb.Stats(), pa.Stats()
		time.Sleep(2 * time.Second) // the reader backs off
		s2 := pb.Stats()
		time.Sleep(period)
		s3 := pb.Stats()

		mu.Lock()
		var same, other, added []time.Duration
		missing := 0
		for k, t := range started {
			r, ok := remote[k]
			if !ok {
				missing++
				continue
			}
			same = append(same, local[k].Sub(t))
			other = append(other, r.Sub(t))
			added = append(added, r.Sub(local[k]))
		}
		chunks := slices.Clone(chunkLat)
		mu.Unlock()
		if missing > 0 {
			b.Errorf("%d of %d stored events never reached the other replica", missing, len(started))
		}
		perSec := func(n int64, d time.Duration) float64 { return float64(n) / d.Seconds() }
		queries := perSec(s1.EventQueries-s0.EventQueries+s1.TransientQueries-s0.TransientQueries, activeFor)
		inserts := perSec(q1.TransientInserts-q0.TransientInserts, activeFor)
		idle := perSec(s3.EventQueries-s2.EventQueries+s3.TransientQueries-s2.TransientQueries, period)
		workload := perSec(int64(2*len(started)), activeFor)
		b.ReportMetric(ms(pct(same, 50)), "same-p50-ms")
		b.ReportMetric(ms(pct(same, 99)), "same-p99-ms")
		b.ReportMetric(ms(pct(other, 50)), "other-p50-ms")
		b.ReportMetric(ms(pct(other, 99)), "other-p99-ms")
		b.ReportMetric(ms(pct(added, 50)), "added-p50-ms")
		b.ReportMetric(ms(pct(added, 99)), "added-p99-ms")
		b.ReportMetric(float64(pct(other, 50))/float64(pct(same, 50)), "other/same-p50")
		b.ReportMetric(float64(pct(other, 99))/float64(pct(same, 99)), "other/same-p99")
		b.ReportMetric(ms(pct(chunks, 50)), "chunk-p50-ms")
		b.ReportMetric(ms(pct(chunks, 99)), "chunk-p99-ms")
		b.ReportMetric(queries, "read-q/s")
		b.ReportMetric(inserts, "chunk-inserts/s")
		b.ReportMetric(perSec(q1.TransientFrames-q0.TransientFrames, activeFor), "chunks/s")
		b.ReportMetric(idle, "idle-read-q/s")
		b.ReportMetric(perSec(q1.PeerQueries-q0.PeerQueries, activeFor), "peer-reads/s")
		b.ReportMetric(workload, "append-ops/s")
		b.ReportMetric(float64(len(started)), "events")
	}
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[int(math.Ceil(float64(p)/100*float64(len(d))))-1]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// BenchmarkTailEvents: the reader's one query for many chats against the
// baseline of reading one chat (ListEvents), on FerretDB with 100 chats of
// 5 events.
//
//	go test -run '^$' -bench TailEvents ./internal/relay/
func BenchmarkTailEvents(b *testing.B) {
	stores, _ := replicasWith(b, 1, relay.Options{})
	s := stores[0]
	ctx := context.Background()
	var cursors []store.ChatCursor
	for c := range 100 {
		id := fmt.Sprintf("chat%03d", c)
		newChat(b, s, id)
		for range 5 {
			if _, err := s.AppendEvent(ctx, "app", id, store.Event{Type: "chat.text"}, true); err != nil {
				b.Fatal(err)
			}
		}
		cursors = append(cursors, store.ChatCursor{AppID: "app", ChatID: id, After: 4})
	}
	b.Run("ListEvents one chat (baseline)", func(b *testing.B) {
		for range b.N {
			if _, err := s.ListEvents(ctx, "app", "chat000", 4, 100); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("TailEvents %d chats", n), func(b *testing.B) {
			for range b.N {
				evs, err := s.TailEvents(ctx, cursors[:n], 1000)
				if err != nil || len(evs) != n {
					b.Fatal(len(evs), err)
				}
			}
		})
	}
}
