//go:build unix

package sqlite

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/mozaiks/mozaiks/internal/store"
)

// lockDir takes an exclusive, non-blocking flock on the data directory
// itself, then on dir/mozaiks.lock (which only tells a refused process who
// holds the directory). The directory lock is what keeps a second process
// out: deleting mozaiks.lock (or even the database) does not release it.
// flock is independent of the fcntl locks SQLite takes on its files, and
// the kernel drops it when the process dies, so a crash never leaves it stale.
func lockDir(dir string) (func(), error) {
	path := filepath.Join(dir, "mozaiks.lock")
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("open data directory: %w", err)
	}
	if err := syscall.Flock(int(d.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		d.Close()
		return nil, lockErr(dir, path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		d.Close()
		return nil, lockErr(dir, path, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
		_ = syscall.Flock(int(d.Fd()), syscall.LOCK_UN)
		d.Close()
	}, nil
}

func lockErr(dir, path string, err error) error {
	if !errors.Is(err, syscall.EWOULDBLOCK) {
		return fmt.Errorf("lock %s: %w", dir, err)
	}
	holder, _ := os.ReadFile(path)
	who := strings.TrimSpace(string(holder))
	if who != "" {
		who = " (pid " + who + ")"
	}
	return fmt.Errorf("%w: %s is used by another mozaiks process%s", store.ErrLocked, dir, who)
}
