package sqlite_test

import (
	"context"
	"errors"
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
