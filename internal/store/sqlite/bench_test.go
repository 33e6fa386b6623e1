package sqlite_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/mozaiks/mozaiks/internal/store"
	"github.com/mozaiks/mozaiks/internal/store/sqlite"
)

// The embedded store's side of the store benchmarks; internal/store/mongo
// has the same names, so the two runs compare line by line:
//
//	go test -run '^$' -bench . -benchmem ./internal/store/sqlite/ ./internal/store/mongo/

func openBench(b *testing.B) *sqlite.Store {
	b.Helper()
	s, err := sqlite.Open(context.Background(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func createBench(b *testing.B, s store.Store, chat string) {
	b.Helper()
	if _, _, err := s.CreateSession(context.Background(), store.Session{ChatID: chat, AppID: "a", UserID: "u", Workflow: "w"}); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkCreateSession(b *testing.B) {
	s := openBench(b)
	for i := 0; b.Loop(); i++ {
		createBench(b, s, fmt.Sprintf("c%d", i))
	}
}

func BenchmarkGetSession(b *testing.B) {
	s := openBench(b)
	for i := range 100 {
		createBench(b, s, fmt.Sprintf("c%d", i))
	}
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		if _, err := s.GetSession(ctx, "a", fmt.Sprintf("c%d", i%100)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendEvent(b *testing.B) {
	data := json.RawMessage(`{"kind":"text","content":"hello, this is a message of typical length for a chat transcript"}`)
	s := openBench(b)
	createBench(b, s, "c")
	ctx := context.Background()
	for b.Loop() {
		if _, err := s.AppendEvent(ctx, "a", "c", store.Event{Type: "chat.text", Agent: "A", Data: data}, true); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkListEvents reads pages of 100 spread over a 100,000-event chat, so
// the cost of seeking deep into a long transcript shows.
func BenchmarkListEvents(b *testing.B) {
	const total, page = 100_000, 100
	s := openBench(b)
	createBench(b, s, "c")
	ctx := context.Background()
	if err := s.SeedEvents(ctx, "a", "c", total); err != nil {
		b.Fatal(err)
	}
	for i := 0; b.Loop(); i++ {
		after := int64(i*7919) % (total - page)
		evs, err := s.ListEvents(ctx, "a", "c", after, page)
		if err != nil || len(evs) != page || evs[0].Seq != after+1 {
			b.Fatalf("page after %d: %d events, %v", after, len(evs), err)
		}
	}
}
