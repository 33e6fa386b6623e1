package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mozaiks/mozaiks/internal/backup"
	"github.com/mozaiks/mozaiks/internal/config"
	"github.com/mozaiks/mozaiks/internal/store"
	"github.com/mozaiks/mozaiks/internal/store/sqlite"
	"github.com/mozaiks/mozaiks/internal/testutil/fakekeyvault"
	"github.com/mozaiks/mozaiks/internal/testutil/ferret"
	"github.com/mozaiks/mozaiks/internal/uerr"
)

func seedEmbedded(t *testing.T, dir string, chats, events int) *sqlite.Store {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	for c := range chats {
		id := fmt.Sprintf("c%d", c)
		if _, _, err := s.CreateSession(ctx, store.Session{ChatID: id, AppID: "app", UserID: "u", Workflow: "w"}); err != nil {
			t.Fatal(err)
		}
		for range events {
			if _, err := s.AppendEvent(ctx, "app", id, store.Event{Type: "chat.text", Data: json.RawMessage(`{"content":"hi"}`)}, true); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.RecordUsage(ctx, store.UsageRecord{AppID: "app", UserID: "u", ChatID: id, PromptTokens: 3, TotalTokens: 3}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// The commands end to end: backup of an embedded store that another holder
// keeps locked (as serve does), restore into an empty directory, refusal of
// a non-empty target and of a corrupt archive, --force, and Mongo both ways.
func TestBackupRestoreCommands(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	live := filepath.Join(tmp, "live")
	held := seedEmbedded(t, live, 3, 4) // stays open: its lock is held throughout
	defer held.Close()
	archive := filepath.Join(tmp, "b.zip")

	code, out, errOut := runCLI(t, "backup", "--out", archive, "--data-dir", live, "--mongo-uri=", "--json")
	if code != 0 {
		t.Fatalf("backup: exit %d\n%s", code, errOut)
	}
	var m struct {
		Format string
		Source string
		Counts store.Counts
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("backup --json: %v\n%s", err, out)
	}
	if m.Format != "mozaiks-backup" || m.Source != "embedded" || m.Counts != (store.Counts{Sessions: 3, Events: 12, Usage: 3}) {
		t.Fatalf("manifest %+v", m)
	}
	if !strings.Contains(errOut, "Backed up 3 sessions, 12 events, 3 usage records") {
		t.Errorf("backup stderr: %s", errOut)
	}
	if st, err := os.Stat(archive); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("archive: %v %v", st, err)
	}
	entries, _ := os.ReadDir(tmp)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") || strings.HasPrefix(e.Name(), "mozaiks-backup-") {
			t.Errorf("left behind: %s", e.Name())
		}
	}

	code, _, errOut = runCLI(t, "backup", "--out", archive, "--data-dir", live, "--mongo-uri=")
	if code != uerr.ExitFailed || !strings.Contains(errOut, "already exists") {
		t.Errorf("backup over an existing file: exit %d\n%s", code, errOut)
	}
	code, _, errOut = runCLI(t, "backup", "--out", filepath.Join(tmp, "no", "x.zip"), "--data-dir", live, "--mongo-uri=")
	if code != uerr.ExitUsage || !strings.Contains(errOut, "no directory") {
		t.Errorf("backup into a missing directory: exit %d\n%s", code, errOut)
	}
	code, _, errOut = runCLI(t, "backup", "--out", filepath.Join(tmp, "x.zip"), "--data-dir", filepath.Join(tmp, "nothing"), "--mongo-uri=")
	if code != uerr.ExitFailed || !strings.Contains(errOut, "no embedded store in") {
		t.Errorf("backup of an empty dir: exit %d\n%s", code, errOut)
	}

	fresh := filepath.Join(tmp, "fresh")
	code, out, errOut = runCLI(t, "restore", archive, "--data-dir", fresh, "--mongo-uri=", "--json")
	if code != 0 || !strings.Contains(out, `"events": 12`) {
		t.Fatalf("restore: exit %d\n%s\n%s", code, out, errOut)
	}
	code, _, errOut = runCLI(t, "restore", archive, "--data-dir", fresh, "--mongo-uri=")
	if code != uerr.ExitFailed || !strings.Contains(errOut, "is not empty: target store holds 3 sessions, 12 events") ||
		!strings.Contains(errOut, "--force") {
		t.Errorf("restore into a non-empty store: exit %d\n%s", code, errOut)
	}
	if code, _, errOut = runCLI(t, "restore", archive, "--data-dir", fresh, "--mongo-uri=", "--force"); code != 0 {
		t.Errorf("restore --force: exit %d\n%s", code, errOut)
	}
	code, _, errOut = runCLI(t, "restore", archive, "--data-dir", live, "--mongo-uri=", "--force")
	if code != uerr.ExitFailed || !strings.Contains(errOut, "stop mozaiks serve") {
		t.Errorf("restore into a directory in use: exit %d\n%s", code, errOut)
	}

	b, _ := os.ReadFile(archive)
	bad := filepath.Join(tmp, "bad.zip")
	b[len(b)/3] ^= 0xff
	if err := os.WriteFile(bad, b, 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(tmp, "empty")
	code, _, errOut = runCLI(t, "restore", bad, "--data-dir", empty, "--mongo-uri=")
	if code != uerr.ExitFailed || !strings.Contains(errOut, "refusing "+bad) || !strings.Contains(errOut, "nothing was restored") {
		t.Errorf("restore of a corrupt archive: exit %d\n%s", code, errOut)
	}
	if code, _, _ := runCLI(t, "restore", filepath.Join(tmp, "missing.zip")); code != uerr.ExitUsage {
		t.Errorf("restore of a missing file: exit %d, want 2", code)
	}

	// Embedded -> MongoDB -> embedded.
	uri := ferret.DB(t)
	if code, _, errOut = runCLI(t, "restore", archive, "--mongo-uri", uri); code != 0 {
		t.Fatalf("restore into mongodb: exit %d\n%s", code, errOut)
	}
	back := filepath.Join(tmp, "back.zip")
	if code, _, errOut = runCLI(t, "backup", "--out", back, "--mongo-uri", uri); code != 0 {
		t.Fatalf("backup of mongodb: exit %d\n%s", code, errOut)
	}
	if code, out, errOut = runCLI(t, "restore", back, "--data-dir", filepath.Join(tmp, "again"), "--mongo-uri=", "--json"); code != 0 ||
		!strings.Contains(out, `"source": "mongodb"`) || !strings.Contains(out, `"usage": 3`) {
		t.Fatalf("restore of the mongodb backup: exit %d\n%s\n%s", code, out, errOut)
	}
	code, _, errOut = runCLI(t, "backup", "--out", filepath.Join(tmp, "y.zip"), "--mongo-uri", "mongodb://127.0.0.1:1/x")
	if code != uerr.ExitPrerequisite {
		t.Errorf("backup of an unreachable mongodb: exit %d, want 4\n%s", code, errOut)
	}
}

// A secret that the vault lacks stops the command with exit 2, naming the
// setting and the vault (as it stops serve: both load settings the same way).
func TestKeyVaultFailureIsExit2(t *testing.T) {
	t.Parallel()
	az := fakekeyvault.New(t, "t1", "c1", "s1")
	az.SetSecret("kv1", "OpenAIApiKey", "sk-x")
	var out, errb strings.Builder
	stdio := IO{In: strings.NewReader(""), Out: &out, Err: &errb}
	cmd := NewCmdBackup(stdio, func(ctx context.Context, o *BackupOptions) error {
		o.Environ = []string{"AZURE_KEYVAULT_NAME=kv1", "AZURE_TENANT_ID=t1", "AZURE_CLIENT_ID=c1", "AZURE_CLIENT_SECRET=s1"}
		o.KeyVault = &config.KeyVaultOptions{Transport: az.Client()}
		return runBackup(ctx, o)
	})
	cmd.SetArgs([]string{"--out", filepath.Join(t.TempDir(), "b.zip"), "--data-dir", t.TempDir()})
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	code := report(&errb, cmd.ExecuteContext(context.Background()), false)
	if code != uerr.ExitUsage || !strings.Contains(errb.String(), "MONGO_URI") || !strings.Contains(errb.String(), "Azure Key Vault kv1") ||
		!strings.Contains(errb.String(), "secret not found") {
		t.Fatalf("exit %d, stderr:\n%s", code, errb.String())
	}
}

// An interrupted backup (the writer fails half-way, as on Ctrl-C) leaves
// neither the archive nor its temporary file.
func TestWriteAtomicallyLeavesNothingOnFailure(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := filepath.Join(dir, "b.zip")
	_, err := writeAtomically(out, func(w io.Writer) (backup.Manifest, error) {
		_, _ = w.Write([]byte("half an archive"))
		return backup.Manifest{}, context.Canceled
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("left behind: %v", entries)
	}
	if _, err := writeAtomically(out, func(w io.Writer) (backup.Manifest, error) {
		_, err := w.Write([]byte("whole"))
		return backup.Manifest{}, err
	}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != "whole" {
		t.Fatalf("archive %q %v", b, err)
	}
}

func TestBarProgressDraws(t *testing.T) {
	t.Parallel()
	var buf strings.Builder
	p := newBarProgress(&buf)
	p.Start("restore", 2048)
	p.Add(1024)
	p.Add(1024)
	p.Finish()
	p.Add(5) // after Finish: ignored, no panic
	if !strings.Contains(buf.String(), "restore") || !strings.Contains(buf.String(), "/2048, ") {
		t.Fatalf("bar output %q", buf.String())
	}
}
