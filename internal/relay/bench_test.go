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

// BenchmarkFanout100Chats: two replicas on one FerretDB; 100 chats run on
// replica A, each watched on replica B. Each chat streams a chunk every
// 50 ms and stores an event every 500 ms (the pace of a model reply), for
// BENCH_SECONDS (default 5) after a warm-up; then everything idles as long.
//
// Reported, per stored event: when a socket on A has it (AppendEvent
// returned: A fans out at once) and when B's watch has it, both from the
// moment the append started; per chunk, when B has it from when A made it
// (on A that is at once). And the relay's store load: queries and inserts
// per second while active and while idle, against the store operations of
// the workload itself (2 per append).
//
//	go test -run '^$' -bench Fanout100Chats -benchtime 1x ./internal/relay/
func BenchmarkFanout100Chats(b *testing.B) {
	const chats = 100
	secs := 5
	if v := os.Getenv("BENCH_SECONDS"); v != "" {
		_, _ = fmt.Sscan(v, &secs)
	}
	active := time.Duration(secs) * time.Second
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
		for c := range chats {
			id := fmt.Sprintf("chat%03d", c)
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Spread the chats over the period.
				time.Sleep(time.Duration(c) * 500 * time.Millisecond / chats)
				tick := time.NewTicker(50 * time.Millisecond)
				defer tick.Stop()
				for n := 0; time.Now().Before(end); n++ {
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
					if measure {
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
		run(time.Second, false) // warm-up: every chat has events, the reader is fast
		s0, q0 := pb.Stats(), pa.Stats()
		t0 := time.Now()
		run(active, true)
		time.Sleep(time.Second) // the last frames arrive
		activeFor := time.Since(t0)
		s1, q1 := pb.Stats(), pa.Stats()
		time.Sleep(2 * time.Second) // the reader backs off
		s2 := pb.Stats()
		time.Sleep(active)
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
		idle := perSec(s3.EventQueries-s2.EventQueries+s3.TransientQueries-s2.TransientQueries, active)
		workload := perSec(int64(2*len(started)), activeFor)
		b.ReportMetric(ms(pct(same, 50)), "same-p50-ms")
		b.ReportMetric(ms(pct(same, 99)), "same-p99-ms")
		b.ReportMetric(ms(pct(other, 50)), "other-p50-ms")
		b.ReportMetric(ms(pct(other, 99)), "other-p99-ms")
		b.ReportMetric(ms(pct(added, 50)), "added-p50-ms")
		b.ReportMetric(ms(pct(added, 99)), "added-p99-ms")
		b.ReportMetric(ms(pct(chunks, 50)), "chunk-p50-ms")
		b.ReportMetric(ms(pct(chunks, 99)), "chunk-p99-ms")
		b.ReportMetric(queries, "read-q/s")
		b.ReportMetric(inserts, "chunk-inserts/s")
		b.ReportMetric(perSec(q1.TransientFrames-q0.TransientFrames, activeFor), "chunks/s")
		b.ReportMetric(idle, "idle-read-q/s")
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
