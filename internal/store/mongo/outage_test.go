package mongo_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/store"
	"github.com/mozaiks/mozaiks/internal/store/mongo"
	"github.com/mozaiks/mozaiks/internal/testutil/ferret"
)

func outageOptions() mongo.Options {
	o := mongoOptions()
	o.ServerSelectionTimeout = 500 * time.Millisecond
	return o
}

// allCalls exercises every store method once against chat c of app a.
func allCalls(s store.Store) map[string]error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st := store.StatusCompleted
	out := map[string]error{}
	out["Ping"] = s.Ping(ctx)
	_, _, out["CreateSession"] = s.CreateSession(ctx, store.Session{ChatID: "new", AppID: "a", UserID: "u", Workflow: "w", ClientRequestID: "r"})
	_, out["GetSession"] = s.GetSession(ctx, "a", "c")
	_, _, out["ListSessions"] = s.ListSessions(ctx, store.ListQuery{AppID: "a", UserID: "u", Limit: 5})
	out["UpdateSession"] = s.UpdateSession(ctx, "a", "c", store.SessionUpdate{Status: &st})
	_, out["FindPending"] = s.FindPending(ctx, "a", "p1")
	_, out["AppendEvent"] = s.AppendEvent(ctx, "a", "c", store.Event{Type: "x", Data: json.RawMessage(`{}`)}, true)
	_, out["ListEvents"] = s.ListEvents(ctx, "a", "c", 0, 10)
	out["RecordUsage"] = s.RecordUsage(ctx, store.UsageRecord{AppID: "a", ChatID: "c", TotalTokens: 1})
	_, out["AcquireLease"] = s.AcquireLease(ctx, "a", "c", "r1", time.Minute)
	_, out["RenewLease"] = s.RenewLease(ctx, "a", "c", "r1", time.Minute)
	seen := int64(0)
	out["UpdateSession if none after"] = s.UpdateSession(ctx, "a", "c", store.SessionUpdate{Status: &st, StatusUnlessAfter: &seen})
	out["ReleaseLease"] = s.ReleaseLease(ctx, "a", "c", "r1")
	return out
}

func assertUnavailable(t *testing.T, s store.Store) {
	t.Helper()
	start := time.Now()
	for name, err := range allCalls(s) {
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s with the server down: err = %v, want store.ErrUnavailable", name, err)
		}
	}
	t.Logf("13 calls failed in %v", time.Since(start))
}

// waitPing polls until the store reaches its server again (the driver
// notices a returning server on its own; nothing is reopened).
func waitPing(t *testing.T, s store.Store) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := s.Ping(context.Background())
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("store did not recover: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestServerDownThenBack(t *testing.T) {
	t.Parallel()
	srv := ferret.NewServer(t)
	s := openURI(t, srv.DB(t), outageOptions())
	newChat(t, s, "a", "c")
	srv.Stop()
	assertUnavailable(t, s)

	srv.Start(t)
	waitPing(t, s)
	for name, err := range allCalls(s) {
		if err != nil && !errors.Is(err, store.ErrNotFound) { // FindPending finds nothing
			t.Errorf("%s after recovery: %v", name, err)
		}
	}
	got, err := s.GetSession(context.Background(), "a", "c")
	if err != nil || got.Status != store.StatusCompleted || got.LastSeq != 1 || got.Usage.TotalTokens != 1 {
		t.Fatalf("after recovery: %+v, %v", got, err)
	}
}

func TestServerDownAtOpen(t *testing.T) {
	t.Parallel()
	addr, err := ferret.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	srv := &ferret.Server{Addr: addr, Dir: t.TempDir()}
	t.Cleanup(srv.Stop)
	s := openURI(t, "mongodb://"+addr+"/late", outageOptions())
	assertUnavailable(t, s)

	srv.Start(t)
	waitPing(t, s)
	// The indexes Open could not create exist now.
	cur, err := s.Client().Database("late").Collection(mongo.EventsCollection).Indexes().List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var specs []struct {
		Name string `bson:"name"`
	}
	if err := cur.All(context.Background(), &specs); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, sp := range specs {
		found = found || sp.Name == "chat_seq"
	}
	if !found {
		t.Fatalf("ChatEvents indexes after recovery = %v, want chat_seq", specs)
	}
	newChat(t, s, "a", "c")
	if ev, err := s.AppendEvent(context.Background(), "a", "c", store.Event{Type: "x"}, true); err != nil || ev.Seq != 1 {
		t.Fatalf("append after recovery: %+v %v", ev, err)
	}
}
