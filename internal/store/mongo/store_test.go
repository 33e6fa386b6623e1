package mongo_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mozaiks/mozaiks/internal/store"
	"github.com/mozaiks/mozaiks/internal/store/mongo"
	"github.com/mozaiks/mozaiks/internal/testutil/ferret"
)

func newChat(t *testing.T, s store.Store, app, chat string) {
	t.Helper()
	if _, _, err := s.CreateSession(context.Background(), store.Session{ChatID: chat, AppID: app, UserID: "u", Workflow: "w"}); err != nil {
		t.Fatal(err)
	}
}

func TestAppendConcurrentEightWriters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openURI(t, ferret.DB(t), mongoOptions())
	newChat(t, s, "a", "c")
	const writers, each = 8, 10
	var mu sync.Mutex
	var got []int64
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				ev, err := s.AppendEvent(ctx, "a", "c", store.Event{Type: "chat.text", Data: json.RawMessage(fmt.Sprintf(`{"w":%d,"i":%d}`, w, i))}, true)
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				mu.Lock()
				got = append(got, ev.Seq)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	// The seqs handed back, and the seqs stored, are 1..N exactly once.
	slices.Sort(got)
	evs, err := s.ListEvents(ctx, "a", "c", 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != writers*each || len(evs) != writers*each {
		t.Fatalf("returned %d seqs, stored %d events; want %d", len(got), len(evs), writers*each)
	}
	seen := map[string]bool{}
	for i := range got {
		if got[i] != int64(i+1) || evs[i].Seq != int64(i+1) {
			t.Fatalf("position %d: returned seq %d, stored seq %d", i, got[i], evs[i].Seq)
		}
		seen[string(evs[i].Data)] = true
	}
	if len(seen) != writers*each {
		t.Fatalf("%d distinct payloads stored, want %d: an event was stored twice", len(seen), writers*each)
	}
	sess, err := s.GetSession(ctx, "a", "c")
	if err != nil || sess.LastSeq != writers*each || sess.MessageCount != writers*each {
		t.Fatalf("session last_seq %d, message_count %d (%v); want %d", sess.LastSeq, sess.MessageCount, err, writers*each)
	}
}

func TestJSONExactRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openURI(t, ferret.DB(t), mongoOptions())
	newChat(t, s, "a", "c")
	// What a BSON-document encoding would change: a big integer, 1.0, key
	// order, whitespace, and keys MongoDB/FerretDB refuse as field names.
	raw := json.RawMessage(`{"z":1, "big":123456789012345678901234567890,"f":1.0,"$op":{"a.b":-0},"arr":[ ]}`)
	if err := s.UpdateSession(ctx, "a", "c", store.SessionUpdate{State: raw, LastArtifact: raw}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendEvent(ctx, "a", "c", store.Event{Type: "x", Data: raw}, false); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetSession(ctx, "a", "c")
	if err != nil {
		t.Fatal(err)
	}
	evs, err := s.ListEvents(ctx, "a", "c", 0, 10)
	if err != nil || len(evs) != 1 {
		t.Fatalf("ListEvents: %v %v", evs, err)
	}
	for name, b := range map[string]json.RawMessage{"state": got.State, "last_artifact": got.LastArtifact, "event data": evs[0].Data} {
		if string(b) != string(raw) {
			t.Errorf("%s = %s, want exactly %s", name, b, raw)
		}
	}
	// Absent JSON stays absent (nil), not "null" or "".
	newChat(t, s, "a", "empty")
	if e, _ := s.GetSession(ctx, "a", "empty"); e.State != nil || e.LastArtifact != nil {
		t.Fatalf("fresh session: state %q artifact %q, want nil", e.State, e.LastArtifact)
	}
}

