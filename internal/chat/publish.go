package chat

import (
	"context"
	"encoding/json"
	"fmt"
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
// update, or other ordered work (fn). done is closed when it has been carried
// out, with err set if it failed.
type op struct {
	typ     string
	agent   string
	data    map[string]any
	message bool
	update  *store.SessionUpdate        // applied with the event, or alone when typ == ""
	noop    bool                        // a marker: everything before it is done
	fn      func(context.Context) error // other ordered work (a usage record)
	// inputOf names the user message a run_start answers: its seq is known
	// only once that message is stored, which happens before this op runs.
	inputOf *op
	// status, when set, picks the session status at the moment the op is
	// stored (a run that ends with messages still queued stays in progress).
	status func() string

	done chan struct{}
	ev   store.Event
	err  error
}

func newOp() *op { return &op{done: make(chan struct{})} }

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
	r.out = append(r.out, o)
	if !r.writing {
		r.writing = true
		m.writers.Add(1)
		go m.write(r)
	}
	return o
}

// write carries out the chat's queued operations in order, then exits.
func (m *Manager) write(r *room) {
	defer m.writers.Done()
	for {
		r.mu.Lock()
		if len(r.out) == 0 {
			r.writing = false
			r.mu.Unlock()
			m.forget(r)
			return
		}
		o := r.out[0]
		r.out[0] = nil
		r.out = r.out[1:]
		r.mu.Unlock()
		m.apply(r, o)
		close(o.done)
	}
}

// storeTimeout bounds one write: a run being stopped still records how it
// ended, but nothing waits forever on a dead database.
const storeTimeout = 15 * time.Second

func (m *Manager) apply(r *room, o *op) {
	switch {
	case o.noop:
	case o.fn != nil:
		ctx, cancel := context.WithTimeout(context.WithoutCancel(m.base), storeTimeout)
		defer cancel()
		o.err = o.fn(ctx)
	case o.typ == "":
		u := *o.update
		if o.status != nil {
			s := o.status()
			u.Status = &s
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(m.base), storeTimeout)
		defer cancel()
		o.err = m.opts.Store.UpdateSession(ctx, r.appID, r.chatID, u)
	default:
		if o.inputOf != nil && o.inputOf.err != nil {
			// The message this run answers was not stored (the user was
			// told to send it again): the run stops here, storing nothing.
			o.err = fmt.Errorf("the message this run answers was not stored: %w", o.inputOf.err)
			return
		}
		if o.inputOf != nil && o.inputOf.ev.Seq > 0 {
			o.data["input_seq"] = o.inputOf.ev.Seq
		}
		raw, err := json.Marshal(o.data)
		if err != nil {
			o.err = fmt.Errorf("encode event: %w", err)
			return
		}
		var u store.SessionUpdate
		if o.update != nil {
			u = *o.update
		}
		if o.status != nil {
			s := o.status()
			u.Status = &s
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(m.base), storeTimeout)
		defer cancel()
		m.relaySync(ctx, r) // relay: a message's chunks reach the store before it
		ev, err := m.opts.Store.AppendEventUpdate(ctx, r.appID, r.chatID, store.Event{Type: o.typ, Agent: o.agent, Data: raw}, o.message, u)
		if err != nil {
			o.err = err
			return
		}
		o.ev = ev
		r.remember(engine.StoredEvent{Seq: ev.Seq, Kind: kindOf(o.typ), Agent: o.agent, Data: o.data})
		m.fanoutStored(r, Encode(o.typ, ev.Seq, ev.Timestamp, o.data, false)) // relay: in seq order with other replicas' frames
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
	o := newOp()
	o.typ, o.agent, o.data, o.message, o.update = typ, agent, data, message, u
	return m.post(r, o)
}

// postUpdate queues a session update.
func (m *Manager) postUpdate(r *room, u store.SessionUpdate, status func() string) *op {
	o := newOp()
	o.update, o.status = &u, status
	return m.post(r, o)
}
