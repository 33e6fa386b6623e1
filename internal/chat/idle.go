package chat

import (
	"context"

	"github.com/mozaiks/mozaiks/internal/store"
)

// endUpdate is the session update a run ends with (u, its status picked
// when stored: statusAfter). On several replicas its status applies only if
// nobody else stored anything in the chat since the run read it up to seq
// read (store.SessionUpdate.StatusUnlessAfter): another replica may have
// stored a user message meanwhile (the chat in progress) and stopped before
// answering it; marking the chat idle over it would hide it from every
// sweep. The run's own events are stored first, so the seq it may find is
// read plus those of them this process cached; a seq it did not store or
// read (a hole in its cache) fails the condition too.
func (m *Manager) endUpdate(ctx context.Context, r *room, read int64, u store.SessionUpdate) store.SessionUpdate {
	if m.opts.SingleProcess {
		return u
	}
	m.flush(ctx, r)
	n, top := r.cachedAfter(read)
	if top-read > n {
		// Another replica stored an event among the run's own: the cache
		// would never get it (catching up reads after its last seq), and
		// the next run here would not see it either. Read the chat again
		// for that one.
		r.mu.Lock()
		r.tr = transcript{}
		r.mu.Unlock()
	}
	upTo := read + n
	u.StatusUnlessAfter = &upTo
	return u
}

// cachedAfter counts the seqs in the room's cache after seq, and returns
// the highest. An event can be cached twice (a catch-up read and the writer
// both add one just stored), so it counts seqs, not entries.
func (r *room) cachedAfter(seq int64) (n, top int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[int64]bool{}
	top = seq
	for _, ev := range r.tr.evs {
		if ev.Seq > seq {
			seen[ev.Seq] = true
			top = max(top, ev.Seq)
		}
	}
	return int64(len(seen)), top
}
