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
	upTo := read + r.cachedAfter(read)
	u.StatusUnlessAfter = &upTo
	return u
}

// cachedAfter counts the seqs in the room's cache after seq. An event can
// be cached twice (a catch-up read and the writer both add one just
// stored), so it counts seqs, not entries.
func (r *room) cachedAfter(seq int64) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[int64]bool{}
	for i := len(r.tr.evs) - 1; i >= 0; i-- {
		if s := r.tr.evs[i].Seq; s > seq {
			seen[s] = true
		}
	}
	return int64(len(seen))
}
