// Package storetest is the conformance suite every store.Store implementation
// passes: the same behaviour on MongoDB and on the embedded store.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/store"
)

// Opener returns a fresh, empty store for one test.
type Opener func(t *testing.T) store.Store

// Run runs the whole suite.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"CreateGet", testCreateGet},
		{"CreateExistingChatID", testCreateExisting},
		{"ClientRequestIDIdempotent", testIdempotent},
		{"AppScoping", testAppScoping},
		{"ListNewestFirstPaging", testListPaging},
		{"ListFilters", testListFilters},
		{"ListBadCursor", testListBadCursor},
		{"UpdateSession", testUpdate},
		{"FindPending", testFindPending},
		{"AppendEventsSeq", testAppendSeq},
		{"AppendConcurrent", testAppendConcurrent},
		{"AppendUnknownChat", testAppendUnknown},
		{"ListEventsPaging", testListEvents},
		{"EventDataRoundTrip", testEventData},
		{"RecordUsage", testUsage},
		{"Lease", testLease},
		{"RenewLease", testRenewLease},
		{"AppendEventUpdate", testAppendUpdate},
		{"ListUnfinished", testListUnfinished},
		{"WriteBatch", testWriteBatch},
		{"Fence", testFence},
		{"StatusUnlessAfter", testStatusUnlessAfter},
		{"Ping", func(t *testing.T, s store.Store) {
			if err := s.Ping(context.Background()); err != nil {
				t.Fatalf("Ping: %v", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func newSession(app, user, chat string) store.Session {
	return store.Session{ChatID: chat, AppID: app, UserID: user, Workflow: "assistant", Status: store.StatusInProgress}
}

func mustCreate(t *testing.T, s store.Store, sess store.Session) store.Session {
	t.Helper()
	got, created, err := s.CreateSession(ctx(t), sess)
	if err != nil {
		t.Fatalf("CreateSession(%s): %v", sess.ChatID, err)
	}
	if !created {
		t.Fatalf("CreateSession(%s): created=false for a new session", sess.ChatID)
	}
	return got
}

func testCreateGet(t *testing.T, s store.Store) {
	before := store.Now()
	created := mustCreate(t, s, newSession("a1", "u1", "c1"))
	if created.CreatedAt.Before(before) || created.UpdatedAt.IsZero() {
		t.Fatalf("timestamps not set: %+v", created)
	}
	got, err := s.GetSession(ctx(t), "a1", "c1")
	if err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	if got.ChatID != "c1" || got.AppID != "a1" || got.UserID != "u1" || got.Workflow != "assistant" ||
		got.Status != store.StatusInProgress || got.LastSeq != 0 || got.MessageCount != 0 {
		t.Fatalf("GetSession = %+v", got)
	}
	if !got.CreatedAt.Equal(created.CreatedAt) {
		t.Fatalf("CreatedAt %v != %v", got.CreatedAt, created.CreatedAt)
	}
	if _, err := s.GetSession(ctx(t), "a1", "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetSession(missing) err = %v, want ErrNotFound", err)
	}
}

func testCreateExisting(t *testing.T, s store.Store) {
	mustCreate(t, s, newSession("a1", "u1", "c1"))
	other := newSession("a1", "u2", "c1")
	got, created, err := s.CreateSession(ctx(t), other)
	if err != nil {
		t.Fatalf("CreateSession(existing): %v", err)
	}
	if created || got.UserID != "u1" {
		t.Fatalf("existing chat: created=%v owner=%s, want false/u1", created, got.UserID)
	}
	if _, _, err := s.CreateSession(ctx(t), newSession("a2", "u1", "c1")); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("chat id of another app: err = %v, want ErrConflict", err)
	}
}

func testIdempotent(t *testing.T, s store.Store) {
	a := newSession("a1", "u1", "c1")
	a.ClientRequestID = "req-1"
	first := mustCreate(t, s, a)
	b := newSession("a1", "u1", "c2")
	b.ClientRequestID = "req-1"
	again, created, err := s.CreateSession(ctx(t), b)
	if err != nil {
		t.Fatal(err)
	}
	if created || again.ChatID != first.ChatID {
		t.Fatalf("same client_request_id: created=%v chat=%s, want false/%s", created, again.ChatID, first.ChatID)
	}
	// Another user with the same request id gets their own session.
	c := newSession("a1", "u2", "c3")
	c.ClientRequestID = "req-1"
	mustCreate(t, s, c)
	// So does the same user reusing it for another workflow: the key is
	// bound to the request's workflow, never answered with another's chat.
	w := newSession("a1", "u1", "c4")
	w.Workflow, w.ClientRequestID = first.Workflow+"-other", "req-1"
	other, created, err := s.CreateSession(ctx(t), w)
	if err != nil || !created || other.ChatID != "c4" || other.Workflow != w.Workflow {
		t.Fatalf("same client_request_id, another workflow: created=%v chat=%s workflow=%s err=%v, want a new c4",
			created, other.ChatID, other.Workflow, err)
	}
	// and the first workflow still gets its own session back.
	if again, created, err := s.CreateSession(ctx(t), b); err != nil || created || again.ChatID != first.ChatID {
		t.Fatalf("after another workflow used the key: created=%v chat=%s err=%v", created, again.ChatID, err)
	}
	// Concurrent double submits produce one session.
	var wg sync.WaitGroup
	ids := make([]string, 6)
	for i := range ids {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			d := newSession("a1", "u3", fmt.Sprintf("race-%d", i))
			d.ClientRequestID = "req-race"
			got, _, err := s.CreateSession(context.Background(), d)
			if err != nil {
				t.Errorf("concurrent create: %v", err)
				return
			}
			ids[i] = got.ChatID
		}(i)
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("concurrent creates with one client_request_id gave %v", ids)
		}
	}
}

