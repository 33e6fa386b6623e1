package app

import (
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// ServerGOGC is the garbage collector's target `mozaiks serve` runs with
// when GOGC is not set: the heap may grow to three times what is live
// between collections instead of twice. A server's live heap is small (about
// 15 MB with 100 chats streaming) and a collection costs the same whatever
// the garbage, so fewer of them: at 100 chats sent to at once, 19% less CPU
// per turn and 28% less added time to first token at the median, for 19%
// more memory per idle socket (12.6 -> 15.0 KiB; BENCHMARKS.md).
const ServerGOGC = 200

// memLimitRatio: GOMEMLIMIT is set to this share of the container's memory
// limit (cgroup), so the collector works harder as the heap nears it instead
// of the process being killed.
const memLimitRatio = 0.9

// TuneGC sets the garbage collector for a server process, unless the
// operator did: GOGC (ServerGOGC otherwise), and GOMEMLIMIT from the cgroup
// memory limit when there is one (off with AUTOMEMLIMIT=off, or when
// GOMEMLIMIT is set).
func TuneGC(log *slog.Logger) {
	tuneGC(log, memlimit.FromCgroup)
}

func tuneGC(log *slog.Logger, limit memlimit.Provider) {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(ServerGOGC)
	}
	// No limit (outside a container, or an unlimited one) is not an error;
	// a cgroup that cannot be read is logged and left alone.
	_, _ = memlimit.Set(memlimit.WithRatio(memLimitRatio), memlimit.WithProvider(limit), memlimit.WithLogger(log))
}
