package chat

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/mozaiks/mozaiks/internal/engine"
	"github.com/mozaiks/mozaiks/internal/store"
)

// enqueueChat queues j on the chat's live room; enqueueLocked starts the
// chat's run loop when none is going.
func (m *Manager) enqueueChat(appID, chatID string, j job) {
	r := m.lockRoom(appID, chatID)
	defer r.mu.Unlock()
	m.enqueueLocked(r, j)
}

func (m *Manager) enqueueLocked(r *room, j job) {
	r.queue = append(r.queue, j)
	if r.running || m.closing.Load() {
		return
	}
	r.running = true
	m.runs.add()
	go m.runLoop(r)
}

// runLoop runs the chat's queued jobs one after another.
func (m *Manager) runLoop(r *room) {
	defer m.runs.done()
	for {
		r.mu.Lock()
		if len(r.queue) == 0 || m.closing.Load() {
			r.running = false
			r.mu.Unlock()
			m.forget(r)
			return
		}
		j := r.queue[0]
		r.queue = r.queue[1:]
		ctx, cancel := context.WithCancel(m.base)
		r.cancel = cancel
		r.mu.Unlock()

		m.runOne(ctx, r, j)

		r.mu.Lock()
		r.cancel = nil
		r.mu.Unlock()
		cancel()
	}
}

// runOne takes the chat's lease, runs the engine from the transcript and
// state, and stores the state it ends in.
func (m *Manager) runOne(ctx context.Context, r *room, j job) {
	log := m.log.With("app_id", r.appID, "chat_id", r.chatID)
	if !m.opts.SingleProcess {
		if j.sweep {
			if ok, err := m.opts.Store.AcquireLease(ctx, r.appID, r.chatID, m.opts.Owner, m.opts.LeaseTTL); !ok || err != nil {
				return // a live replica runs it
			}
			r.mu.Lock()
			r.stopRenew, r.fence, r.fencedOff = m.renewLease(ctx, r), m.opts.Owner, false
			r.mu.Unlock()
		} else if !m.lease(ctx, r, log) {
			return
		}
		defer m.unlease(r, log)
		// Everything the run wrote is stored before the lease is let go:
		// the next replica to take the chat must see how the run ended.
		defer func() {
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*storeTimeout)
			defer cancel()
			m.flush(fctx, r)
		}()
		// Other replicas may have run the chat since this one last did.
		r.setLast(nil)
		if err := m.catchUp(ctx, r); err != nil {
			log.Error("read the chat's latest events", "err", err)
			return
		}
	}
	r.mu.Lock()
	broken := r.broken
	r.mu.Unlock()
	switch {
	case j.resume:
		m.recoverChat(ctx, r, log)
	case broken:
		// A run whose writes failed left work unstored: recovery does it
		// first, and answers j's message (stored, or the user was told to
		// send it again) in its turn. A UI tool's answer runs after it.
		m.recoverChat(ctx, r, log)
		if j.msg == nil && j.input != nil {
			m.runLeased(ctx, r, j, log)
		}
	default:
		m.runLeased(ctx, r, j, log)
	}
	if !m.opts.SingleProcess {
		m.answerStrays(ctx, r, log)
	}
}

// answerStrays answers, before the lease is let go, the messages other
// replicas stored during the run and will not run themselves (one stopped
// between storing a message and answering it): the run's end just marked
// the chat as waiting for the user, so no sweep would find them.
func (m *Manager) answerStrays(ctx context.Context, r *room, log *slog.Logger) {
	if ctx.Err() != nil || m.closing.Load() || ctx.Value(recoveringKey{}) != nil {
		return
	}
	m.flush(ctx, r)
	if err := m.catchUp(ctx, r); err != nil {
		return
	}
	if _, stray := r.pending(engine.State{}); len(stray) == 0 {
		return
	}
	log.Info("answering messages another replica stored and left")
	busy := store.StatusInProgress
	m.postUpdate(r, store.SessionUpdate{Status: &busy}, nil)
	m.flush(ctx, r)
	m.recoverChat(inRecovery(ctx), r, log)
}

