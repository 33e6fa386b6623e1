package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mozaiks/mozaiks/internal/engine"
	"github.com/mozaiks/mozaiks/internal/store"
)

// A chat's events are stored in the order they happen, but the store's
// writes are taken off the caller's path: post queues an operation and
// returns, and one goroutine per chat (alive only while operations wait)
// stores each event, fans its frame out with the seq the store gave it, and
// adds it to the cached transcript, so stored frames reach sockets in seq
// order. Streamed chunks (no seq) are sent at once by the run, so the first
// token never waits for the store. A caller that needs an event durable
// before it goes on (the ack of a user message, a tool call about to run)
// waits on the operation.

// op is one queued operation: store an event (typ set), apply a session
// update, or record a model call's usage. done is closed when it has been
// carried out, with err set if it failed.
type op struct {
	typ     string
	agent   string
	data    map[string]any
	message bool
	update  *store.SessionUpdate // applied with the event, or alone when typ == ""
	noop    bool                 // a marker: everything before it is done
	lazy    bool                 // may wait while the room is held (a run's opening bookkeeping)
	// unfenced: the user's own input, stored by whichever replica has it.
	// Any other op carries the room's lease fence as it was when posted.
	unfenced bool
	fence    string
	usage    *store.UsageRecord // a model call's usage, recorded in order with the events
	// inputOf names the user message a run_start answers: its seq is known
	// only once that message is stored, which happens before this op runs.
	inputOf *op
	// status, when set, picks the session status at the moment the op is
	// stored (a run that ends with messages still queued stays in progress).
	status func() string
	// run chains the writes of the chat's runs (their events and ends):
	// once one of them fails, the later ones are not stored.
	run *runWrites

	raw []byte // data as stored (write), for its frame

	done chan struct{}
	ev   store.Event
	err  error
}

func newOp() *op { return &op{done: make(chan struct{})} }

// runWrites chains the writes of a chat's runs, from one recovery of the
// chat to the next. Once one fails, the later ones are not stored either,
// its own run's and those of the runs after it: no reply is stored without
// the run_start that names the message it answers (or recovery would
// answer that message again), a run's end does not mark a chat idle whose
// reply is missing, and no later run's start hides the broken run from
// recovery (which resumes only a chat's last run). The chat stays in
// progress and its recovery is queued (runBroke); recovery starts a new
// chain. Only the room's writer (one at a time) reads or sets err and told.
type runWrites struct {
	err  error // the first failed write
	told bool  // runBroke was called
}

// errInputNotStored fails the run_start of a run whose message was not
// stored (or not known to be: a write that timed out may land later).
var errInputNotStored = errors.New("the message this run answers was not stored")

// blocked reports (setting o.err) whether an earlier write of o's chain
// failed.
func (o *op) blocked() bool {
	if o.run == nil || o.run.err == nil {
		return false
	}
	o.err = fmt.Errorf("not stored after an earlier run write failed: %w", o.run.err)
	return true
}

// fail records that o was not stored, and breaks its run's chain.
func (o *op) fail(err error) {
	o.err = err
	if o.run != nil && o.run.err == nil {
		o.run.err = err
	}
}

// inputSeq is the seq of a stored message op, 0 for none (or not yet
// stored).
func (o *op) inputSeq() int64 {
	if o == nil {
		return 0
	}
	select {
	case <-o.done:
		return o.ev.Seq
	default:
		return 0
	}
}

// wait blocks until the op has been carried out.
func (o *op) wait(ctx context.Context) (store.Event, error) {
	select {
	case <-o.done:
		return o.ev, o.err
	case <-ctx.Done():
		return store.Event{}, ctx.Err()
	}
}

// post queues o for the chat and starts the chat's writer if none runs.
func (m *Manager) post(r *room, o *op) *op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return m.postLocked(r, o)
}

func (m *Manager) postLocked(r *room, o *op) *op {
	if !o.unfenced {
		o.fence = r.fence
	}
	r.out = append(r.out, o)
	if !o.lazy {
		// What comes next is stored in order, after the held ops.
		m.releaseLocked(r)
	}
	m.startWriterLocked(r)
	return o
}

func (m *Manager) startWriterLocked(r *room) {
	if !r.writing && len(r.out) > 0 && !(r.held && r.out[0].lazy) {
		r.writing = true
		m.writers.add()
		go m.write(r)
	}
}

// lazyFor bounds how long a run's opening bookkeeping waits for the next
// write of the run before it is stored on its own.
const lazyFor = 250 * time.Millisecond