func testAppScoping(t *testing.T, s store.Store) {
	mustCreate(t, s, newSession("a1", "u1", "c1"))
	if _, err := s.GetSession(ctx(t), "a2", "c1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("other app sees the chat: %v", err)
	}
	if _, err := s.AppendEvent(ctx(t), "a2", "c1", store.Event{Type: "chat.text", Data: json.RawMessage(`{}`)}, true); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("other app appends: %v", err)
	}
	evs, err := s.ListEvents(ctx(t), "a2", "c1", 0, 10)
	if err != nil || len(evs) != 0 {
		t.Fatalf("other app lists events: %v %v", evs, err)
	}
	list, _, err := s.ListSessions(ctx(t), store.ListQuery{AppID: "a2", UserID: "u1", Limit: 10})
	if err != nil || len(list) != 0 {
		t.Fatalf("other app lists sessions: %v %v", list, err)
	}
}

func testListPaging(t *testing.T, s store.Store) {
	for i := 0; i < 7; i++ {
		mustCreate(t, s, newSession("a1", "u1", fmt.Sprintf("c%d", i)))
		time.Sleep(3 * time.Millisecond) // distinct created_at
	}
	mustCreate(t, s, newSession("a1", "u2", "other-user"))
	var seen []string
	cursor := ""
	for page := 0; page < 10; page++ {
		list, next, err := s.ListSessions(ctx(t), store.ListQuery{AppID: "a1", UserID: "u1", Limit: 3, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range list {
			seen = append(seen, x.ChatID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	want := []string{"c6", "c5", "c4", "c3", "c2", "c1", "c0"}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("pages = %v, want %v", seen, want)
	}
}

func testListFilters(t *testing.T, s store.Store) {
	mustCreate(t, s, newSession("a1", "u1", "c1"))
	x := newSession("a1", "u1", "c2")
	x.Workflow = "triage"
	mustCreate(t, s, x)
	done := store.StatusCompleted
	if err := s.UpdateSession(ctx(t), "a1", "c1", store.SessionUpdate{Status: &done}); err != nil {
		t.Fatal(err)
	}
	list, _, err := s.ListSessions(ctx(t), store.ListQuery{AppID: "a1", UserID: "u1", Status: store.StatusCompleted, Limit: 10})
	if err != nil || len(list) != 1 || list[0].ChatID != "c1" {
		t.Fatalf("status filter: %v %v", list, err)
	}
	list, _, err = s.ListSessions(ctx(t), store.ListQuery{AppID: "a1", UserID: "u1", Workflow: "triage", Limit: 10})
	if err != nil || len(list) != 1 || list[0].ChatID != "c2" {
		t.Fatalf("workflow filter: %v %v", list, err)
	}
}

func testListBadCursor(t *testing.T, s store.Store) {
	_, _, err := s.ListSessions(ctx(t), store.ListQuery{AppID: "a1", UserID: "u1", Limit: 3, Cursor: "!!not-a-cursor"})
	if !errors.Is(err, store.ErrBadCursor) {
		t.Fatalf("bad cursor err = %v, want ErrBadCursor", err)
	}
}

func testUpdate(t *testing.T, s store.Store) {
	c := mustCreate(t, s, newSession("a1", "u1", "c1"))
	time.Sleep(2 * time.Millisecond)
	st := store.StatusAwaitingInput
	state := json.RawMessage(`{"current_agent":"Planner","context":{"n":1,"ok":true}}`)
	art := json.RawMessage(`{"component":"Approve","payload":{"x":[1,2]}}`)
	if err := s.UpdateSession(ctx(t), "a1", "c1", store.SessionUpdate{Status: &st, State: state, LastArtifact: art}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetSession(ctx(t), "a1", "c1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != st || !got.UpdatedAt.After(c.UpdatedAt) {
		t.Fatalf("after update: status=%s updated=%v (was %v)", got.Status, got.UpdatedAt, c.UpdatedAt)
	}
	assertJSONEqual(t, "state", got.State, state)
	assertJSONEqual(t, "last_artifact", got.LastArtifact, art)
	// A partial update leaves the rest alone.
	done := store.StatusCompleted
	if err := s.UpdateSession(ctx(t), "a1", "c1", store.SessionUpdate{Status: &done}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetSession(ctx(t), "a1", "c1")
	assertJSONEqual(t, "state kept", got.State, state)
	if err := s.UpdateSession(ctx(t), "a1", "missing", store.SessionUpdate{Status: &done}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update missing: %v", err)
	}
}

func testFindPending(t *testing.T, s store.Store) {
	mustCreate(t, s, newSession("a1", "u1", "c1"))
	mustCreate(t, s, newSession("a1", "u1", "c2"))
	kind, id := "input", "req_123"
	if err := s.UpdateSession(ctx(t), "a1", "c2", store.SessionUpdate{PendingKind: &kind, PendingID: &id}); err != nil {
		t.Fatal(err)
	}
	got, err := s.FindPending(ctx(t), "a1", "req_123")
	if err != nil || got.ChatID != "c2" || got.PendingKind != "input" {
		t.Fatalf("FindPending = %+v, %v", got, err)
	}
	if _, err := s.FindPending(ctx(t), "a2", "req_123"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("FindPending other app: %v", err)
	}
	empty := ""
	if err := s.UpdateSession(ctx(t), "a1", "c2", store.SessionUpdate{PendingKind: &empty, PendingID: &empty}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FindPending(ctx(t), "a1", "req_123"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("FindPending after clear: %v", err)
	}
}

func testAppendSeq(t *testing.T, s store.Store) {
	mustCreate(t, s, newSession("a1", "u1", "c1"))
	for i := 1; i <= 5; i++ {
		ev, err := s.AppendEvent(ctx(t), "a1", "c1", store.Event{Type: "chat.text", Agent: "A", Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))}, i%2 == 1)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Seq != int64(i) || ev.ChatID != "c1" || ev.Timestamp.IsZero() {
			t.Fatalf("append %d: %+v", i, ev)
		}
	}
	got, _ := s.GetSession(ctx(t), "a1", "c1")
	if got.LastSeq != 5 || got.MessageCount != 3 {
		t.Fatalf("last_seq=%d message_count=%d, want 5/3", got.LastSeq, got.MessageCount)
	}
}

func testAppendConcurrent(t *testing.T, s store.Store) {
	mustCreate(t, s, newSession("a1", "u1", "c1"))
	const workers, each = 8, 15
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := s.AppendEvent(context.Background(), "a1", "c1", store.Event{Type: "chat.text", Data: json.RawMessage(`{}`)}, true); err != nil {
					t.Errorf("append: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	evs, err := s.ListEvents(ctx(t), "a1", "c1", 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != workers*each {
		t.Fatalf("%d events, want %d", len(evs), workers*each)
	}
	for i, ev := range evs {
		if ev.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d: seqs must be 1..N exactly once", i, ev.Seq)
		}
	}
}

func testAppendUnknown(t *testing.T, s store.Store) {
	_, err := s.AppendEvent(ctx(t), "a1", "nope", store.Event{Type: "chat.text", Data: json.RawMessage(`{}`)}, true)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("append to missing chat: %v", err)
	}
}

func testListEvents(t *testing.T, s store.Store) {
	mustCreate(t, s, newSession("a1", "u1", "c1"))
	mustCreate(t, s, newSession("a1", "u1", "c2"))
	for i := 0; i < 10; i++ {
		if _, err := s.AppendEvent(ctx(t), "a1", "c1", store.Event{Type: "chat.text", Data: json.RawMessage(`{}`)}, true); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.AppendEvent(ctx(t), "a1", "c2", store.Event{Type: "chat.text", Data: json.RawMessage(`{}`)}, true); err != nil {
		t.Fatal(err)
	}
	evs, err := s.ListEvents(ctx(t), "a1", "c1", 4, 3)
	if err != nil || len(evs) != 3 || evs[0].Seq != 5 || evs[2].Seq != 7 {
		t.Fatalf("ListEvents(after 4, limit 3) = %v, %v", seqs(evs), err)
	}
	evs, _ = s.ListEvents(ctx(t), "a1", "c1", 10, 5)
	if len(evs) != 0 {
		t.Fatalf("after last seq: %v", seqs(evs))
	}
	evs, _ = s.ListEvents(ctx(t), "a1", "c2", 0, 50)
	if len(evs) != 1 || evs[0].ChatID != "c2" {
		t.Fatalf("events of c2 = %+v", evs)
	}
}

func testEventData(t *testing.T, s store.Store) {
	mustCreate(t, s, newSession("a1", "u1", "c1"))
	data := json.RawMessage(`{"kind":"text","content":"héllo \"x\" 😀","n":12345678901,"f":1.5,"nested":{"a":[1,"b",null,true]},"empty":{}}`)
	in := store.Event{Type: "chat.text", Agent: "Planner", Data: data}
	if _, err := s.AppendEvent(ctx(t), "a1", "c1", in, true); err != nil {
		t.Fatal(err)
	}
	evs, err := s.ListEvents(ctx(t), "a1", "c1", 0, 10)
	if err != nil || len(evs) != 1 {
		t.Fatalf("ListEvents: %v %v", evs, err)
	}
	if evs[0].Type != "chat.text" || evs[0].Agent != "Planner" {
		t.Fatalf("event = %+v", evs[0])
	}
	assertJSONEqual(t, "data", evs[0].Data, data)
}

func testUsage(t *testing.T, s store.Store) {
	mustCreate(t, s, newSession("a1", "u1", "c1"))
	for i := 0; i < 3; i++ {
		err := s.RecordUsage(ctx(t), store.UsageRecord{AppID: "a1", UserID: "u1", ChatID: "c1", Workflow: "assistant",
			Agent: "A", Model: "m", PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15, CostUSD: 0.25, Duration: time.Second})
		if err != nil {
			t.Fatal(err)
		}
	}
	got, _ := s.GetSession(ctx(t), "a1", "c1")
	want := store.Usage{PromptTokens: 30, CompletionTokens: 15, TotalTokens: 45, CostUSD: 0.75}
	if got.Usage != want {
		t.Fatalf("usage = %+v, want %+v", got.Usage, want)
	}
	if err := s.RecordUsage(ctx(t), store.UsageRecord{AppID: "a1", ChatID: "missing", TotalTokens: 1}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("usage for missing chat: %v", err)
	}
}

func testLease(t *testing.T, s store.Store) {
	mustCreate(t, s, newSession("a1", "u1", "c1"))
	ok, err := s.AcquireLease(ctx(t), "a1", "c1", "r1", time.Minute)
	if err != nil || !ok {
		t.Fatalf("first acquire: %v %v", ok, err)
	}
	if ok, _ := s.AcquireLease(ctx(t), "a1", "c1", "r2", time.Minute); ok {
		t.Fatal("second owner acquired a held lease")
	}
	if ok, _ := s.AcquireLease(ctx(t), "a1", "c1", "r1", time.Minute); !ok {
		t.Fatal("owner could not renew its lease")
	}
	if err := s.ReleaseLease(ctx(t), "a1", "c1", "r2"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.AcquireLease(ctx(t), "a1", "c1", "r2", time.Minute); ok {
		t.Fatal("release by a non-owner freed the lease")
	}
	if err := s.ReleaseLease(ctx(t), "a1", "c1", "r1"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.AcquireLease(ctx(t), "a1", "c1", "r2", 50*time.Millisecond); !ok {
		t.Fatal("lease not free after release")
	}
	time.Sleep(120 * time.Millisecond)
	if ok, _ := s.AcquireLease(ctx(t), "a1", "c1", "r3", time.Minute); !ok {
		t.Fatal("expired lease not taken over")
	}
	if _, err := s.AcquireLease(ctx(t), "a1", "missing", "r1", time.Minute); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("lease on missing chat: %v", err)
	}
}

// testRenewLease: a renewal extends only the renewing owner's own lease
// (expired or not), and never takes back a lease another owner took in
// between, even once that owner released it.
func testRenewLease(t *testing.T, s store.Store) {
	mustCreate(t, s, newSession("a1", "u1", "c1"))
	if ok, err := s.RenewLease(ctx(t), "a1", "c1", "A", time.Minute); ok || err != nil {
		t.Fatalf("renewal of a lease nobody took: %v %v, want false", ok, err)
	}
	if ok, err := s.AcquireLease(ctx(t), "a1", "c1", "A", 50*time.Millisecond); !ok || err != nil {
		t.Fatalf("A takes the lease: %v %v", ok, err)
	}
	before, err := s.GetSession(ctx(t), "a1", "c1")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(80 * time.Millisecond) // expired, nobody took it: still A's
	if ok, err := s.RenewLease(ctx(t), "a1", "c1", "A", 200*time.Millisecond); !ok || err != nil {
		t.Fatalf("A renews its expired lease: %v %v", ok, err)
	}
	if got, _ := s.GetSession(ctx(t), "a1", "c1"); !got.UpdatedAt.After(before.UpdatedAt) {
		t.Fatalf("renewal did not bump UpdatedAt: %v, was %v", got.UpdatedAt, before.UpdatedAt)
	}
	if ok, _ := s.AcquireLease(ctx(t), "a1", "c1", "B", time.Minute); ok {
		t.Fatal("B took the lease A just renewed")
	}
	if ok, err := s.RenewLease(ctx(t), "a1", "c1", "B", time.Minute); ok || err != nil {
		t.Fatalf("B renews A's lease: %v %v, want false", ok, err)
	}
	time.Sleep(250 * time.Millisecond) // A's renewed lease expires
	if ok, err := s.AcquireLease(ctx(t), "a1", "c1", "B", time.Minute); !ok || err != nil {
		t.Fatalf("B takes the expired lease: %v %v", ok, err)
	}
	if ok, err := s.RenewLease(ctx(t), "a1", "c1", "A", time.Minute); ok || err != nil {
		t.Fatalf("A renews the lease B holds: %v %v, want false", ok, err)
	}
	if err := s.ReleaseLease(ctx(t), "a1", "c1", "B"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.RenewLease(ctx(t), "a1", "c1", "A", time.Minute); ok || err != nil {
		t.Fatalf("A renews a lease B took and released: %v %v, want false", ok, err)
	}
	if ok, err := s.RenewLease(ctx(t), "a1", "c1", "", time.Minute); ok || err != nil {
		t.Fatalf("renewal by no owner: %v %v, want false", ok, err)
	}
	// Nothing renewed: the lease is free for anyone.
	if ok, err := s.AcquireLease(ctx(t), "a1", "c1", "C", time.Minute); !ok || err != nil {
		t.Fatalf("C takes the free lease: %v %v", ok, err)
	}
	if ok, err := s.RenewLease(ctx(t), "a1", "c1", "C", time.Minute); !ok || err != nil {
		t.Fatalf("C renews its lease: %v %v", ok, err)
	}
	if ok, err := s.RenewLease(ctx(t), "a2", "c1", "C", time.Minute); ok || !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("renewal in another app: %v %v, want ErrNotFound", ok, err)
	}
	if ok, err := s.RenewLease(ctx(t), "a1", "missing", "C", time.Minute); ok || !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("renewal of a missing chat: %v %v, want ErrNotFound", ok, err)
	}
}

func seqs(evs []store.Event) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}

func assertJSONEqual(t *testing.T, what string, got, want json.RawMessage) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: stored JSON %q does not parse: %v", what, got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		t.Fatalf("%s = %s, want %s", what, gb, wb)
	}
}

func testAppendUpdate(t *testing.T, s store.Store) {
	mustCreate(t, s, newSession("a1", "u1", "c1"))
	done := store.StatusAwaitingInput
	if err := s.UpdateSession(ctx(t), "a1", "c1", store.SessionUpdate{Status: &done}); err != nil {
		t.Fatal(err)
	}
	busy := store.StatusInProgress
	kind, id := "input", "req_1"
	ev, err := s.AppendEventUpdate(ctx(t), "a1", "c1", store.Event{Type: "chat.text", Agent: "user", Data: json.RawMessage(`{"content":"hi"}`)},
		true, store.SessionUpdate{Status: &busy, State: json.RawMessage(`{"started":true}`), PendingKind: &kind, PendingID: &id})
	if err != nil {
		t.Fatalf("AppendEventUpdate: %v", err)
	}
	got, err := s.GetSession(ctx(t), "a1", "c1")
	if err != nil {
		t.Fatal(err)
	}
	if ev.Seq != 1 || got.LastSeq != 1 || got.MessageCount != 1 || got.Status != busy || string(got.State) != `{"started":true}` ||
		got.PendingKind != kind || got.PendingID != id {
		t.Fatalf("after AppendEventUpdate: seq %d, session %+v", ev.Seq, got)
	}
	if _, err := s.AppendEventUpdate(ctx(t), "a2", "c1", store.Event{Type: "chat.text"}, false, store.SessionUpdate{Status: &done}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("AppendEventUpdate in another app: %v, want ErrNotFound", err)
	}
	if got, _ := s.GetSession(ctx(t), "a1", "c1"); got.Status != busy {
		t.Fatalf("another app's append changed the status to %q", got.Status)
	}
}

func testListUnfinished(t *testing.T, s store.Store) {
	done := store.StatusAwaitingInput
	for i, app := range []string{"a1", "a2", "a1", "a3"} {
		chat := fmt.Sprintf("c%d", i)
		mustCreate(t, s, newSession(app, "u1", chat))
		if i%2 == 1 {
			if err := s.UpdateSession(ctx(t), app, chat, store.SessionUpdate{Status: &done}); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := s.ListUnfinished(ctx(t), 10)
	if err != nil {
		t.Fatalf("ListUnfinished: %v", err)
	}
	var ids []string
	for _, x := range got {
		ids = append(ids, x.AppID+"/"+x.ChatID)
	}
	if len(ids) != 2 || ids[0] != "a1/c0" || ids[1] != "a1/c2" {
		t.Fatalf("ListUnfinished = %v, want [a1/c0 a1/c2] (in_progress only, oldest first)", ids)
	}
	if got, _ := s.ListUnfinished(ctx(t), 1); len(got) != 1 {
		t.Fatalf("ListUnfinished(limit 1) returned %d", len(got))
	}
}

// testWriteBatch holds a store.Batcher (when the store is one) to what the
// same writes one by one leave: consecutive seqs, counts, the updates in
// order, usage totals; and nothing of a batch for a chat of another app.
func testWriteBatch(t *testing.T, s store.Store) {
	b, ok := s.(store.Batcher)
	if !ok {
		t.Skipf("%s store writes one at a time (no store.Batcher)", s.Backend())
	}
	mustCreate(t, s, newSession("a1", "u1", "c1"))
	if _, err := s.AppendEvent(ctx(t), "a1", "c1", store.Event{Type: "chat.text", Data: json.RawMessage(`{"n":0}`)}, true); err != nil {
		t.Fatal(err)
	}
	busy, idle := store.StatusInProgress, store.StatusAwaitingInput
	kind, id, none := "input", "req_9", ""
	ev := func(typ string, n int) *store.Event {
		return &store.Event{Type: typ, Agent: "Assistant", Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n))}
	}
	got, err := b.WriteBatch(ctx(t), "a1", "c1", []store.Write{
		{Event: ev("chat.run_start", 1), Update: store.SessionUpdate{Status: &busy, PendingID: &none}},
		{Usage: &store.UsageRecord{UserID: "u1", Workflow: "assistant", Agent: "Assistant", Model: "m", PromptTokens: 7,
			CompletionTokens: 3, TotalTokens: 10}},
		{Event: ev("chat.text", 2), Message: true},
		// Two model calls' usage in one batch: both are added up.
		{Usage: &store.UsageRecord{UserID: "u1", Workflow: "assistant", Agent: "Assistant", Model: "m", PromptTokens: 5,
			CompletionTokens: 1, TotalTokens: 6, CostUSD: 0.25}},
		{Event: ev("chat.input_request", 3), Update: store.SessionUpdate{PendingKind: &kind, PendingID: &id}},
		{Update: store.SessionUpdate{Status: &idle, State: json.RawMessage(`{"run":"r1"}`)}},
	})
	if err != nil {
		t.Fatalf("WriteBatch: %v", err)
	}
	if len(got) != 3 {
		t.Fatalf("WriteBatch returned %d events, want 3", len(got))
	}
	for i, e := range got {
		if e.Seq != int64(i+2) || e.ChatID != "c1" || string(e.Data) != fmt.Sprintf(`{"n":%d}`, i+1) || e.Timestamp.IsZero() {
			t.Fatalf("event %d: %+v", i, e)
		}
	}
	sess, err := s.GetSession(ctx(t), "a1", "c1")
	if err != nil {
		t.Fatal(err)
	}
	if sess.LastSeq != 4 || sess.MessageCount != 2 || sess.Status != idle || string(sess.State) != `{"run":"r1"}` ||
		sess.PendingKind != kind || sess.PendingID != id {
		t.Fatalf("session after WriteBatch: %+v", sess)
	}
	if u := sess.Usage; u.PromptTokens != 12 || u.CompletionTokens != 4 || u.TotalTokens != 16 || u.CostUSD != 0.25 {
		t.Fatalf("usage after WriteBatch: %+v, want 12 + 4 = 16 tokens, $0.25", u)
	}
	evs, err := s.ListEvents(ctx(t), "a1", "c1", 0, 10)
	if err != nil || len(evs) != 4 || evs[1].Type != "chat.run_start" || evs[3].Type != "chat.input_request" {
		t.Fatalf("ListEvents after WriteBatch: %v %+v", err, evs)
	}
	// Updates alone are a batch too.
	if _, err := b.WriteBatch(ctx(t), "a1", "c1", []store.Write{{Update: store.SessionUpdate{Status: &busy}}}); err != nil {
		t.Fatal(err)
	}
	if sess, _ := s.GetSession(ctx(t), "a1", "c1"); sess.Status != busy || sess.LastSeq != 4 {
		t.Fatalf("after an update-only batch: %+v", sess)
	}
	// So is usage alone.
	if _, err := b.WriteBatch(ctx(t), "a1", "c1", []store.Write{{Usage: &store.UsageRecord{UserID: "u1", Workflow: "assistant",
		Agent: "Assistant", Model: "m", PromptTokens: 1, CompletionTokens: 1, TotalTokens: 2}}}); err != nil {
		t.Fatal(err)
	}
	if sess, _ := s.GetSession(ctx(t), "a1", "c1"); sess.Usage.TotalTokens != 18 || sess.LastSeq != 4 {
		t.Fatalf("after a usage-only batch: %+v", sess)
	}
	if _, err := b.WriteBatch(ctx(t), "a2", "c1", []store.Write{{Event: ev("chat.text", 9), Message: true,
		Update: store.SessionUpdate{Status: &idle}}}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("WriteBatch in another app: %v, want ErrNotFound", err)
	}
	if sess, _ := s.GetSession(ctx(t), "a1", "c1"); sess.Status != busy || sess.LastSeq != 4 {
		t.Fatalf("another app's batch changed the chat: %+v", sess)
	}
}

// testStatusUnlessAfter: a status conditioned on "no event stored after
// seq N" applies only while the session's last_seq (before the write's own
// event, or the batch's) is at most N; the rest of the update applies
// either way. A run's end cannot mark the chat idle over a user message
// stored since it read the chat.
func testStatusUnlessAfter(t *testing.T, s store.Store) {
	mustCreate(t, s, newSession("a1", "u1", "c1"))
	busy, idle := store.StatusInProgress, store.StatusAwaitingInput
	at := func(n int64) *int64 { return &n }
	check := func(step string, wantSeq int64, wantStatus, wantState string) {
		t.Helper()
		got, err := s.GetSession(ctx(t), "a1", "c1")
		if err != nil {
			t.Fatal(err)
		}
		if got.LastSeq != wantSeq || got.Status != wantStatus || string(got.State) != wantState {
			t.Fatalf("%s: last seq %d, status %s, state %s; want %d, %s, %s", step, got.LastSeq, got.Status, got.State,
				wantSeq, wantStatus, wantState)
		}
	}
	user := func() {
		t.Helper()
		if _, err := s.AppendEventUpdate(ctx(t), "a1", "c1", store.Event{Type: "chat.text", Agent: "user"}, true,
			store.SessionUpdate{Status: &busy}); err != nil {
			t.Fatal(err)
		}
	}
	user() // seq 1
	if _, err := s.AppendEvent(ctx(t), "a1", "c1", store.Event{Type: "chat.text", Agent: "Assistant"}, true); err != nil {
		t.Fatal(err)
	}
	// Nothing stored after seq 2: the run's end applies in full.
	if err := s.UpdateSession(ctx(t), "a1", "c1", store.SessionUpdate{Status: &idle, StatusUnlessAfter: at(2), State: json.RawMessage(`{"n":1}`)}); err != nil {
		t.Fatal(err)
	}
	check("update, nothing stored since", 2, idle, `{"n":1}`)
	// A message stored after seq 2: the chat stays in progress, the state is stored.
	user() // seq 3
	if err := s.UpdateSession(ctx(t), "a1", "c1", store.SessionUpdate{Status: &idle, StatusUnlessAfter: at(2), State: json.RawMessage(`{"n":2}`)}); err != nil {
		t.Fatal(err)
	}
	check("update, a message stored since", 3, busy, `{"n":2}`)
	// With an event: the condition looks at last_seq before the write's own event.
	if _, err := s.AppendEventUpdate(ctx(t), "a1", "c1", store.Event{Type: "chat.run_complete"}, false,
		store.SessionUpdate{Status: &idle, StatusUnlessAfter: at(2), State: json.RawMessage(`{"n":3}`)}); err != nil {
		t.Fatal(err)
	}
	check("append, a message stored since", 4, busy, `{"n":3}`)
	if _, err := s.AppendEventUpdate(ctx(t), "a1", "c1", store.Event{Type: "chat.run_complete"}, false,
		store.SessionUpdate{Status: &idle, StatusUnlessAfter: at(4), State: json.RawMessage(`{"n":4}`)}); err != nil {
		t.Fatal(err)
	}
	check("append, nothing stored since", 5, idle, `{"n":4}`)
	if err := s.UpdateSession(ctx(t), "a1", "c1", store.SessionUpdate{Status: &busy}); err != nil {
		t.Fatal(err)
	}
	check("unconditional status", 5, busy, `{"n":4}`)
	if b, ok := s.(store.Batcher); ok {
		ev := func() *store.Event { return &store.Event{Type: "chat.text", Agent: "Assistant"} }
		// The batch's own events do not count; the condition is on last_seq before it.
		if _, err := b.WriteBatch(ctx(t), "a1", "c1", []store.Write{{Event: ev(), Message: true},
			{Update: store.SessionUpdate{Status: &idle, StatusUnlessAfter: at(5)}}, {Event: ev()}}); err != nil {
			t.Fatal(err)
		}
		check("batch, nothing stored since", 7, idle, `{"n":4}`)
		user() // seq 8
		if _, err := b.WriteBatch(ctx(t), "a1", "c1", []store.Write{{Event: ev(), Message: true},
			{Update: store.SessionUpdate{Status: &idle, StatusUnlessAfter: at(7), State: json.RawMessage(`{"n":5}`)}}}); err != nil {
			t.Fatal(err)
		}
		check("batch, a message stored since", 9, busy, `{"n":5}`)
		// A later status in the batch replaces the condition with its own.
		if _, err := b.WriteBatch(ctx(t), "a1", "c1", []store.Write{
			{Update: store.SessionUpdate{Status: &idle, StatusUnlessAfter: at(1)}}, {Update: store.SessionUpdate{Status: &idle}}}); err != nil {
			t.Fatal(err)
		}
		check("batch, a later unconditional status", 9, idle, `{"n":5}`)
	}
	if err := s.UpdateSession(ctx(t), "a1", "missing", store.SessionUpdate{Status: &idle, StatusUnlessAfter: at(0)}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("conditional update of a missing chat: %v, want ErrNotFound", err)
	}
	// A fenced conditional write by a non-holder is still refused.
	if ok, err := s.AcquireLease(ctx(t), "a1", "c1", "B", time.Minute); !ok || err != nil {
		t.Fatalf("B takes the lease: %v %v", ok, err)
	}
	done := store.StatusCompleted
	if err := s.UpdateSession(ctx(t), "a1", "c1", store.SessionUpdate{Status: &done, StatusUnlessAfter: at(0), Fence: "A"}); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("conditional update by a non-holder: %v, want ErrFenced", err)
	}
	if _, err := s.AppendEventUpdate(ctx(t), "a1", "c1", store.Event{Type: "chat.text"}, false,
		store.SessionUpdate{Status: &done, StatusUnlessAfter: at(100), Fence: "A"}); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("conditional append by a non-holder: %v, want ErrFenced", err)
	}
	if got, _ := s.GetSession(ctx(t), "a1", "c1"); got.Status == done {
		t.Fatalf("a fenced conditional write changed the status: %+v", got)
	}
}

