package app

import (
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// unsetenv unsets key for the test and restores it after (t.Setenv cannot
// unset).
func unsetenv(t *testing.T, key string) {
	t.Setenv(key, "")
	os.Unsetenv(key)
}

func TestTuneGC(t *testing.T) {
	gogc := debug.SetGCPercent(100)
	limit := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() {
		debug.SetGCPercent(gogc)
		debug.SetMemoryLimit(limit)
	})
	log := slog.New(slog.DiscardHandler)

	// Nothing set: the server's GOGC, and 90% of the container's limit.
	unsetenv(t, "GOGC")
	unsetenv(t, "GOMEMLIMIT")
	unsetenv(t, "AUTOMEMLIMIT")
	tuneGC(log, memlimit.Limit(1000<<20))
	if got := debug.SetGCPercent(100); got != ServerGOGC {
		t.Errorf("GOGC = %d, want %d", got, ServerGOGC)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got != 900<<20 {
		t.Errorf("memory limit = %d, want %d", got, 900<<20)
	}

	// No container limit: no memory limit.
	tuneGC(log, func() (uint64, error) { return 0, memlimit.ErrNoLimit })
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("memory limit without a container limit = %d", got)
	}

	// The operator's settings win.
	t.Setenv("GOGC", "50")
	t.Setenv("GOMEMLIMIT", "300MiB")
	debug.SetGCPercent(50)
	tuneGC(log, memlimit.Limit(1000<<20))
	if got := debug.SetGCPercent(100); got != 50 {
		t.Errorf("GOGC = %d with GOGC=50 set", got)
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("memory limit = %d with GOMEMLIMIT set", got)
	}
}