// An append whose seq was taken but whose insert has not landed yet must not
// be skipped by a reader; one that never lands must not block readers forever.
func TestListEventsHoldsAtRecentGap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openURI(t, ferret.DB(t), mongoOptions())
	newChat(t, s, "a", "c")
	for range 2 {
		if _, err := s.AppendEvent(ctx, "a", "c", store.Event{Type: "x"}, false); err != nil {
			t.Fatal(err)
		}
	}
	// Seq 3 is taken by an append "in flight".
	sessions := s.Client().Database(s.Database()).Collection(mongo.SessionsCollection)
	if _, err := sessions.UpdateOne(ctx, bson.D{{Key: "_id", Value: "c"}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "last_sequence", Value: 1}}}}); err != nil {
		t.Fatal(err)
	}
	if ev, err := s.AppendEvent(ctx, "a", "c", store.Event{Type: "x"}, false); err != nil || ev.Seq != 4 {
		t.Fatalf("append: seq %d, %v", ev.Seq, err)
	}
	evs, err := s.ListEvents(ctx, "a", "c", 0, 10)
	if err != nil || len(evs) != 2 || evs[1].Seq != 2 {
		t.Fatalf("recent gap at 3: got seqs %v (%v), want [1 2]", seqsOf(evs), err)
	}
	// A lost seq: the event after it is old, so the gap is skipped.
	if _, err := sessions.UpdateOne(ctx, bson.D{{Key: "_id", Value: "c"}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "last_sequence", Value: 1}}}}); err != nil {
		t.Fatal(err)
	}
	old := store.Now().Add(-time.Minute)
	if ev, err := s.AppendEvent(ctx, "a", "c", store.Event{Type: "x", Timestamp: old}, false); err != nil || ev.Seq != 6 {
		t.Fatalf("append: seq %d, %v", ev.Seq, err)
	}
	evs, err = s.ListEvents(ctx, "a", "c", 4, 10)
	if err != nil || len(evs) != 1 || evs[0].Seq != 6 {
		t.Fatalf("old gap at 5: got seqs %v (%v), want [6]", seqsOf(evs), err)
	}
}

func seqsOf(evs []store.Event) []int64 {
	var out []int64
	for _, e := range evs {
		out = append(out, e.Seq)
	}
	return out
}

func TestIndexesIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	uri := ferret.DB(t)
	s1 := openURI(t, uri, mongoOptions())
	s2 := openURI(t, uri, mongoOptions())
	if err := s2.EnsureIndexes(ctx); err != nil {
		t.Fatalf("third EnsureIndexes: %v", err)
	}
	want := map[string][]string{
		mongo.SessionsCollection: {"_id_", "by_pending", "by_status", "by_user_newest"},
		mongo.EventsCollection:   {"_id_", "chat_seq"},
		mongo.UsageCollection:    {"_id_", "by_chat"},
	}
	for coll, names := range want {
		cur, err := s1.Client().Database(s1.Database()).Collection(coll).Indexes().List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var specs []struct {
			Name   string `bson:"name"`
			Unique bool   `bson:"unique"`
		}
		if err := cur.All(ctx, &specs); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, sp := range specs {
			got = append(got, sp.Name)
			if sp.Name == "chat_seq" && !sp.Unique {
				t.Errorf("chat_seq is not unique")
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, names) {
			t.Errorf("%s indexes = %v, want %v", coll, got, names)
		}
	}
	// The unique index is real: a second event with a taken seq is refused.
	events := s1.Client().Database(s1.Database()).Collection(mongo.EventsCollection)
	doc := bson.D{{Key: "chat_id", Value: "c"}, {Key: "seq", Value: int64(1)}}
	if _, err := events.InsertOne(ctx, doc); err != nil {
		t.Fatal(err)
	}
	if _, err := events.InsertOne(ctx, doc); err == nil {
		t.Fatal("duplicate (chat_id, seq) accepted")
	}
}

func TestDatabaseName(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1: Open still succeeds (degraded).
	opts := mongoOptions()
	opts.ServerSelectionTimeout = 100 * time.Millisecond
	for uri, want := range map[string]string{
		"mongodb://127.0.0.1:1":                "MozaiksAI",
		"mongodb://127.0.0.1:1/":               "MozaiksAI",
		"mongodb://127.0.0.1:1/tenant_x?w=1":   "tenant_x",
		"mongodb://u:p@127.0.0.1:1/prod_db":    "prod_db",
		"mongodb://127.0.0.1:1/ignored?w=1&x=": "",
	} {
		if want == "" {
			continue
		}
		if got := openURI(t, uri, opts).Database(); got != want {
			t.Errorf("Open(%s).Database() = %q, want %q", uri, got, want)
		}
	}
	o := opts
	o.Database = "override"
	if got := openURI(t, "mongodb://127.0.0.1:1/fromuri", o).Database(); got != "override" {
		t.Errorf("Options.Database ignored: %q", got)
	}
}

func TestOpenBadURI(t *testing.T) {
	t.Parallel()
	for _, uri := range []string{"http://localhost:27017", "mongodb://", "not a uri", "mongodb://h:99999999/"} {
		s, err := mongo.Open(context.Background(), uri, mongoOptions())
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", uri)
			continue
		}
		if errors.Is(err, store.ErrUnavailable) {
			t.Errorf("Open(%q) = %v: a bad URI is a configuration error, not an outage", uri, err)
		}
	}
}

