package chat

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"

	"github.com/mozaiks/mozaiks/internal/engine"
	"github.com/mozaiks/mozaiks/internal/store"
)

// transcript is an active chat's recent events, decoded once: a turn reads
// memory, not the whole chat from the store. It lives as long as its room
// (a socket watches, a run or a write is going) and holds at most the
// manager's HistoryEvents (twice that just before a trim).
type transcript struct {
	loaded  bool
	loading bool
	evs     []engine.StoredEvent // in seq order, each seq once
	during  []engine.StoredEvent // stored while the cache was being loaded
	limit   int
	// readTo: every event up to this seq that the store holds is cached
	// (the last store read went this far). Events this process stored are
	// cached as they are stored, so with several replicas the cache can
	// have a hole below its last seq: another replica's event, stored in
	// between. Catching up reads from readTo, not from the last seq cached.
	readTo int64
}

// add caches ev in seq order, once: an event can reach the cache from its
// writer and from a store read both.
func (t *transcript) add(ev engine.StoredEvent) {
	n := len(t.evs)
	if n == 0 || ev.Seq > t.evs[n-1].Seq {
		t.evs = append(t.evs, ev)
	} else {
		i, found := slices.BinarySearchFunc(t.evs, ev.Seq, func(e engine.StoredEvent, seq int64) int { return cmp.Compare(e.Seq, seq) })
		if found || i == 0 {
			return // cached already, or older than what the cache keeps
		}
		// Into a new array: runs may hold windows of the old one (window).
		t.evs = slices.Insert(slices.Clip(t.evs), i, ev)
	}
	if t.limit > 0 && len(t.evs) > 2*t.limit {
		t.evs = append([]engine.StoredEvent(nil), t.evs[len(t.evs)-t.limit:]...)
	}
}

// remember adds a stored event to the room's cache. The writer calls it.
func (r *room) remember(ev engine.StoredEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := &r.tr
	switch {
	case t.loaded:
		t.add(ev)
	case t.loading:
		t.during = append(t.during, ev)
	}
}

// transcriptFor returns what the engine sees for job j: the cached events
// (loaded from the store on a room's first run), user messages placed where
// the workflow read them, the one j answers last (stored or not yet).
func (m *Manager) transcriptFor(ctx context.Context, r *room, sess store.Session, j job) ([]engine.StoredEvent, error) {
	if err := m.ensureTranscript(ctx, r, sess); err != nil {
		return nil, err
	}
	r.mu.Lock()
	evs := window(r.tr.evs, m.opts.HistoryMessages)
	later := r.queuedLocked()
	r.mu.Unlock()
	if j.resume {
		if later == nil {
			later = map[string]bool{}
		}
		unconsumedLater(evs, later)
	}
	var cur *engine.StoredEvent
	if j.msg != nil {
		cur = &engine.StoredEvent{Kind: engine.KindText, Agent: "user", Data: j.msg.data}
	}
	return orderTranscript(evs, j.msgID, cur, later), nil
}

// ensureTranscript loads the room's transcript from the store unless it is
// cached.
func (m *Manager) ensureTranscript(ctx context.Context, r *room, sess store.Session) error {
	r.mu.Lock()
	loaded := r.tr.loaded
	r.mu.Unlock()
	if loaded {
		return nil
	}
	return m.loadTranscript(ctx, r, sess)
}

// queuedLocked is the set of message ids whose runs wait in the chat's
// queue (r.mu held): they are answered later, not by the run at hand.
func (r *room) queuedLocked() map[string]bool {
	var later map[string]bool // nil, read as empty, when nothing waits
	for _, q := range r.queue {
		if q.msgID != "" {
			if later == nil {
				later = map[string]bool{}
			}
			later[q.msgID] = true
		}
	}
	return later
}