// lease takes the chat's run lease (waiting for another replica's run, or a
// crashed process's lease to expire) and keeps renewing it.
func (m *Manager) lease(ctx context.Context, r *room, log *slog.Logger) bool {
	if !m.acquire(ctx, r) {
		if ctx.Err() == nil {
			log.Warn("could not take the chat's run lease; input stays stored for the next run")
		}
		return false
	}
	r.mu.Lock()
	r.stopRenew, r.fence, r.fencedOff = m.renewLease(ctx, r), m.opts.Owner, false
	r.mu.Unlock()
	return true
}

func (m *Manager) unlease(r *room, log *slog.Logger) {
	r.mu.Lock()
	stop := r.stopRenew
	r.stopRenew, r.fence = nil, ""
	r.mu.Unlock()
	if stop != nil {
		stop()
	}
	rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.opts.Store.ReleaseLease(rctx, r.appID, r.chatID, m.opts.Owner); err != nil {
		log.Warn("release run lease", "err", err)
	}
}

// runLeased runs one job once this process may run the chat. Nothing is
// written before the model is called: the run's bookkeeping events queue
// behind the user's message and are stored while the model thinks.
func (m *Manager) runLeased(ctx context.Context, r *room, j job, log *slog.Logger) {
	r.mu.Lock()
	r.runs++
	r.mu.Unlock()
	sess, st, ok := m.runState(ctx, r, log)
	if !ok {
		return
	}
	if j.input == nil && st.Started && !j.resume {
		m.settleUnlessLeft(ctx, r, sess, st, log)
		return // a start that another connect or replica already did
	}
	transcript, err := m.transcriptFor(ctx, r, sess, j)
	if err != nil {
		log.Error("load transcript for run", "err", err)
		return
	}
	read := r.readPoint() // what the run's end may mark idle (endUpdate)
	if !m.opts.SingleProcess && j.msg != nil && m.consumed(ctx, r, j.msg) {
		// Another replica's recovery answered this message while it
		// waited for the lease.
		log.Info("message already answered by another replica", "message_id", j.msgID)
		m.settleUnlessLeft(ctx, r, sess, st, log)
		return
	}
	if m.leftoverWork(ctx, r, j, sess, st) {
		log.Info("answering first the messages a stopped replica left unanswered", "message_id", j.msgID)
		m.recoverChat(ctx, r, log)
		return
	}
	m.active.Add(1)
	m.observer().RunStarted()
	r.mu.Lock()
	if r.chain == nil {
		r.chain = &runWrites{}
	}
	chain := r.chain
	r.mu.Unlock()
	sink := &roomSink{m: m, r: r, sess: sess, input: j.msg, chunks: chunks{m: m, r: r, every: m.opts.PrintEvery}, run: chain}
	input := j.input
	if j.resume {
		input = &engine.Input{Kind: engine.InputResume}
	}
	res, err := m.opts.Runner.Run(ctx, engine.RunRequest{Workflow: sess.Workflow, AppID: r.appID, UserID: sess.UserID,
		ChatID: r.chatID, Transcript: transcript, State: st, Input: input, Sink: sink})
	m.active.Add(-1)
	sink.chunks.flush() // its last chunks go before anything the run's end posts

	// Record how the run ended even if it was cancelled.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*storeTimeout)
	defer cancel()
	if errors.Is(err, store.ErrFenced) {
		// Another replica took the chat over: this run writes nothing more.
		log.Warn("run stopped: another replica holds the chat's lease now")
		m.observer().RunFinished(store.StatusFailed)
		sink.reset()
		r.setLast(nil)
		return
	}
	if err != nil {
		log.Error("run failed", "err", err)
		m.observer().RunFinished(store.StatusFailed)
		if !errors.Is(err, store.ErrUnavailable) && !sink.failed() {
			sink.post(eventOp("chat.error", "", map[string]any{"kind": "error", "message": "the workflow stopped on an internal error",
				"error_code": "RUN_FAILED", "retryable": true}, false, nil))
		}
		// The chat stays usable: the next message starts a new run. (Not if
		// the store failed a write of the run: see runWrites.)
		sink.post(updateOp(m.endUpdate(pctx, r, read, store.SessionUpdate{}), m.statusAfter(r, store.StatusAwaitingInput)))
		m.flush(pctx, r)
		sink.reset()
		r.setLast(nil)
		return
	}
	m.observer().RunFinished(res.Status)
	if res.Reason == engine.ReasonCancelled && m.closing.Load() {
		// A graceful shutdown hands the run off: it stays open and in
		// progress, and whoever recovers the chat next (another replica's
		// sweep, or this server after its restart) continues it from its
		// last stored step.
		log.Info("run handed off at shutdown")
		m.flush(pctx, r)
		sink.reset()
		return
	}
	if !sink.completed && res.Reason == engine.ReasonCancelled {
		// The engine returns without run_complete when it is cancelled: the
		// clients still learn that the run is over.
		sink.post(eventOp("chat.run_complete", "", map[string]any{"kind": engine.KindRunComplete, "status": res.Status,
			"reason": res.Reason, "total_tokens": res.Tokens, "duration_sec": res.Duration.Seconds()}, false, nil))
	}
	status := cmp.Or(res.Status, store.StatusAwaitingInput)
	sink.post(updateOp(m.endUpdate(pctx, r, read, store.SessionUpdate{State: engine.EncodeState(res.State)}), m.statusAfter(r, status)))
	// The next run of this chat starts from this state at once, while the
	// update is being stored behind the run's events.
	r.setLast(&lastRun{sess: sess, state: res.State})
	sink.reset()
	log.Debug("run ended", "status", status, "reason", res.Reason, "tokens", res.Tokens, "duration", res.Duration)
}

