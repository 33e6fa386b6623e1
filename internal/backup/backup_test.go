package backup_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/backup"
	"github.com/mozaiks/mozaiks/internal/store"
	"github.com/mozaiks/mozaiks/internal/store/mongo"
	"github.com/mozaiks/mozaiks/internal/store/sqlite"
	"github.com/mozaiks/mozaiks/internal/testutil/ferret"
)

// dump is everything a store holds, as its Exporter sends it.
type dump struct {
	Sessions []store.Session
	Events   []store.AppEvent
	Usages   []store.UsageRecord
}

func (d *dump) Session(s store.Session) error   { d.Sessions = append(d.Sessions, s); return nil }
func (d *dump) Event(e store.AppEvent) error    { d.Events = append(d.Events, e); return nil }
func (d *dump) Usage(u store.UsageRecord) error { d.Usages = append(d.Usages, u); return nil }

func dumpOf(t *testing.T, src store.Exporter) *dump {
	t.Helper()
	d := &dump{}
	if err := src.Export(context.Background(), d); err != nil {
		t.Fatalf("export: %v", err)
	}
	return d
}

// equalDumps fails t at the first record that differs.
func equalDumps(t *testing.T, what string, got, want *dump) {
	t.Helper()
	if len(got.Sessions) != len(want.Sessions) || len(got.Events) != len(want.Events) || len(got.Usages) != len(want.Usages) {
		t.Fatalf("%s: %d sessions, %d events, %d usage; want %d, %d, %d", what, len(got.Sessions), len(got.Events),
			len(got.Usages), len(want.Sessions), len(want.Events), len(want.Usages))
	}
	for i := range want.Sessions {
		if !reflect.DeepEqual(got.Sessions[i], want.Sessions[i]) {
			t.Fatalf("%s: session %d\n got %+v\nwant %+v", what, i, got.Sessions[i], want.Sessions[i])
		}
	}
	for i := range want.Events {
		g, w := got.Events[i], want.Events[i]
		if g.AppID != w.AppID || g.ChatID != w.ChatID || g.Seq != w.Seq || g.Type != w.Type || g.Agent != w.Agent ||
			string(g.Data) != string(w.Data) || !g.Timestamp.Equal(w.Timestamp) {
			t.Fatalf("%s: event %d\n got %+v\nwant %+v", what, i, g, w)
		}
	}
	for i := range want.Usages {
		if !reflect.DeepEqual(got.Usages[i], want.Usages[i]) {
			t.Fatalf("%s: usage %d\n got %+v\nwant %+v", what, i, got.Usages[i], want.Usages[i])
		}
	}
}

// consistent checks what a snapshot taken between whole writes must show:
// every chat's events are exactly 1..last_seq, its message count matches
// its message events, and its usage totals are the sum of its records.
func consistent(t *testing.T, d *dump) {
	t.Helper()
	events := map[string][]store.AppEvent{}
	for _, e := range d.Events {
		events[e.ChatID] = append(events[e.ChatID], e)
	}
	usage := map[string]store.Usage{}
	for _, u := range d.Usages {
		x := usage[u.ChatID]
		x.PromptTokens += u.PromptTokens
		x.CompletionTokens += u.CompletionTokens
		x.TotalTokens += u.TotalTokens
		usage[u.ChatID] = x
	}
	for _, s := range d.Sessions {
		evs := events[s.ChatID]
		if int64(len(evs)) != s.LastSeq {
			t.Fatalf("torn snapshot: chat %s last_seq %d but %d events", s.ChatID, s.LastSeq, len(evs))
		}
		var messages int64
		for i, e := range evs {
			if e.Seq != int64(i+1) {
				t.Fatalf("torn snapshot: chat %s event %d has seq %d", s.ChatID, i, e.Seq)
			}
			if e.Type == "chat.text" {
				messages++
			}
		}
		if messages != s.MessageCount {
			t.Fatalf("torn snapshot: chat %s message_count %d but %d message events", s.ChatID, s.MessageCount, messages)
		}
		u := usage[s.ChatID]
		if u.PromptTokens != s.Usage.PromptTokens || u.TotalTokens != s.Usage.TotalTokens {
			t.Fatalf("torn snapshot: chat %s usage totals %+v but records sum to %+v", s.ChatID, s.Usage, u)
		}
	}
}

