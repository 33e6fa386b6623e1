package chat

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/mozaiks/mozaiks/internal/engine"
	"github.com/mozaiks/mozaiks/internal/store"
)

// Recover finds the chats that a crashed or killed process left in
// progress and queues their recovery: each interrupted run continues from
// its last stored step, then every acknowledged message that no run has
// answered yet gets its run, in order. It returns how many chats it queued.
func (m *Manager) Recover(ctx context.Context) (int, error) {
	const page = 1000
	seen := map[string]bool{}
	n := 0
	for {
		sessions, err := m.opts.Store.ListUnfinished(ctx, page)
		if err != nil {
			return n, err
		}
		fresh := 0
		for _, sess := range sessions {
			key := sess.AppID + "\x00" + sess.ChatID
			if seen[key] {
				continue
			}
			seen[key] = true
			fresh++
			m.enqueueChat(sess.AppID, sess.ChatID, job{resume: true})
		}
		n += fresh
		if len(sessions) < page || fresh == 0 {
			return n, nil
		}
	}
}

// RecoverInBackground runs Recover until it succeeds once (the database may
// be unreachable at start-up), retrying every interval until the manager
// shuts down.
func (m *Manager) RecoverInBackground(interval time.Duration) {
	m.runs.add()
	go func() {
		defer m.runs.done()
		if !m.opts.SingleProcess {
			// Other replicas may be running any chat that is in progress:
			// take over only those nobody has touched for a lease, now and
			// from then on (sweep).
			m.sweepEvery(m.opts.LeaseTTL / 2)
			return
		}
		for {
			n, err := m.Recover(m.base)
			if err == nil {
				if n > 0 {
					m.log.Info("recovering chats left in progress", "chats", n)
				}
				return
			}
			m.log.Warn("list chats left in progress; retrying", "err", err, "in", interval)
			select {
			case <-m.base.Done():
				return
			case <-time.After(interval):
			}
		}
	}()
}

// sweepEvery takes over the chats that other replicas left, looking every
// interval and again as soon as a chat in progress it saw would be a lease
// old (but at most every interval/5): the chats of a replica that died are
// taken over when its leases run out, not up to a sweep later.
func (m *Manager) sweepEvery(interval time.Duration) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-m.base.Done():
			return
		case <-t.C:
		}
		next := time.Now().Add(interval)
		n, due, err := m.sweep(m.base)
		switch {
		case err != nil:
			m.log.Warn("look for chats other replicas left", "err", err)
		case n > 0:
			m.log.Info("taking over chats left by another replica", "chats", n)
		}
		if !due.IsZero() && due.Before(next) {
			next = due
		}
		t.Reset(max(time.Until(next), interval/5))
	}
}

// recoverChat runs under the chat's lease: it resumes the chat's last run if
// it did not end, then answers the messages no run has read.
func (m *Manager) recoverChat(ctx context.Context, r *room, log *slog.Logger) {
	ctx = inRecovery(ctx)
	// The writes queued so far are done (or refused, after a failed one).
	// Then everything is read from the store, in a new chain of writes: a
	// run whose writes failed left a state and a cache the store does not
	// have.
	m.flush(ctx, r)
	r.mu.Lock()
	r.chain, r.broken, r.last = &runWrites{}, false, nil
	r.mu.Unlock()
	sess, err := m.opts.Store.GetSession(ctx, r.appID, r.chatID)
	if err != nil {
		log.Error("load session for recovery", "err", err)
		if errors.Is(err, store.ErrUnavailable) {
			_, _ = m.retryRecovery(r)
		}
		return
	}
	if sess.Status != store.StatusInProgress {
		return // finished since it was listed
	}
	m.active.Add(1) // recovering counts as a live run
	defer m.active.Add(-1)
	if err := m.loadTranscript(ctx, r, sess); err != nil {
		log.Error("load transcript for recovery", "err", err)
		if errors.Is(err, store.ErrUnavailable) {
			_, _ = m.retryRecovery(r)
		}
		return
	}
	if gf, ok := m.opts.Store.(store.GapFiller); ok && !m.opts.SingleProcess {
		// The dead process may have taken seqs it never stored. Mark them
		// lost now: no reader (this replica's sockets, the others', the
		// relay) waits for them, and an insert of the dead process still in
		// flight can no longer land behind this recovery's back (it finds
		// its seq taken). A live replica's append that loses its seq this
		// way takes the next one.
		if n, err := gf.FillGaps(ctx, r.appID, r.chatID, sess.LastSeq); err != nil {
			log.Warn("mark lost seqs", "err", err)
		} else if n > 0 {
			log.Info("marked seqs the dead process never stored", "seqs", n)
		}
		if r.readPoint() < sess.LastSeq {
			// Readers stopped at a gap that is marked now: read again. (Not
			// the last seq cached: this process's own writes are cached as
			// they are stored, above a read that stopped at the gap.)
			r.mu.Lock()
			r.tr = transcript{}
			r.mu.Unlock()
			if err := m.loadTranscript(ctx, r, sess); err != nil {
				log.Error("load transcript for recovery", "err", err)
				return
			}
		}
	}
	// Sockets watching the chat get what the dead process stored and never
	// sent, in order, the lost seqs skipped.
	m.relayCatchUp(ctx, r)
	st, _ := engine.DecodeState(sess.State)
	open, unanswered := r.pending(st)
	log.Info("recovering chat", "interrupted_run", open, "unanswered_messages", len(unanswered))
	// Until the last of them has its run, every run's end leaves the chat
	// in progress, so that a crash during recovery still finds them.
	setBacklog := func(n int) {
		r.mu.Lock()
		r.backlog = n
		r.mu.Unlock()
	}
	setBacklog(len(unanswered))
	defer setBacklog(0)
	if open {
		m.runLeased(ctx, r, job{resume: true}, log)
	}
	for i, ev := range unanswered {
		if ctx.Err() != nil || m.chainBroke(ctx, r) {
			return // the recovery queued by the failed write goes on
		}
		setBacklog(len(unanswered) - i - 1)
		msg := newOp()
		msg.data, msg.ev = ev.Data, store.Event{Seq: ev.Seq}
		close(msg.done)
		id := str(ev.Data["message_id"])
		m.runLeased(ctx, r, job{msg: msg, msgID: id, input: &engine.Input{Kind: engine.InputMessage,
			Text: str(ev.Data["content"]), RequestID: str(ev.Data["request_id"])}}, log)
	}
	if !open && len(unanswered) == 0 {
		if !st.Started && sess.LastSeq == 0 {
			// An AgentDriven start that never got going: start it.
			m.runLeased(ctx, r, job{}, log)
			return
		}
		m.settle(ctx, r, st)
	}
}