// lastRun is how the chat's last run in this process ended: the next run
// starts from it instead of reading the session back, on a store that only
// this process writes.
type lastRun struct {
	sess  store.Session
	state engine.State
}

func (r *room) setLast(l *lastRun) {
	r.mu.Lock()
	r.last = l
	r.mu.Unlock()
}

// runState is the session and engine state a run starts from.
func (m *Manager) runState(ctx context.Context, r *room, log *slog.Logger) (store.Session, engine.State, bool) {
	r.mu.Lock()
	last := r.last
	r.mu.Unlock()
	if last != nil && m.opts.SingleProcess {
		return last.sess, last.state, true
	}
	sess, err := m.opts.Store.GetSession(ctx, r.appID, r.chatID)
	if err != nil {
		log.Error("load session for run", "err", err)
		return store.Session{}, engine.State{}, false
	}
	st, err := engine.DecodeState(sess.State)
	if err != nil {
		log.Error("stored engine state is unreadable; starting from a clean state", "err", err)
	}
	return sess, st, true
}

// statusAfter is the status a run leaves the chat in, decided when it is
// stored: still in progress while messages wait for their run or the next
// run has begun, so that a crash now finds them.
func (m *Manager) statusAfter(r *room, status string) func() string {
	r.mu.Lock()
	mine := r.runs
	r.mu.Unlock()
	return func() string {
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.queue) > 0 || r.runs != mine || r.backlog > 0 {
			return store.StatusInProgress
		}
		return status
	}
}

// settleUnlessLeft settles a chat that has nothing to run, unless another
// replica left it work: a run it did not finish (one fenced off when its
// lease was lost, the chat in progress) or a message no run read. Those are
// recovered now, under this run's lease; settling would mark the chat idle
// over them, and no sweep would find them again (seen: a connect after a
// fenced-off run left its question unanswered for good).
func (m *Manager) settleUnlessLeft(ctx context.Context, r *room, sess store.Session, st engine.State, log *slog.Logger) {
	if !m.opts.SingleProcess && sess.Status == store.StatusInProgress {
		if err := m.ensureTranscript(ctx, r, sess); err != nil {
			log.Error("load transcript", "err", err)
			return // the chat stays in progress for the sweep
		}
		if open, unanswered := r.pending(st); open || len(unanswered) > 0 {
			log.Info("recovering what another run left unfinished", "interrupted_run", open, "unanswered_messages", len(unanswered))
			m.recoverChat(ctx, r, log)
			return
		}
	}
	m.settle(ctx, r, st)
}

