package mongo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/mozaiks/mozaiks/internal/store"
	"github.com/mozaiks/mozaiks/internal/store/sqlite"
	"github.com/mozaiks/mozaiks/internal/testutil/ferret"
)

// Each benchmark runs the Mongo store against in-process FerretDB v1
// (sub-benchmark "mongo-ferretdb") and, as the baseline of the same run, the
// embedded store ("embedded"). FerretDB's SQLite backend scans whole
// collections and is a test server: the numbers measure this code plus that
// server, not MongoDB.
var backends = []struct {
	name string
	open func(b *testing.B) store.Store
}{
	{"mongo-ferretdb", func(b *testing.B) store.Store { return openURI(b, ferret.DB(b), mongoOptions()) }},
	{"embedded", func(b *testing.B) store.Store {
		s, err := sqlite.Open(context.Background(), b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}},
}

func eachBackend(b *testing.B, fn func(b *testing.B, s store.Store)) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) { fn(b, be.open(b)) })
	}
}

func create(b *testing.B, s store.Store, chat string) {
	if _, _, err := s.CreateSession(context.Background(), store.Session{ChatID: chat, AppID: "a", UserID: "u", Workflow: "w"}); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkCreateSession(b *testing.B) {
	eachBackend(b, func(b *testing.B, s store.Store) {
		for i := 0; b.Loop(); i++ {
			create(b, s, fmt.Sprintf("c%d", i))
		}
	})
}

func BenchmarkGetSession(b *testing.B) {
	eachBackend(b, func(b *testing.B, s store.Store) {
		for i := range 100 {
			create(b, s, fmt.Sprintf("c%d", i))
		}
		ctx := context.Background()
		for i := 0; b.Loop(); i++ {
			if _, err := s.GetSession(ctx, "a", fmt.Sprintf("c%d", i%100)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkAppendEvent(b *testing.B) {
	data := json.RawMessage(`{"kind":"text","content":"hello, this is a message of typical length for a chat transcript"}`)
	eachBackend(b, func(b *testing.B, s store.Store) {
		create(b, s, "c")
		ctx := context.Background()
		for b.Loop() {
			if _, err := s.AppendEvent(ctx, "a", "c", store.Event{Type: "chat.text", Agent: "A", Data: data}, true); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkListEvents reads a page of 50 from a 200-event chat.
func BenchmarkListEvents(b *testing.B) {
	eachBackend(b, func(b *testing.B, s store.Store) {
		create(b, s, "c")
		ctx := context.Background()
		for range 200 {
			if _, err := s.AppendEvent(ctx, "a", "c", store.Event{Type: "chat.text", Data: json.RawMessage(`{"content":"x"}`)}, true); err != nil {
				b.Fatal(err)
			}
		}
		for b.Loop() {
			evs, err := s.ListEvents(ctx, "a", "c", 100, 50)
			if err != nil || len(evs) != 50 {
				b.Fatal(len(evs), err)
			}
		}
	})
}
