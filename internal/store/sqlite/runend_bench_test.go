//go:build !windows

package sqlite_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/store"
)

// BenchmarkRunEndBatch stores what a chat turn's run stores at its end (its
// opening bookkeeping, the reply, its usage, the input request and the
// session's new status, as one WriteBatch) with a deadline on the context,
// as the chat layer calls it. It reports the process's CPU per batch: the
// writer's CPU, not its wait for the disk, is what competes with the runs.
func BenchmarkRunEndBatch(b *testing.B) {
	s := openBench(b)
	createBench(b, s, "c")
	b.ReportAllocs()
	c0 := cpuNow()
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		if _, err := s.WriteBatch(ctx, "a", "c", runEndWrites()); err != nil {
			b.Fatal(err)
		}
		cancel()
	}
	b.ReportMetric(float64(cpuNow()-c0)/float64(b.N)/1e3, "cpu-us/batch")
}

// runEndWrites is what a chat turn's run stores at its end, as one batch:
// its opening bookkeeping, the reply, its usage, the input request and the
// session's new status. A new slice each call: WriteBatch fills in the
// events' timestamps.
func runEndWrites() []store.Write {
	return []store.Write{
		{Event: &store.Event{Type: "chat.run_start", Data: benchSmall}},
		{Event: &store.Event{Type: "chat.select_speaker", Agent: "A", Data: benchSmall}},
		{Event: &store.Event{Type: "chat.usage_delta", Agent: "A", Data: benchSmall},
			Usage: &store.UsageRecord{UserID: "u", Workflow: "w", Agent: "A", Model: "m", PromptTokens: 40, CompletionTokens: 8, TotalTokens: 48}},
		{Event: &store.Event{Type: "chat.text", Agent: "A", Data: benchReply}, Message: true},
		{Event: &store.Event{Type: "chat.input_request", Agent: "A", Data: benchSmall}},
		{Update: store.SessionUpdate{Status: &benchWaiting, PendingKind: &benchKind, PendingID: &benchPending}},
	}
}

var (
	benchReply = json.RawMessage(`{"kind":"text","agent":"A","role":"assistant","content":"a reply of a typical length for a chat turn, a sentence or two","message_id":"m_0123456789abcdef"}`)
	benchSmall = json.RawMessage(`{"kind":"select_speaker","agent":"A"}`)

	benchWaiting, benchKind, benchPending = store.StatusAwaitingInput, "input_request", "req_0123456789abcdef"
)

// cpuNow is the process's CPU time (user and system).
func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkBurstTurns is a burst's store work: 100 chats each store a
// user's message (the session busy, pending cleared, as chat.Submit does)
// and then their run's end (BenchmarkRunEndBatch's batch). "at_once": all
// 100 at the same instant; "spread": the messages over 10 ms and each run's
// end 25 ms after its message, as BenchmarkTTFTApart's burst reaches the
// store. It reports the process's CPU per turn (a message and a run's end)
// and the transactions per turn: the writer puts whatever waits into one
// transaction, and a commit costs the WAL frames of every page it touched.
//
//	go test -run '^$' -bench BurstTurns -benchtime 20x ./internal/store/sqlite/
func BenchmarkBurstTurns(b *testing.B) {
	const chats = 100
	msg := json.RawMessage(`{"kind":"text","agent":"user","role":"user","content":"tell me something","message_id":"m_0123456789abcdef"}`)
	busy, none := store.StatusInProgress, ""
	for _, shape := range []struct {
		name          string
		spread, model time.Duration
	}{{"at_once", 0, 0}, {"spread", 10 * time.Millisecond, 25 * time.Millisecond}} {
		b.Run(shape.name, func(b *testing.B) {
			s := openBench(b)
			for i := range chats {
				createBench(b, s, fmt.Sprintf("c%d", i))
			}
			turn := func(chat string, delay time.Duration) error {
				time.Sleep(delay)
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				defer cancel()
				if _, err := s.AppendEventUpdate(ctx, "a", chat, store.Event{Type: "chat.text", Agent: "user", Data: msg}, true,
					store.SessionUpdate{Status: &busy, PendingKind: &none, PendingID: &none}); err != nil {
					return err
				}
				time.Sleep(shape.model)
				_, err := s.WriteBatch(ctx, "a", chat, runEndWrites())
				return err
			}
			c0, t0 := cpuNow(), s.Commits()
			for b.Loop() {
				var wg sync.WaitGroup
				errs := make([]error, chats)
				for i := range chats {
					delay := shape.spread * time.Duration(i) / chats
					wg.Go(func() { errs[i] = turn(fmt.Sprintf("c%d", i), delay) })
				}
				wg.Wait()
				if err := errors.Join(errs...); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuNow()-c0)/float64(b.N*chats)/1e3, "cpu-us/turn")
			b.ReportMetric(float64(s.Commits()-t0)/float64(b.N*chats), "commits/turn")
		})
	}
}