// testFence: a fenced write happens while its owner holds the chat's lease
// (even past its expiry, when nobody took it), and fails with ErrFenced,
// writing nothing, once another owner has taken it.
func testFence(t *testing.T, s store.Store) {
	mustCreate(t, s, newSession("a1", "u1", "c1"))
	if ok, err := s.AcquireLease(ctx(t), "a1", "c1", "A", 50*time.Millisecond); !ok || err != nil {
		t.Fatalf("A takes the lease: %v %v", ok, err)
	}
	mine := store.SessionUpdate{Fence: "A"}
	if _, err := s.AppendEventUpdate(ctx(t), "a1", "c1", store.Event{Type: "chat.text"}, true, mine); err != nil {
		t.Fatalf("append fenced by the holder: %v", err)
	}
	time.Sleep(80 * time.Millisecond) // expired, nobody took it: still A's
	if err := s.UpdateSession(ctx(t), "a1", "c1", mine); err != nil {
		t.Fatalf("update fenced by the holder of an expired lease: %v", err)
	}
	if ok, err := s.AcquireLease(ctx(t), "a1", "c1", "B", time.Minute); !ok || err != nil {
		t.Fatalf("B takes the expired lease: %v %v", ok, err)
	}
	done := store.StatusCompleted
	stale := store.SessionUpdate{Fence: "A", Status: &done}
	if _, err := s.AppendEventUpdate(ctx(t), "a1", "c1", store.Event{Type: "chat.text"}, true, stale); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("append by the old owner: %v, want ErrFenced", err)
	}
	if err := s.UpdateSession(ctx(t), "a1", "c1", stale); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("update by the old owner: %v, want ErrFenced", err)
	}
	if b, ok := s.(store.Batcher); ok {
		if _, err := b.WriteBatch(ctx(t), "a1", "c1", []store.Write{{Event: &store.Event{Type: "chat.text"}, Update: stale}}); !errors.Is(err, store.ErrFenced) {
			t.Fatalf("batch by the old owner: %v, want ErrFenced", err)
		}
	}
	got, err := s.GetSession(ctx(t), "a1", "c1")
	if err != nil {
		t.Fatal(err)
	}
	if got.LastSeq != 1 || got.MessageCount != 1 || got.Status == done {
		t.Fatalf("a fenced write changed the chat: %+v", got)
	}
	if _, err := s.AppendEventUpdate(ctx(t), "a1", "c1", store.Event{Type: "chat.text"}, true, store.SessionUpdate{Fence: "B"}); err != nil {
		t.Fatalf("append by the new owner: %v", err)
	}
	if err := s.UpdateSession(ctx(t), "a1", "nope", store.SessionUpdate{Fence: "B"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("fenced update of a missing chat: %v, want ErrNotFound", err)
	}
}
