package mongo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mozaiks/mozaiks/internal/store"
	"github.com/mozaiks/mozaiks/internal/store/mongo"
	"github.com/mozaiks/mozaiks/internal/testutil/ferret"
)

// TestTranscriptBeyond16MB: a transcript is one document per event, so a
// chat holds more than MongoDB's 16 MB document limit and reads back whole.
func TestTranscriptBeyond16MB(t *testing.T) {
	t.Parallel()
	const n, size = 20, 1 << 20
	ctx := context.Background()
	s := openURI(t, ferret.DB(t), mongoOptions())
	if _, _, err := s.CreateSession(ctx, store.Session{ChatID: "c", AppID: "a", UserID: "u", Workflow: "w"}); err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("y", size)
	for i := 1; i <= n; i++ {
		data := json.RawMessage(fmt.Sprintf(`{"i":%d,"content":%q}`, i, pad))
		if _, err := s.AppendEvent(ctx, "a", "c", store.Event{Type: "chat.text", Data: data}, true); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	evs, err := s.ListEvents(ctx, "a", "c", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for i, ev := range evs {
		total += len(ev.Data)
		if ev.Seq != int64(i+1) || !strings.HasPrefix(string(ev.Data), fmt.Sprintf(`{"i":%d,`, i+1)) {
			t.Fatalf("event %d: seq %d, data %.20s", i, ev.Seq, ev.Data)
		}
	}
	if len(evs) != n || total <= 16<<20 {
		t.Fatalf("read %d events, %d bytes; want %d events over 16 MB", len(evs), total, n)
	}
}

// TestHundredThousandEvents: 100,000 events in one chat append and page.
// Opt-in (MOZAIKS_LARGE_TESTS=1): FerretDB v1 scans the whole collection and
// sorts in memory for every page, ~11 s per page here without -race, far
// more with it. AppendEvent takes ~3 ms on FerretDB, so the first 99,990
// events are written in bulk straight into ChatEvents, the way AppendEvent
// leaves them, and the last ones through AppendEvent.
func TestHundredThousandEvents(t *testing.T) {
	if os.Getenv("MOZAIKS_LARGE_TESTS") == "" {
		t.Skip("set MOZAIKS_LARGE_TESTS=1 to write and page 100,000 events (about a minute against FerretDB)")
	}
	t.Parallel()
	const total, tail = 100_000, 10
	ctx := context.Background()
	s := openURI(t, ferret.DB(t), mongoOptions())
	if _, _, err := s.CreateSession(ctx, store.Session{ChatID: "big", AppID: "a", UserID: "u", Workflow: "w"}); err != nil {
		t.Fatal(err)
	}
	// ~300 bytes per event: 30 MB of transcript, twice the document limit.
	pad := strings.Repeat("x", 250)
	events := s.Client().Database(s.Database()).Collection(mongo.EventsCollection)
	start := time.Now()
	ts := store.Now()
	const batch = 5000
	for from := 1; from <= total-tail; from += batch {
		var docs []any
		for seq := from; seq < from+batch && seq <= total-tail; seq++ {
			docs = append(docs, bson.D{
				{Key: "chat_id", Value: "big"}, {Key: "app_id", Value: "a"}, {Key: "seq", Value: int64(seq)},
				{Key: "type", Value: "chat.text"}, {Key: "agent", Value: "A"},
				{Key: "data", Value: fmt.Sprintf(`{"n":%d,"pad":%q}`, seq, pad)}, {Key: "timestamp", Value: ts},
			})
		}
		if _, err := events.InsertMany(ctx, docs); err != nil {
			t.Fatal(err)
		}
	}
	sessions := s.Client().Database(s.Database()).Collection(mongo.SessionsCollection)
	if _, err := sessions.UpdateOne(ctx, bson.D{{Key: "_id", Value: "big"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "last_sequence", Value: int64(total - tail)}}}}); err != nil {
		t.Fatal(err)
	}
	t.Logf("bulk insert of %d events: %v", total-tail, time.Since(start))
	for i := total - tail + 1; i <= total; i++ {
		ev, err := s.AppendEvent(ctx, "a", "big", store.Event{Type: "chat.text", Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))}, true)
		if err != nil || ev.Seq != int64(i) {
			t.Fatalf("AppendEvent #%d: seq %d, %v", i, ev.Seq, err)
		}
	}
	// Pages from the start, the middle and the end; FerretDB scans the
	// collection for each page, so walking all 100 pages would cost minutes.
	start = time.Now()
	for _, after := range []int64{0, total / 2, total - 1000, total - 5} {
		evs, err := s.ListEvents(ctx, "a", "big", after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		want := min(1000, total-int(after))
		if len(evs) != want || evs[0].Seq != after+1 || evs[len(evs)-1].Seq != after+int64(want) {
			t.Fatalf("ListEvents(after %d): %d events, first %d", after, len(evs), evs[0].Seq)
		}
		var d struct{ N int64 }
		if err := json.Unmarshal(evs[0].Data, &d); err != nil || d.N != after+1 {
			t.Fatalf("event %d data %s", evs[0].Seq, evs[0].Data)
		}
	}
	t.Logf("4 pages of 1000 over %d events: %v", total, time.Since(start))
	n, err := events.CountDocuments(ctx, bson.D{{Key: "chat_id", Value: "big"}})
	if err != nil || n != total {
		t.Fatalf("%d events stored, want %d (%v)", n, total, err)
	}
	got, err := s.GetSession(ctx, "a", "big")
	if err != nil || got.LastSeq != total {
		t.Fatalf("session last_seq = %d, want %d (%v)", got.LastSeq, total, err)
	}
}