// writeChat plays one chat: session, then events (every third not a
// message), a usage record every fourth event, state updates.
func writeChat(ctx context.Context, s store.Store, chat string, n int, written *atomic.Int64) error {
	if _, _, err := s.CreateSession(ctx, store.Session{ChatID: chat, AppID: "app", UserID: "u-" + chat, Workflow: "w"}); err != nil {
		return err
	}
	for i := 1; i <= n; i++ {
		typ, msg := "chat.text", true
		if i%3 == 0 {
			typ, msg = "chat.tool_call", false
		}
		data := json.RawMessage(fmt.Sprintf(`{"content": "message %d of %s", "n":1.0, "big":123456789012345678901}`, i, chat))
		if _, err := s.AppendEvent(ctx, "app", chat, store.Event{Type: typ, Agent: "A", Data: data}, msg); err != nil {
			return err
		}
		written.Add(1)
		if i%4 == 0 {
			if err := s.RecordUsage(ctx, store.UsageRecord{AppID: "app", UserID: "u-" + chat, ChatID: chat, Workflow: "w",
				Agent: "A", Model: "m", PromptTokens: int64(i), CompletionTokens: 2, TotalTokens: int64(i) + 2, CostUSD: 0.25}); err != nil {
				return err
			}
			st := json.RawMessage(fmt.Sprintf(`{"turn":%d}`, i))
			status := store.StatusAwaitingInput
			if err := s.UpdateSession(ctx, "app", chat, store.SessionUpdate{Status: &status, State: st}); err != nil {
				return err
			}
		}
	}
	return nil
}

func writeFile(t *testing.T, src store.Exporter, source string) (string, backup.Manifest) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "backup.zip")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := backup.Write(context.Background(), f, src, backup.WriteOptions{Source: source})
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path, m
}

func restore(t *testing.T, path string, dst store.Importer, opts backup.RestoreOptions) (store.Counts, error) {
	t.Helper()
	a, err := backup.OpenFile(path)
	if err != nil {
		return store.Counts{}, err
	}
	defer a.Close()
	return a.Restore(context.Background(), dst, opts)
}

func openEmbedded(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openMongo(t *testing.T) *mongo.Store {
	t.Helper()
	s, err := mongo.Open(context.Background(), ferret.DB(t), mongo.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestBackupWhileWritingRestoresEverywhere is the must-hold: a
// backup of the embedded store taken (without its lock) while 50 chats are
// being written is a consistent snapshot, and restores into a fresh embedded
// store and into the Mongo store (FerretDB) record for record.
func TestBackupWhileWritingRestoresEverywhere(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	live := openEmbedded(t) // holds the data directory's lock, as serve does
	const chats, perChat = 50, 40
	var written atomic.Int64
	started := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, chats)
	for c := range chats {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-started
			if err := writeChat(ctx, live, fmt.Sprintf("chat-%02d", c), perChat, &written); err != nil {
				errs <- err
			}
		}()
	}
	close(started)
	for written.Load() < chats*perChat/4 {
		time.Sleep(time.Millisecond)
	}
	src, cleanup, err := backup.EmbeddedSource(ctx, live.Dir(), t.TempDir())
	if err != nil {
		t.Fatalf("snapshot while writing: %v", err)
	}
	snap := dumpOf(t, src)
	path, m := writeFile(t, src, "embedded")
	cleanup()
	atBackup := written.Load()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("writer: %v", err)
	}

	consistent(t, snap)
	if m.Counts.Events != int64(len(snap.Events)) || m.Counts.Sessions != int64(len(snap.Sessions)) || m.Counts.Usage != int64(len(snap.Usages)) {
		t.Fatalf("manifest counts %+v, snapshot has %d/%d/%d", m.Counts, len(snap.Sessions), len(snap.Events), len(snap.Usages))
	}
	if m.Counts.Events == 0 || m.Counts.Usage == 0 {
		t.Fatalf("snapshot caught nothing: %+v", m.Counts)
	}
	t.Logf("snapshot: %+v (writers had stored %d of %d events when it ended)", m.Counts, atBackup, chats*perChat)

	for _, tc := range []struct {
		name string
		dst  interface {
			store.Store
			store.Importer
			store.Exporter
		}
	}{
		{"embedded", openEmbedded(t)},
		{"mongodb", openMongo(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := restore(t, path, tc.dst, backup.RestoreOptions{BatchSize: 97})
			if err != nil {
				t.Fatalf("restore: %v", err)
			}
			if got != m.Counts {
				t.Fatalf("restored %+v, manifest says %+v", got, m.Counts)
			}
			equalDumps(t, "restored "+tc.name, dumpOf(t, tc.dst), snap)
			// And through the runtime's own reads (every fifth chat: FerretDB
			// scans a collection per query): same session, same events and seqs.
			for i, want := range snap.Sessions {
				if i%5 != 0 {
					continue
				}
				s, err := tc.dst.GetSession(ctx, want.AppID, want.ChatID)
				if err != nil {
					t.Fatalf("GetSession %s: %v", want.ChatID, err)
				}
				if !reflect.DeepEqual(s, want) {
					t.Fatalf("GetSession %s\n got %+v\nwant %+v", want.ChatID, s, want)
				}
				evs, err := tc.dst.ListEvents(ctx, want.AppID, want.ChatID, 0, 10000)
				if err != nil {
					t.Fatal(err)
				}
				if int64(len(evs)) != want.LastSeq {
					t.Fatalf("ListEvents %s: %d events, last_seq %d", want.ChatID, len(evs), want.LastSeq)
				}
			}
			// The restored store takes new writes after the restored seqs.
			chat := snap.Sessions[0]
			ev, err := tc.dst.AppendEvent(ctx, chat.AppID, chat.ChatID, store.Event{Type: "chat.text"}, true)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Seq != chat.LastSeq+1 {
				t.Fatalf("append after restore got seq %d, want %d", ev.Seq, chat.LastSeq+1)
			}
		})
	}
}