// runBroke is told by the chat's writer that a write of a run failed
// (runWrites): the run's later writes, its end included, are not stored, so
// the chat stays in progress. Its sockets learn that the reply is being
// retried, and its recovery is queued: it continues the run from its last
// stored step, or answers the message again if not even the run's start was
// stored. A run fenced off needs none: another replica runs the chat.
// Every later job of the chat here goes through recovery first (runOne).
func (m *Manager) runBroke(r *room, err error) {
	r.mu.Lock()
	r.broken, r.last = true, nil
	r.mu.Unlock()
	if errors.Is(err, store.ErrFenced) {
		// Another replica runs the chat: when this one takes it again, it
		// reads it from the store, in a new chain. (Logged: a run's end
		// refused this way leaves its message to the other replica.)
		m.log.Info("a write of the run was refused: another replica holds the chat's lease", "chat_id", r.chatID)
		return
	}
	m.log.Warn("a write of the run failed; the chat will be recovered", "chat_id", r.chatID, "err", err)
	wait, ok := m.retryRecovery(r)
	if errors.Is(err, errInputNotStored) {
		// The user was told to send the message again. Recovery answers
		// it only if the write landed after all (it timed out).
		return
	}
	f := Encode("chat.status", 0, time.Now(), map[string]any{"kind": engine.KindStatus, "state": "retrying", "cause": "store",
		"retry_in_ms": wait.Milliseconds(), "message": "the database did not take the reply; it will be answered again"}, false)
	if !ok {
		f = ErrorFrame("STORE_UNAVAILABLE", "the database keeps refusing this chat's writes; the last answer was not stored. Send a message to try again", true)
	}
	m.fanout(r, f)
	m.relayTransient(r, f) // relay:
}

// chainBroke waits for the chat's queued writes and reports whether one of
// its runs' writes failed.
func (m *Manager) chainBroke(ctx context.Context, r *room) bool {
	m.flush(ctx, r)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.broken
}

// retryRecovery queues the chat's recovery after a backoff (1 s, doubling
// up to 30 s while it keeps failing) and returns the backoff. After
// maxRecoveries in a row it stops (ok false): a write the database refuses
// for good (a document too large, say) would otherwise have the model asked
// again forever. The chat stays in progress and broken, so the user's next
// message, the next start or another replica's sweep tries again. A server
// stopping leaves the chat in progress for the next start or a sweep.
func (m *Manager) retryRecovery(r *room) (wait time.Duration, ok bool) {
	r.mu.Lock()
	r.retries++
	n := r.retries
	if n > maxRecoveries {
		r.retries = 0
	}
	r.mu.Unlock()
	if n > maxRecoveries {
		m.log.Error("the chat's writes keep failing; no more recoveries until its next message", "chat_id", r.chatID, "attempts", maxRecoveries)
		return 0, false
	}
	wait = min(m.retryBase<<min(n-1, 5), 30*m.retryBase)
	time.AfterFunc(wait, func() {
		if m.closing.Load() || m.base.Err() != nil {
			return
		}
		m.enqueueChat(r.appID, r.chatID, job{resume: true})
	})
	return wait, true
}