// hold keeps the lazy ops queued next (run_start, select_speaker) from the
// store until anything else is queued (the reply, a tool call about to run,
// the run's end) or lazyFor passes: they are stored with the run's next
// write instead of on their own, and not while a fast model's first chunks
// are being sent (at 100 busy chats, storing them at the first chunk cost
// about 10 ms of added time to first token; BENCHMARKS.md). A slower model
// (first byte after lazyFor) finds them stored while it thinks. Nothing
// waits on them; their frames keep their seq order among stored frames
// (chunks carry no seq).
func (m *Manager) hold(r *room) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.held {
		return
	}
	r.held = true
	m.writers.add() // Shutdown waits for held ops as for a writer
	r.heldTimer = time.AfterFunc(lazyFor, func() { m.release(r) })
}

// release lets the room's held ops be stored.
func (m *Manager) release(r *room) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m.releaseLocked(r)
}

func (m *Manager) releaseLocked(r *room) {
	if !r.held {
		return
	}
	r.held = false
	r.heldTimer.Stop()
	r.heldTimer = nil
	m.startWriterLocked(r)
	m.writers.done()
}

// write carries out the chat's queued operations in order, then exits.
func (m *Manager) write(r *room) {
	defer m.writers.done()
	for {
		r.mu.Lock()
		if len(r.out) == 0 || r.held && r.out[0].lazy {
			// Held ops wait for release, which starts a writer again.
			r.writing = false
			r.mu.Unlock()
			m.forget(r)
			return
		}
		n := m.batchLen(r.out)
		if i := slices.IndexFunc(r.out[:n], func(o *op) bool { return o.lazy }); r.held && i > 0 {
			n = i // only what was queued before the held ops goes now
		}
		ops := slices.Clone(r.out[:n])
		clear(r.out[:n])
		r.out = r.out[n:]
		fencedOff := r.fencedOff && ops[0].fence != "" // a batch has one fence (batchLen)
		r.mu.Unlock()
		switch {
		case fencedOff:
			// A write under this lease was already refused: the chat has
			// another owner, even if this replica took the lease back since.
			for _, o := range ops {
				o.fail(store.ErrFenced)
			}
		case n == 1:
			m.apply(r, ops[0])
		default:
			m.applyBatch(r, ops)
		}
		for _, o := range ops {
			switch {
			case o.run == nil:
			case o.run.err != nil && !o.run.told:
				o.run.told = true
				m.runBroke(r, o.run.err)
			case o.run.err == nil && o.typ == "" && o.update != nil:
				// A run's end is stored: its chat needs no retry.
				r.mu.Lock()
				r.retries = 0
				r.mu.Unlock()
			}
		}
		for _, o := range ops {
			if ops[0].fence != "" && errors.Is(o.err, store.ErrFenced) {
				r.mu.Lock()
				r.fencedOff = true
				r.mu.Unlock()
			}
			close(o.done)
		}
	}
}

// maxBatch bounds how many of a chat's queued operations are stored as one.
const maxBatch = 64

// batchLen is how many of the queued ops (at least one) go to the store
// together: everything up to the first that needs the seq of an op before
// it in the same batch (a run_start names its message's seq), when the store
// takes batches.
func (m *Manager) batchLen(out []*op) int {
	if _, ok := m.opts.Store.(store.Batcher); !ok {
		return 1
	}
	n := 1
	for n < len(out) && n < maxBatch {
		if in := out[n].inputOf; in != nil && slices.Contains(out[:n], in) {
			break
		}
		if out[n].fence != out[0].fence {
			break // a batch is fenced as a whole: the user's input is not
		}
		n++
	}
	return n
}

// storeTimeout bounds one write: a run being stopped still records how it
// ended, but nothing waits forever on a dead database.
const storeTimeout = 15 * time.Second

func (m *Manager) apply(r *room, o *op) {
	switch {
	case o.noop:
	case o.blocked():
		m.refused(r, o)
	case o.usage != nil:
		ctx, cancel := context.WithTimeout(context.WithoutCancel(m.base), storeTimeout)
		defer cancel()
		if err := m.opts.Store.RecordUsage(ctx, *o.usage); err != nil {
			m.log.Warn("record usage", "chat_id", r.chatID, "err", err)
		}
	case o.typ == "":
		u := o.sessionUpdate()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(m.base), storeTimeout)
		defer cancel()
		if err := m.opts.Store.UpdateSession(ctx, r.appID, r.chatID, u); err != nil {
			o.fail(err)
		}
	default:
		w, ok := o.write()
		if !ok {
			return
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(m.base), storeTimeout)
		defer cancel()
		m.relaySync(ctx, r) // relay: a message's chunks reach the store before it
		ev, err := m.opts.Store.AppendEventUpdate(ctx, r.appID, r.chatID, *w.Event, o.message, w.Update)
		if err != nil {
			o.fail(err)
			return
		}
		m.stored(r, o, ev)
	}
}