// TestMongoBackupRestoresIntoEmbedded: the other direction of a migration.
func TestMongoBackupRestoresIntoEmbedded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := openMongo(t)
	var n atomic.Int64
	for c := range 5 {
		if err := writeChat(ctx, src, fmt.Sprintf("m-%d", c), 9, &n); err != nil {
			t.Fatal(err)
		}
	}
	want := dumpOf(t, src)
	consistent(t, want)
	path, m := writeFile(t, src, src.Backend())
	if m.Source != "mongodb" || m.Counts.Events != 45 {
		t.Fatalf("manifest %+v", m)
	}
	dst := openEmbedded(t)
	if _, err := restore(t, path, dst, backup.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	equalDumps(t, "embedded from mongodb", dumpOf(t, dst), want)
}

func TestRestoreRefusesNonEmptyUnlessForced(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var n atomic.Int64
	src := openEmbedded(t)
	if err := writeChat(ctx, src, "a", 5, &n); err != nil {
		t.Fatal(err)
	}
	path, _ := writeFile(t, src, "embedded")

	dst := openEmbedded(t)
	if err := writeChat(ctx, dst, "other", 2, &n); err != nil {
		t.Fatal(err)
	}
	_, err := restore(t, path, dst, backup.RestoreOptions{})
	var ne *backup.NotEmptyError
	if !errors.As(err, &ne) || ne.Counts.Sessions != 1 || ne.Counts.Events != 2 {
		t.Fatalf("restore into a non-empty store: %v, want NotEmptyError with its counts", err)
	}
	if _, err := dst.GetSession(ctx, "app", "other"); err != nil {
		t.Fatalf("refused restore changed the target: %v", err)
	}
	if _, err := restore(t, path, dst, backup.RestoreOptions{Force: true}); err != nil {
		t.Fatalf("forced restore: %v", err)
	}
	equalDumps(t, "after forced restore", dumpOf(t, dst), dumpOf(t, src))
}

// TestMongoBackupWhileWriting: the Mongo store has no cross-collection
// snapshot; the sessions fix the cut. With one writer per chat, at most one
// append per chat is in flight at the cut, so a chat's archived events are
// 1..last_seq, or 1..last_seq-1 when its last append had not landed; none
// lies beyond its session's counter. The archive restores record for record.
func TestMongoBackupWhileWriting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := openMongo(t)
	const chats, perChat = 20, 12
	var written atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, chats)
	for c := range chats {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := writeChat(ctx, src, fmt.Sprintf("mc-%02d", c), perChat, &written); err != nil {
				errs <- err
			}
		}()
	}
	for written.Load() < chats*perChat/4 {
		time.Sleep(time.Millisecond)
	}
	path, m := writeFile(t, src, "mongodb")
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("writer: %v", err)
	}
	a, err := backup.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	dst := openEmbedded(t)
	if _, err := a.Restore(ctx, dst, backup.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	got := dumpOf(t, dst)
	events := map[string][]int64{}
	for _, e := range got.Events {
		events[e.ChatID] = append(events[e.ChatID], e.Seq)
	}
	for _, s := range got.Sessions {
		seqs := events[s.ChatID]
		if n := int64(len(seqs)); n != s.LastSeq && n != s.LastSeq-1 {
			t.Fatalf("chat %s: last_seq %d, %d events archived", s.ChatID, s.LastSeq, n)
		}
		for i, q := range seqs {
			if q != int64(i+1) {
				t.Fatalf("chat %s: event %d has seq %d", s.ChatID, i, q)
			}
		}
	}
	// A chat whose session the writer had not created yet at the cut is
	// not in the archive: the counts must still match what was restored.
	if m.Counts.Events != int64(len(got.Events)) || m.Counts.Sessions != int64(len(got.Sessions)) || m.Counts.Sessions > chats {
		t.Fatalf("manifest %+v, restored %d events", m.Counts, len(got.Events))
	}
	t.Logf("cut at %+v of %d events", m.Counts, chats*perChat)
}

// A store nobody holds open (serve stopped, its WAL checkpointed away) is
// snapshotted just the same.
func TestBackupOfClosedStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	s, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	if err := writeChat(ctx, s, "c", 7, &n); err != nil {
		t.Fatal(err)
	}
	want := dumpOf(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	src, cleanup, err := backup.EmbeddedSource(ctx, dir, t.TempDir())
	if err != nil {
		t.Fatalf("snapshot of a closed store: %v", err)
	}
	defer cleanup()
	equalDumps(t, "snapshot of a closed store", dumpOf(t, src), want)
	if _, _, err := backup.EmbeddedSource(ctx, t.TempDir(), ""); !errors.Is(err, sqlite.ErrNoDatabase) {
		t.Fatalf("snapshot of an empty directory: %v, want ErrNoDatabase", err)
	}
}
