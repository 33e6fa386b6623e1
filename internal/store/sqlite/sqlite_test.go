package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/mozaiks/mozaiks/internal/store"
	"github.com/mozaiks/mozaiks/internal/store/sqlite"
	"github.com/mozaiks/mozaiks/internal/store/storetest"
)

func open(t *testing.T) store.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, open)
}

func TestDataDirLocked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	// flock is per open file description, so a second Open in the same
	// process is refused just like another process would be.
	if _, err := sqlite.Open(context.Background(), dir); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second Open: err = %v, want ErrLocked", err)
	}
	s.Close()
	s2, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s2.Close()
}

func TestPersistsAcrossReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateSession(ctx, store.Session{ChatID: "c1", AppID: "a", UserID: "u", Workflow: "w"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendEvent(ctx, "a", "c1", store.Event{Type: "chat.text", Data: []byte(`{"content":"hi"}`)}, true); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.GetSession(ctx, "a", "c1")
	if err != nil || got.LastSeq != 1 || got.MessageCount != 1 {
		t.Fatalf("after reopen: %+v %v", got, err)
	}
}

// A chat with 100,000 events works: the next appends continue the seq,
// pages read back in order, and the session's counters match.
func TestHundredThousandEvents(t *testing.T) {
	t.Parallel()
	s, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	if _, _, err := s.CreateSession(ctx, store.Session{ChatID: "big", AppID: "a", UserID: "u", Workflow: "w"}); err != nil {
		t.Fatal(err)
	}
	const seeded, n = 99_990, 100_000
	if err := s.SeedEvents(ctx, "a", "big", seeded); err != nil {
		t.Fatal(err)
	}
	for i := seeded + 1; i <= n; i++ {
		ev, err := s.AppendEvent(ctx, "a", "big", store.Event{Type: "chat.text", Agent: "A", Data: []byte(`{"content":"message"}`)}, true)
		if err != nil || ev.Seq != int64(i) {
			t.Fatalf("append %d: seq %d, %v", i, ev.Seq, err)
		}
	}
	var after int64
	read := 0
	for {
		evs, err := s.ListEvents(ctx, "a", "big", after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			break
		}
		for _, ev := range evs {
			if ev.Seq != after+1 {
				t.Fatalf("seq %d after %d", ev.Seq, after)
			}
			after = ev.Seq
			read++
		}
	}
	got, err := s.GetSession(ctx, "a", "big")
	if err != nil || read != n || got.LastSeq != n || got.MessageCount != n {
		t.Fatalf("read %d events; session last_seq %d, messages %d, %v", read, got.LastSeq, got.MessageCount, err)
	}
}

// Writes that share a group commit fail alone: appends to a missing chat
// return ErrNotFound while the appends batched with them are all kept.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	t.Parallel()
	s := open(t)
	ctx := context.Background()
	if _, _, err := s.CreateSession(ctx, store.Session{ChatID: "c", AppID: "a", UserID: "u", Workflow: "w"}); err != nil {
		t.Fatal(err)
	}
	const n = 60
	errs := make(chan error, 2*n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, err := s.AppendEvent(ctx, "a", "c", store.Event{Type: "chat.text", Data: []byte(`{}`)}, true)
			errs <- err
		}()
		go func() {
			defer wg.Done()
			_, err := s.AppendEvent(ctx, "a", "missing", store.Event{Type: "chat.text", Data: []byte(`{}`)}, true)
			if !errors.Is(err, store.ErrNotFound) {
				errs <- fmt.Errorf("append to a missing chat: %v", err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	evs, err := s.ListEvents(ctx, "a", "c", 0, 1000)
	if err != nil || len(evs) != n || evs[n-1].Seq != n {
		t.Fatalf("%d events kept (last seq %v), want %d: %v", len(evs), evs, n, err)
	}
}
