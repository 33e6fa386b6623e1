//go:build linux && !race

// Not under the race detector: on Ctrl-C, bubbletea's terminal reader
// (muesli/cancelreader) closes the tty's *os.File while its read loop still
// calls Fd() on it, a race inside the library, not ours. .ci/run runs these
// tests in a separate step without -race.

package initwiz

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mozaiks/mozaiks/internal/config"
	"github.com/mozaiks/mozaiks/internal/testenv"
	"github.com/mozaiks/mozaiks/internal/uerr"
)

// openPty opens a pseudo-terminal pair: the test types into master, the
// form reads the slave as its terminal.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	testenv.Need(t, err == nil, "/dev/ptmx", "a Linux kernel with devpts mounted")
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	ws := &unix.Winsize{Row: 40, Col: 120}
	unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, ws)
	// Only the master is closed: bubbletea's input goroutine may still hold the
	// slave's descriptor for a moment after the form returns (closing it would
	// race); the master's close ends that read, and the slave goes with its finalizer.
	t.Cleanup(func() { m.Close() })
	return m, s
}

// screen collects what the form draws, so the test can wait for a prompt.
type screen struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func (s *screen) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Len()
}

// settle waits until the form has redrawn after a key (output grew past
// before) and then stayed quiet, so the next key is a separate event.
func (s *screen) settle(before int) {
	deadline := time.Now().Add(10 * time.Second)
	last, quietSince := s.len(), time.Now()
	for time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		n := s.len()
		if n != last {
			last, quietSince = n, time.Now()
			continue
		}
		if n > before && time.Since(quietSince) > 200*time.Millisecond {
			return
		}
	}
}

func (s *screen) waitFor(t *testing.T, text string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(s.String(), text) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the form never showed %q", text)
}

// startForm runs init with the full-screen form on a pty.
func startForm(t *testing.T, ctx context.Context, dir string) (type_ func(string), scr *screen, done chan result) {
	t.Helper()
	master, slave := openPty(t)
	scr = &screen{}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := master.Read(b)
			scr.Write(b[:n])
			if err != nil {
				return
			}
		}
	}()
	done = make(chan result, 1)
	go func() {
		e := Run(ctx, Options{Dir: dir, Interactive: true, In: slave, Out: &bytes.Buffer{}, Err: slave, SkipChecks: true})
		done <- result{e: e}
	}()
	type_ = func(keys string) {
		before := scr.len()
		if _, err := master.Write([]byte(keys)); err != nil {
			t.Fatal(err)
		}
		scr.settle(before)
	}
	return type_, scr, done
}

func wait(t *testing.T, done chan result) result {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("init did not finish")
		return result{}
	}
}

// The real form on a real terminal: answers typed as keys, the key masked on screen.
func TestPtyFormWritesFilesAndMasksTheKey(t *testing.T) {
	dir := t.TempDir()
	key := "sk-typed-SECRET-777"
	type_, scr, done := startForm(t, context.Background(), dir)
	scr.waitFor(t, "Deployment")
	type_("\r") // dev
	type_("\r") // bundled
	scr.waitFor(t, "API key")
	type_("\r") // no base URL
	type_(key)
	type_("\r")
	type_("\r") // model default
	scr.waitFor(t, "Public URL")
	type_("\r") // public URL default
	type_("\r") // CORS default
	type_("\r") // app id default
	type_("\r") // proxy: dev's default, none
	type_("\r") // project name default
	type_("\r") // host port default
	r := wait(t, done)
	if r.e != nil {
		t.Fatalf("%v\nscreen:\n%s", r.e, scr.String())
	}
	if strings.Contains(scr.String(), key) {
		t.Errorf("the API key was echoed on the terminal")
	}
	env, err := config.ReadDotEnv(filepath.Join(dir, ".env"))
	if err != nil || env[EnvAPIKey] != key || env[EnvDeployment] != "dev" || env[EnvProxy] != "none" {
		t.Errorf(".env: %v %v", env, err)
	}
}

// Ctrl-C in the full-screen form: exit 130, nothing written.
func TestPtyFormCtrlC(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ".env"), []byte("CUSTOM=1\n"), 0o600)
	before := snapshot(t, dir)
	type_, scr, done := startForm(t, context.Background(), dir)
	scr.waitFor(t, "Deployment")
	type_("\r")
	type_("\x03")
	r := wait(t, done)
	if r.code() != uerr.ExitInterrupted {
		t.Fatalf("exit %d: %v", r.code(), r.e)
	}
	sameSnapshot(t, before, snapshot(t, dir))
}
