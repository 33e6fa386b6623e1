//go:build !windows

package sqlite_test

import (
	"context"
	"encoding/json"
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
	text := json.RawMessage(`{"kind":"text","agent":"A","role":"assistant","content":"a reply of a typical length for a chat turn, a sentence or two","message_id":"m_0123456789abcdef"}`)
	small := json.RawMessage(`{"kind":"select_speaker","agent":"A"}`)
	waiting, pending := store.StatusAwaitingInput, "req_0123456789abcdef"
	kind := "input_request"
	b.ReportAllocs()
	c0 := cpuNow()
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		ws := []store.Write{
			{Event: &store.Event{Type: "chat.run_start", Data: small}},
			{Event: &store.Event{Type: "chat.select_speaker", Agent: "A", Data: small}},
			{Event: &store.Event{Type: "chat.usage_delta", Agent: "A", Data: small},
				Usage: &store.UsageRecord{UserID: "u", Workflow: "w", Agent: "A", Model: "m", PromptTokens: 40, CompletionTokens: 8, TotalTokens: 48}},
			{Event: &store.Event{Type: "chat.text", Agent: "A", Data: text}, Message: true},
			{Event: &store.Event{Type: "chat.input_request", Agent: "A", Data: small}},
			{Update: store.SessionUpdate{Status: &waiting, PendingKind: &kind, PendingID: &pending}},
		}
		if _, err := s.WriteBatch(ctx, "a", "c", ws); err != nil {
			b.Fatal(err)
		}
		cancel()
	}
	b.ReportMetric(float64(cpuNow()-c0)/float64(b.N)/1e3, "cpu-us/batch")
}

// cpuNow is the process's CPU time (user and system).
func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
