package mongo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/mozaiks/mozaiks/internal/store"
	"github.com/mozaiks/mozaiks/internal/testutil/ferret"
)

// The benchmarks run the Mongo store against in-process FerretDB v1 (SQLite
// backend, whole-collection scans): they measure this code plus a test
// server, not MongoDB. Names match the embedded store's benchmarks so the two
// can be compared side by side.

func benchStore(b *testing.B) store.Store {
	b.Helper()
	return openURI(b, ferret.DB(b), mongoOptions())
}

func BenchmarkCreateSession(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, _, err := s.CreateSession(ctx, store.Session{ChatID: fmt.Sprintf("c%d", i), AppID: "a", UserID: "u", Workflow: "w"}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetSession(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	for i := range 100 {
		if _, _, err := s.CreateSession(ctx, store.Session{ChatID: fmt.Sprintf("c%d", i), AppID: "a", UserID: "u", Workflow: "w"}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := s.GetSession(ctx, "a", fmt.Sprintf("c%d", i%100)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendEvent(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	if _, _, err := s.CreateSession(ctx, store.Session{ChatID: "c", AppID: "a", UserID: "u", Workflow: "w"}); err != nil {
		b.Fatal(err)
	}
	data := json.RawMessage(`{"kind":"text","content":"hello, this is a message of typical length for a chat transcript"}`)
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.AppendEvent(ctx, "a", "c", store.Event{Type: "chat.text", Agent: "A", Data: data}, true); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkListEvents(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	if _, _, err := s.CreateSession(ctx, store.Session{ChatID: "c", AppID: "a", UserID: "u", Workflow: "w"}); err != nil {
		b.Fatal(err)
	}
	for range 200 {
		if _, err := s.AppendEvent(ctx, "a", "c", store.Event{Type: "chat.text", Data: json.RawMessage(`{"content":"x"}`)}, true); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		evs, err := s.ListEvents(ctx, "a", "c", 100, 50)
		if err != nil || len(evs) != 50 {
			b.Fatal(len(evs), err)
		}
	}
}