// settle marks a chat with nothing to run as no longer in progress.
func (m *Manager) settle(ctx context.Context, r *room, st engine.State) {
	status := store.StatusAwaitingInput
	if st.Done {
		status = store.StatusCompleted
	}
	m.postUpdate(r, store.SessionUpdate{}, m.statusAfter(r, status))
	m.flush(ctx, r)
}

func kindOf(typ string) string {
	if len(typ) > 5 && typ[:5] == "chat." {
		return typ[5:]
	}
	return typ
}

// acquire waits for the chat's lease: another replica's run, or a crashed
// process's lease until it expires.
func (m *Manager) acquire(ctx context.Context, r *room) bool {
	wait := 100 * time.Millisecond
	deadline := time.Now().Add(2*m.opts.LeaseTTL + 5*time.Second)
	for {
		ok, err := m.opts.Store.AcquireLease(ctx, r.appID, r.chatID, m.opts.Owner, m.opts.LeaseTTL)
		if ok {
			return true
		}
		if err != nil && !errors.Is(err, store.ErrUnavailable) {
			m.log.Warn("acquire run lease", "chat_id", r.chatID, "err", err)
			return false
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
		wait = min(wait*2, 2*time.Second)
	}
}

func (m *Manager) renewLease(ctx context.Context, r *room) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(m.opts.LeaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				// Renew, never retake: a lease that lapsed and was taken by
				// another replica (even one that released it since) means
				// the chat was run elsewhere, so this run must not go on.
				ok, err := m.opts.Store.RenewLease(ctx, r.appID, r.chatID, m.opts.Owner, m.opts.LeaseTTL)
				if err != nil && ctx.Err() == nil {
					m.log.Warn("renew run lease", "chat_id", r.chatID, "err", err)
				} else if !ok && err == nil {
					// Another replica took the chat over (this run stalled
					// past its lease): the run's writes are fenced off from
					// now on (store.ErrFenced); stop it too.
					m.log.Warn("run lease taken by another replica; stopping the run", "chat_id", r.chatID)
					r.mu.Lock()
					if r.cancel != nil {
						r.cancel()
					}
					r.mu.Unlock()
					return
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

// roomSink queues what the engine emits for the chat's writer. Only a tool
// call about to run waits for the store (a crash must not hide that a side
// effect may have happened); a write that failed stops the run at its next
// event.
type roomSink struct {
	m         *Manager
	r         *room
	sess      store.Session
	input     *op  // the user message this run answers; its seq goes on run_start
	completed bool // the engine emitted run_complete
	chunks    chunks
	run       *runWrites // the chain of the run's writes, its end included

	mu      sync.Mutex
	pending []*op
	err     error
}

// check returns the first failed write of this run, dropping finished ones.
func (s *roomSink) check() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	keep := s.pending[:0]
	for _, o := range s.pending {
		select {
		case <-o.done:
			if o.err != nil && s.err == nil {
				s.err = o.err
			}
		default:
			keep = append(keep, o)
		}
	}
	clear(s.pending[len(keep):])
	s.pending = keep
	return s.err
}

func (s *roomSink) track(o *op) {
	s.mu.Lock()
	s.pending = append(s.pending, o)
	s.mu.Unlock()
}

func (s *roomSink) failed() bool { return s.check() != nil }

// post queues o as the run's next write (its end included).
func (s *roomSink) post(o *op) *op {
	o.run = s.run
	return s.m.post(s.r, o)
}

func (s *roomSink) reset() {
	s.chunks.flush()
	s.mu.Lock()
	s.pending = nil
	s.mu.Unlock()
}

func (s *roomSink) Emit(ctx context.Context, ev engine.Event) error {
	if err := s.check(); err != nil {
		return err
	}
	if p, ok := ev.(engine.Print); ok {
		// Chunks carry no seq and are sent as they come (paced, see
		// stream.go), without waiting for the events queued before them
		// to be stored: the first token does not wait for the store.
		// Stored frames keep their seq order.
		s.chunks.print(p)
		return nil
	}
	s.chunks.flush() // what the run emits next goes after its chunks
	// Data builds a fresh map: the writer owns it from here.
	data := ev.Data()
	data["kind"] = ev.Kind()
	if _, ok := data["agent"]; !ok && ev.From() != "" {
		data["agent"] = ev.From()
	}
	typ := "chat." + ev.Kind()
	if !engine.Stored(ev) {
		f := Encode(typ, 0, time.Now(), data, false)
		s.m.fanout(s.r, f)
		s.m.relayTransient(s.r, f) // relay:
		return nil
	}
	o := eventOp(typ, ev.From(), data, false, nil)
	wait := false
	switch e := ev.(type) {
	case engine.RunStart:
		o.inputOf = s.input
		o.lazy = true
		s.m.hold(s.r)
		s.m.log.Debug("run start queued", "chat_id", s.r.chatID, "run_id", e.RunID, "input_seq", s.input.inputSeq())
	case engine.SelectSpeaker:
		o.lazy = true
	case engine.Text:
		o.message = true
	case engine.RunComplete:
		s.completed = true
	case engine.InputRequest:
		// What the chat waits for is stored with the question, before any
		// client can see it, so an answer that comes back at once finds it.
		kind, id := "input", e.RequestID
		o.update = &store.SessionUpdate{PendingKind: &kind, PendingID: &id}
	case engine.ToolCall:
		if e.UI == nil {
			wait = true // the tool runs next: its call is stored first
			break
		}
		kind, id := "ui_tool", e.UI.EventID
		o.update = &store.SessionUpdate{PendingKind: &kind, PendingID: &id}
		if e.UI.Display == "artifact" {
			if art, err := json.Marshal(map[string]any{"tool_name": e.Name, "component_type": e.UI.Component,
				"payload": e.UI.Payload, "eventId": e.UI.EventID}); err == nil {
				o.update.LastArtifact = art
			}
		}
	case engine.Usage:
		s.recordUsage(ctx, e)
	}
	s.post(o)
	if wait {
		_, err := o.wait(ctx)
		return err
	}
	s.track(o)
	return nil
}

// recordUsage stores one usage record (in order with the chat's events)
// and writes the per-call log line: the "token usage per (app_id, user_id,
// chat_id)" of the deployment guide.
func (s *roomSink) recordUsage(ctx context.Context, e engine.Usage) {
	u := store.UsageRecord{AppID: s.r.appID, UserID: s.sess.UserID, ChatID: s.r.chatID, Workflow: s.sess.Workflow, Agent: e.Agent,
		Model: e.Model, PromptTokens: int64(e.PromptTokens), CompletionTokens: int64(e.CompletionTokens),
		TotalTokens: int64(e.TotalTokens), Duration: e.Duration}
	o := newOp()
	o.usage = &u
	s.m.post(s.r, o)
	s.m.observer().LLMCall(u.Model, u.Duration, u.PromptTokens, u.CompletionTokens)
	s.m.log.LogAttrs(ctx, slog.LevelInfo, "llm usage", slog.String("app_id", u.AppID), slog.String("user_id", u.UserID),
		slog.String("chat_id", u.ChatID), slog.String("workflow", u.Workflow), slog.String("agent", u.Agent),
		slog.String("model", u.Model), slog.Int64("prompt_tokens", u.PromptTokens), slog.Int64("completion_tokens", u.CompletionTokens),
		slog.Int64("total_tokens", u.TotalTokens), slog.Int64("duration_ms", u.Duration.Milliseconds()))
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