// window is the part of a chat's cached events a run needs: those the
// model's history is built from (engine.RecentHistory), from the last
// run_start on at least (a recovered run continues from it), and the user
// messages before them that a run among them answers (orderTranscript moves
// those to it). A turn of a long chat then costs what one of a short chat does.
// Without such earlier messages it is a view of all, not a copy, clipped so
// that appending to it never writes into all's array; the cache only ever
// appends past the end of its array or replaces it (transcript.add), so the
// view stays as it was when taken.
func window(all []engine.StoredEvent, historyMessages int) []engine.StoredEvent {
	k := len(all) - len(engine.RecentHistory(all, historyMessages))
	last := len(all) - 1
	for last >= 0 && all[last].Kind != engine.KindRunStart {
		last--
	}
	if last >= 0 && last < k {
		k = last
	}
	if k == 0 {
		return slices.Clip(all)
	}
	var before []engine.StoredEvent
	first := all[k].Seq
	for i := k; i < len(all); i++ {
		if s := engine.InputSeq(all[i]); s > 0 && s < first {
			// Cached events are in seq order.
			if j, ok := slices.BinarySearchFunc(all[:k], s, func(e engine.StoredEvent, s int64) int { return cmp.Compare(e.Seq, s) }); ok {
				before = append(before, all[j])
			}
		}
	}
	if len(before) == 0 {
		return slices.Clip(all[k:])
	}
	slices.SortFunc(before, func(a, b engine.StoredEvent) int { return cmp.Compare(a.Seq, b.Seq) })
	out := make([]engine.StoredEvent, 0, len(before)+len(all)-k+1)
	return append(append(out, before...), all[k:]...)
}

// loadTranscript fills the room's cache with the chat's last events.
func (m *Manager) loadTranscript(ctx context.Context, r *room, sess store.Session) error {
	r.mu.Lock()
	r.tr.loading, r.tr.during, r.tr.limit = true, nil, m.opts.HistoryEvents
	r.mu.Unlock()
	var evs []engine.StoredEvent
	from := max(sess.LastSeq-int64(m.opts.HistoryEvents), 0)
	_, _, err := m.scan(ctx, r.appID, r.chatID, from, func(ev store.Event) {
		evs = append(evs, decodeEvent(ev))
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tr.loading = false
	if err != nil {
		r.tr.during = nil
		return err
	}
	read := from
	if len(evs) > 0 {
		read = evs[len(evs)-1].Seq
	}
	during := r.tr.during
	r.tr.evs, r.tr.during, r.tr.loaded, r.tr.readTo = evs, nil, true, read
	for _, ev := range during {
		r.tr.add(ev)
	}
	return nil
}

func decodeEvent(ev store.Event) engine.StoredEvent {
	var data map[string]any
	_ = json.Unmarshal(ev.Data, &data)
	return engine.NewStoredEvent(ev.Seq, kindOf(ev.Type), ev.Agent, data)
}

// runHeadroom is room for the events a run typically adds to its transcript
// (its start, speaker, usage, reply and input request, a few tool calls).
const runHeadroom = 16

// orderTranscript puts user messages where the workflow read them rather
// than where they were stored. A message sent during a run is stored (and
// acknowledged) at once, so its seq falls inside the run it interrupted; the
// run that answers it records input_seq on its run_start. Messages still
// queued for later runs are left out, and the one this run answers (curID,
// given as cur in case it is not stored yet) goes last.
func orderTranscript(evs []engine.StoredEvent, curID string, cur *engine.StoredEvent, later map[string]bool) []engine.StoredEvent {
	// The seqs of the messages the window's runs answered, in order (runs
	// start in the order of their messages, so this is sorted already but
	// for a recovered chat's oddities).
	var buf [32]int64
	consumed := buf[:0]
	for i := range evs {
		if s := engine.InputSeq(evs[i]); s > 0 {
			consumed = append(consumed, s)
		}
	}
	if !slices.IsSorted(consumed) {
		slices.Sort(consumed)
	}
	// Messages waiting for the run_start that answers them: that comes
	// right after its message unless the message came during another run,
	// so this holds one or two.
	var held []engine.StoredEvent
	// The run appends its events to this slice (engine.RunRequest.Transcript).
	out := make([]engine.StoredEvent, 0, len(evs)+1+runHeadroom)
	for i := range evs {
		ev := &evs[i]
		if ev.Kind == engine.KindText && ev.Agent == "user" {
			// Only a user message's id is looked up: most events are not one.
			id := str(ev.Data["message_id"])
			if curID != "" && id == curID {
				c := *ev
				cur = &c
				continue
			}
			if later[id] {
				continue
			}
			if _, ok := slices.BinarySearch(consumed, ev.Seq); ok {
				held = append(held, *ev)
				continue
			}
		}
		if s := engine.InputSeq(*ev); s > 0 {
			if k := slices.IndexFunc(held, func(u engine.StoredEvent) bool { return u.Seq == s }); k >= 0 {
				out = append(out, held[k])
				held = slices.Delete(held, k, k+1)
			}
		}
		out = append(out, *ev)
	}
	if cur != nil {
		out = append(out, *cur)
	}
	return out
}
