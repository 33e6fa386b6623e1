//go:build unix

package sqlite_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mozaiks/mozaiks/internal/store"
	"github.com/mozaiks/mozaiks/internal/store/sqlite"
)

// TestLockSurvivesDeletedLockFile: deleting mozaiks.lock must not let a
// second process open the same store. The second process is real: this
// test binary re-executed.
func TestLockSurvivesDeletedLockFile(t *testing.T) {
	if dir := os.Getenv("MOZAIKS_LOCK_CHILD_DIR"); dir != "" {
		_, err := sqlite.Open(context.Background(), dir)
		if errors.Is(err, store.ErrLocked) {
			os.Stdout.WriteString("LOCKED\n")
			return
		}
		os.Stdout.WriteString("OPENED " + errString(err) + "\n")
		return
	}
	t.Parallel()
	dir := t.TempDir()
	s, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := os.Remove(filepath.Join(dir, "mozaiks.lock")); err != nil {
		t.Fatal(err)
	}
	child := func() string {
		cmd := exec.Command(os.Args[0], "-test.run=^TestLockSurvivesDeletedLockFile$", "-test.count=1")
		cmd.Env = append(os.Environ(), "MOZAIKS_LOCK_CHILD_DIR="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return string(out)
	}
	if out := child(); !strings.Contains(out, "LOCKED") {
		t.Fatalf("a second process opened the store after mozaiks.lock was deleted:\n%s", out)
	}
	// In this process too (flock is per open file description).
	if _, err := sqlite.Open(context.Background(), dir); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second Open: %v", err)
	}
	s.Close()
	if out := child(); !strings.Contains(out, "OPENED") {
		t.Fatalf("after Close the directory is still locked:\n%s", out)
	}
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}
