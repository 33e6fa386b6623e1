package main_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mozaiks/mozaiks/internal/backup"
	"github.com/mozaiks/mozaiks/internal/testutil/ferret"
)

// run runs `mozaiks args...` to completion and returns its exit code and output.
func run(t *testing.T, dir string, env []string, args ...string) (int, string) {
	t.Helper()
	p := start(t, dir, env, args...)
	code := p.wait(60 * time.Second)
	return code, p.stderr.String()
}

func manifestOf(t *testing.T, path string) backup.Manifest {
	t.Helper()
	a, err := backup.OpenFile(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer a.Close()
	return a.Manifest
}

// sameData says whether two archives hold byte-identical records.
func sameData(t *testing.T, what string, a, b backup.Manifest) {
	t.Helper()
	if len(a.Entries) != len(b.Entries) {
		t.Fatalf("%s: entries %+v vs %+v", what, a.Entries, b.Entries)
	}
	for i := range a.Entries {
		if a.Entries[i] != b.Entries[i] {
			t.Fatalf("%s: %s differs: %+v vs %+v", what, a.Entries[i].Name, a.Entries[i], b.Entries[i])
		}
	}
}

// The binary end to end: `mozaiks backup` runs beside a live `mozaiks serve`
// (another process, holding the data directory's lock) while chats are being
// written over WebSockets; the archive restores into a fresh embedded store
// and into MongoDB (FerretDB); a backup of each restored store holds the very
// same bytes (so every session, event and usage record came back as it was);
// and serve reads the restored store.
func TestBackupBesideLiveServeRestoresIntoBothBackends(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	live := filepath.Join(root, "live")
	p := serve(t, root, "LLM_PROVIDER=echo", "MOZAIKS_DATA_DIR="+live)
	ws := "ws" + strings.TrimPrefix(p.url, "http") + "/ws/assistant/default/"

	const chats, turns = 20, 4
	var sent atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, chats)
	for c := range chats {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, _, err := websocket.DefaultDialer.Dial(fmt.Sprintf("%sc%02d/u%02d", ws, c, c), nil)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			until := func(typ string) error {
				_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
				for {
					var f map[string]any
					if err := conn.ReadJSON(&f); err != nil {
						return fmt.Errorf("chat %d waiting for %s: %w", c, typ, err)
					}
					if f["type"] == typ {
						return nil
					}
				}
			}
			if err := until("chat.input_request"); err != nil {
				errs <- err
				return
			}
			for i := range turns {
				if err := conn.WriteJSON(map[string]any{"type": "user.input.submit", "text": fmt.Sprintf("message %d", i)}); err != nil {
					errs <- err
					return
				}
				if err := until("chat.input_request"); err != nil {
					errs <- err
					return
				}
				sent.Add(1)
			}
		}()
	}
	for sent.Load() < chats && len(errs) == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	archive := filepath.Join(root, "live.zip")
	code, out := run(t, root, []string{"MOZAIKS_DATA_DIR=" + live}, "backup", "--out", archive)
	if code != 0 {
		t.Fatalf("backup beside serve: exit %d\n%s", code, out)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	m := manifestOf(t, archive)
	if m.Counts.Sessions == 0 || m.Counts.Events == 0 {
		t.Fatalf("backup caught nothing: %+v", m.Counts)
	}
	t.Logf("backup taken while writing: %+v", m.Counts)

	// Embedded: restore, back up again, compare.
	fresh := filepath.Join(root, "fresh")
	if code, out := run(t, root, []string{"MOZAIKS_DATA_DIR=" + fresh}, "restore", archive); code != 0 {
		t.Fatalf("restore into embedded: exit %d\n%s", code, out)
	}
	again := filepath.Join(root, "fresh.zip")
	if code, out := run(t, root, []string{"MOZAIKS_DATA_DIR=" + fresh}, "backup", "--out", again); code != 0 {
		t.Fatalf("backup of the restored store: exit %d\n%s", code, out)
	}
	sameData(t, "embedded round trip", manifestOf(t, again), m)

	// MongoDB (FerretDB): the same.
	uri := ferret.DB(t)
	if code, out := run(t, root, []string{"MONGO_URI=" + uri}, "restore", archive); code != 0 {
		t.Fatalf("restore into mongodb: exit %d\n%s", code, out)
	}
	fromMongo := filepath.Join(root, "mongo.zip")
	if code, out := run(t, root, []string{"MONGO_URI=" + uri}, "backup", "--out", fromMongo); code != 0 {
		t.Fatalf("backup of mongodb: exit %d\n%s", code, out)
	}
	mm := manifestOf(t, fromMongo)
	if mm.Source != "mongodb" {
		t.Fatalf("source %q", mm.Source)
	}
	sameData(t, "mongodb round trip", mm, m)

	// A non-empty target is refused without --force.
	if code, out := run(t, root, []string{"MONGO_URI=" + uri}, "restore", archive); code != 1 || !strings.Contains(out, "--force") {
		t.Fatalf("restore into non-empty mongodb: exit %d\n%s", code, out)
	}

	// serve reads the restored store: a chat has the transcript it had in the backup.
	p.signal(syscall.SIGTERM)
	p.wait(30 * time.Second)
	p2 := serve(t, root, "LLM_PROVIDER=echo", "MOZAIKS_DATA_DIR="+fresh)
	var s struct {
		LastSeq  int64 `json:"last_seq"`
		Messages []struct {
			Seq  int64           `json:"seq"`
			Data json.RawMessage `json:"data"`
		} `json:"messages"`
	}
	if code := call(t, "GET", p2.url+"/api/sessions/c00?user_id=u00", nil, &s); code != 200 {
		t.Fatalf("restored session: %d", code)
	}
	if s.LastSeq == 0 || len(s.Messages) == 0 {
		t.Fatalf("restored session is empty: %+v", s)
	}
}
