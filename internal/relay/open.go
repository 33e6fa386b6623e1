package relay

import (
	"context"
	"log/slog"

	"github.com/mozaiks/mozaiks/internal/store"
)

// For returns the relay that suits st, and a function that stops it: Local
// for a store only one process can open (the embedded store), a Poller for
// one that offers a store.Feed. A server with change streams (a replica set,
// Atlas) is polled too for now: it is logged, so that a deployment knows
// what it would gain from a change-stream relay.
func For(ctx context.Context, st store.Store, o Options) (Relay, func()) {
	feed, ok := st.(store.Feed)
	if !ok {
		return Local{}, func() {}
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if ix, ok := st.(interface{ EnsureFeedIndexes(context.Context) error }); ok {
		if err := ix.EnsureFeedIndexes(ctx); err != nil {
			// Only slower without them; a store down at start gets them
			// from nobody, which costs scans until a restart.
			log.Warn("relay: create indexes", "err", err)
		}
	}
	if cs, ok := st.(interface {
		ChangeStreams(context.Context) (bool, error)
	}); ok {
		if yes, err := cs.ChangeStreams(ctx); err == nil && yes {
			log.Info("relay: the server has change streams; live frames are shared by polling (change-stream mode is not built yet)")
		}
	}
	p := NewPoller(feed, o)
	return p, p.Close
}