// maxRecoveries bounds the recoveries queued in a row after failed writes
// (about a minute of backoff).
const maxRecoveries = 6

// pending is pendingWork on the room's cached transcript, the messages
// queued here left out.
func (r *room) pending(st engine.State) (bool, []engine.StoredEvent) {
	r.mu.Lock()
	evs, later := r.tr.evs, r.queuedLocked()
	r.mu.Unlock()
	return pendingWork(evs, st, later)
}

// pendingWork reads a chat's events: whether its last run is unfinished (it
// started after the run the state records the end of, and did not
// complete), and which user messages no run has answered, in order.
//
// A message is answered by the run whose run_start names it, unless that
// run stored nothing of its answer (only its opening run_start and
// select_speaker) before another run started: its replica lost the chat, or
// the rest of its writes, and only the last run is resumed, so the message
// is answered again. (Seen in CI under load: a fenced-off run's run_start
// stored, the next message's run stored after it, the first message never
// answered.)
func pendingWork(evs []engine.StoredEvent, st engine.State, later map[string]bool) (bool, []engine.StoredEvent) {
	consumed := map[int64]bool{}
	lastRun := ""
	var input int64 // the message of the run being read
	answering := false
	for _, ev := range evs {
		switch {
		case ev.Kind == engine.KindRunStart:
			if input > 0 && answering {
				consumed[input] = true
			}
			input, answering = engine.InputSeq(ev), false
			lastRun = str(ev.Data["run_id"])
		case ev.Kind == engine.KindRunComplete:
			lastRun = ""
			answering = true
		case ev.Kind == engine.KindText && ev.Agent != "user", ev.Kind == engine.KindToolCall, ev.Kind == engine.KindToolResponse,
			ev.Kind == engine.KindInputRequest, ev.Kind == engine.KindError:
			answering = true // a reply, a tool call or its result, a question, an error
		}
	}
	if input > 0 {
		consumed[input] = true // the last run: resumed if unfinished (open)
	}
	open := lastRun != "" && lastRun != st.Run && !askedAfterLastRun(evs)
	var unanswered []engine.StoredEvent
	for _, ev := range evs {
		if ev.Kind == engine.KindText && ev.Agent == "user" && !consumed[ev.Seq] && !later[str(ev.Data["message_id"])] {
			unanswered = append(unanswered, ev)
		}
	}
	return open, unanswered
}

// readPoint is how far the room's cache is known complete: the seq its
// last store read reached (transcript.readTo).
func (r *room) readPoint() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tr.readTo
}

// catchUp adds to the room's cached transcript what other replicas stored
// since it was read (a no-op while the cache is not loaded).
func (m *Manager) catchUp(ctx context.Context, r *room) error {
	r.mu.Lock()
	loaded, from := r.tr.loaded, r.tr.readTo
	r.mu.Unlock()
	if !loaded {
		return nil
	}
	var evs []engine.StoredEvent
	read, _, err := m.scan(ctx, r.appID, r.chatID, from, func(ev store.Event) { evs = append(evs, decodeEvent(ev)) })
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.tr.loaded {
		return nil // dropped meanwhile: the next run loads it again
	}
	for _, ev := range evs {
		r.tr.add(ev)
	}
	r.tr.readTo = max(r.tr.readTo, read)
	return nil
}

// consumed reports whether a stored run_start already answers msg.
func (m *Manager) consumed(ctx context.Context, r *room, msg *op) bool {
	ev, err := msg.wait(ctx)
	if err != nil || ev.Seq == 0 {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.tr.evs {
		if engine.InputSeq(e) == ev.Seq {
			return true
		}
	}
	return false
}

// sweep queues the recovery of chats that are in progress with nobody
// working on them: not run here, and untouched for a lease's time (a
// replica that died, or one that handed its runs off at shutdown). A live
// run renews its lease, which bumps the chat's UpdatedAt, so the sweep does
// not even try those; a lease taken in between makes it give up at once.
func (m *Manager) sweep(ctx context.Context) (n int, due time.Time, err error) {
	sessions, err := m.opts.Store.ListUnfinished(ctx, 1000)
	if err != nil {
		return 0, time.Time{}, err
	}
	for _, sess := range sessions {
		if stale := sess.UpdatedAt.Add(m.opts.LeaseTTL); time.Now().Before(stale) {
			// Alive, or not yet known dead: look again when it would be stale.
			if due.IsZero() || stale.Before(due) {
				due = stale
			}
			continue
		}
		m.mu.Lock()
		r := m.rooms[sess.AppID+"\x00"+sess.ChatID]
		m.mu.Unlock()
		if r != nil {
			r.mu.Lock()
			busy := r.running || len(r.queue) > 0
			r.mu.Unlock()
			if busy {
				continue
			}
		}
		m.enqueueChat(sess.AppID, sess.ChatID, job{resume: true, sweep: true})
		n++
	}
	return n, due, nil
}