// takeSeq takes the chat's next seq as a writer does before its insert.
func takeSeq(t *testing.T, s *mongo.Store, chatID string) {
	t.Helper()
	sessions := s.Client().Database(s.Database()).Collection(mongo.SessionsCollection)
	if _, err := sessions.UpdateOne(context.Background(), bson.D{{Key: "_id", Value: chatID}},
		bson.D{{Key: "$inc", Value: bson.D{{Key: "last_sequence", Value: 1}}}}); err != nil {
		t.Fatal(err)
	}
}

// A missing seq whose next event is older than the grace is marked lost,
// not skipped: an insert still in flight under it then fails (its writer
// takes another seq) instead of landing behind readers that passed it. One
// that landed first is read.
func TestStaleGapMarkedLost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openURI(t, ferret.DB(t), mongoOptions())
	newChat(t, s, "a", "c")
	if _, err := s.AppendEvent(ctx, "a", "c", store.Event{Type: "x"}, false); err != nil {
		t.Fatal(err)
	}
	takeSeq(t, s, "c") // seq 2, by a writer that stalls
	if _, err := s.AppendEvent(ctx, "a", "c", store.Event{Type: "x", Timestamp: time.Now().Add(-time.Minute)}, false); err != nil {
		t.Fatal(err) // seq 3, stored long ago
	}
	evs, err := s.ListEvents(ctx, "a", "c", 0, 10)
	if err != nil || fmt.Sprint(seqsOf(evs)) != "[1 3]" {
		t.Fatalf("ListEvents = %v, %v; want [1 3]", seqsOf(evs), err)
	}
	// The stalled writer's insert now finds its seq taken.
	_, err = s.Client().Database(s.Database()).Collection(mongo.EventsCollection).InsertOne(ctx, bson.D{{Key: "chat_id", Value: "c"}, {Key: "app_id", Value: "a"},
		{Key: "seq", Value: int64(2)}, {Key: "type", Value: "late"}})
	if !mongodrv.IsDuplicateKeyError(err) {
		t.Fatalf("insert under the marked seq: %v, want a duplicate key", err)
	}

	// An event that lands between a reader's find and its mark is read.
	if _, err := s.AppendEvent(ctx, "a", "c", store.Event{Type: "landed"}, false); err != nil {
		t.Fatal(err) // seq 4
	}
	landed, err := s.MarkLost(ctx, "a", "c", 4, 5)
	if err != nil || len(landed) != 1 || landed[0].Seq != 4 || landed[0].Type != "landed" {
		t.Fatalf("MarkLost = %v, %v; want the event at seq 4", landed, err)
	}
	if _, err := s.AppendEvent(ctx, "a", "c", store.Event{Type: "next"}, false); err != nil {
		t.Fatal(err) // seq 5 is marked: the append takes 6
	}
	evs, _ = s.ListEvents(ctx, "a", "c", 0, 10)
	if got := fmt.Sprint(seqsOf(evs)); got != "[1 3 4 6]" {
		t.Fatalf("seqs = %s, want [1 3 4 6]", got)
	}
}

// A seq a dead process took and never stored is filled by the recovering
// process: readers stop waiting for it at once and never see the filler.
func TestFillGaps(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openURI(t, ferret.DB(t), mongoOptions())
	newChat(t, s, "a", "c")
	if _, err := s.AppendEvent(ctx, "a", "c", store.Event{Type: "x"}, false); err != nil {
		t.Fatal(err)
	}
	takeSeq(t, s, "c") // seq 2, never stored
	if _, err := s.AppendEvent(ctx, "a", "c", store.Event{Type: "x"}, false); err != nil {
		t.Fatal(err)
	}
	if evs, _ := s.ListEvents(ctx, "a", "c", 0, 10); len(evs) != 1 {
		t.Fatalf("before filling, a recent gap holds readers at seq 1: got %v", seqsOf(evs))
	}
	if n, err := s.FillGaps(ctx, "a", "c", 3); err != nil || n != 1 {
		t.Fatalf("FillGaps = %d, %v; want 1", n, err)
	}
	evs, err := s.ListEvents(ctx, "a", "c", 0, 10)
	if err != nil || len(evs) != 2 || evs[0].Seq != 1 || evs[1].Seq != 3 {
		t.Fatalf("after filling: seqs %v (%v), want [1 3] at once", seqsOf(evs), err)
	}
	if n, _ := s.FillGaps(ctx, "a", "c", 3); n != 0 {
		t.Fatalf("a second FillGaps filled %d", n)
	}
}