// refused logs a run write not stored because an earlier one of its run
// failed (debug: runBroke says the chain broke, once).
func (m *Manager) refused(r *room, o *op) {
	m.log.Debug("run write not stored: an earlier write of the run failed", "chat_id", r.chatID, "type", o.typ, "err", o.err)
}

// sessionUpdate is the update an update-only op applies: its fields, its
// fence, and the status picked now.
func (o *op) sessionUpdate() store.SessionUpdate {
	u := *o.update
	u.Fence = o.fence
	if o.status != nil {
		s := o.status()
		u.Status = &s
	}
	return u
}

// write is the store write of an event op; false (with o.err set) when the
// op fails before reaching the store.
func (o *op) write() (store.Write, bool) {
	if o.inputOf != nil && o.inputOf.err != nil {
		// The message this run answers was not stored (the user was
		// told to send it again): the run stops here, storing nothing.
		o.fail(fmt.Errorf("%w: %w", errInputNotStored, o.inputOf.err))
		return store.Write{}, false
	}
	if o.inputOf != nil && o.inputOf.ev.Seq > 0 {
		o.data["input_seq"] = o.inputOf.ev.Seq
	}
	raw, err := json.Marshal(o.data)
	if err != nil {
		o.fail(fmt.Errorf("encode event: %w", err))
		return store.Write{}, false
	}
	o.raw = raw
	w := store.Write{Event: &store.Event{Type: o.typ, Agent: o.agent, Data: raw}, Message: o.message}
	if o.update != nil {
		w.Update = *o.update
	}
	w.Update.Fence = o.fence
	if o.status != nil {
		s := o.status()
		w.Update.Status = &s
	}
	return w, true
}

// stored remembers an op's stored event and sends its frame.
func (m *Manager) stored(r *room, o *op, ev store.Event) {
	o.ev = ev
	if o.typ == "chat.run_start" {
		// Debug: with "run start queued" (roomSink.Emit), tells where a
		// reply stored without its run_start lost it (issue #11's note).
		m.log.Debug("run start stored", "chat_id", r.chatID, "seq", ev.Seq, "input_seq", o.data["input_seq"])
	}
	r.remember(engine.NewStoredEvent(ev.Seq, kindOf(o.typ), o.agent, o.data))
	m.fanoutStored(r, encodeRaw(o.typ, ev.Seq, ev.Timestamp, o.data, o.raw, false)) // relay: in seq order with other replicas' frames
}

// applyBatch carries out ops as one store write (store.Batcher): they all
// succeed or all fail, and their frames go out in seq order after it.
func (m *Manager) applyBatch(r *room, ops []*op) {
	ws := make([]store.Write, 0, len(ops))
	in := make([]*op, 0, len(ops)) // the op of each write
	events := false
	for _, o := range ops {
		switch {
		case o.noop:
			continue
		case o.blocked():
			m.refused(r, o)
			continue
		case o.usage != nil:
			ws = append(ws, store.Write{Usage: o.usage})
		case o.typ == "":
			ws = append(ws, store.Write{Update: o.sessionUpdate()})
		default:
			w, ok := o.write()
			if !ok {
				continue
			}
			ws, events = append(ws, w), true
		}
		in = append(in, o)
	}
	if len(ws) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(m.base), storeTimeout)
	defer cancel()
	if events {
		m.relaySync(ctx, r) // relay: a message's chunks reach the store before it
	}
	evs, err := m.opts.Store.(store.Batcher).WriteBatch(ctx, r.appID, r.chatID, ws)
	if err != nil {
		for i, o := range in {
			if ws[i].Usage != nil {
				m.log.Warn("record usage", "chat_id", r.chatID, "err", err)
				continue
			}
			o.fail(err)
		}
		return
	}
	for i, o := range in {
		if ws[i].Event != nil {
			m.stored(r, o, evs[0])
			evs = evs[1:]
		}
	}
}

// flush waits until everything queued for the chat so far is carried out.
func (m *Manager) flush(ctx context.Context, r *room) {
	o := newOp()
	o.noop = true
	_, _ = m.post(r, o).wait(ctx)
}

// postEvent queues a stored event.
func (m *Manager) postEvent(r *room, typ, agent string, data map[string]any, message bool, u *store.SessionUpdate) *op {
	return m.post(r, eventOp(typ, agent, data, message, u))
}

func eventOp(typ, agent string, data map[string]any, message bool, u *store.SessionUpdate) *op {
	o := newOp()
	o.typ, o.agent, o.data, o.message, o.update = typ, agent, data, message, u
	return o
}

// postUpdate queues a session update.
func (m *Manager) postUpdate(r *room, u store.SessionUpdate, status func() string) *op {
	return m.post(r, updateOp(u, status))
}

func updateOp(u store.SessionUpdate, status func() string) *op {
	o := newOp()
	o.update, o.status = &u, status
	return o
}
