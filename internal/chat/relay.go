package chat

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/mozaiks/mozaiks/internal/relay"
	"github.com/mozaiks/mozaiks/internal/store"
)

// Cross-replica fan-out (package relay). While a chat has local
// subscribers, its room watches the relay, which delivers every stored
// event of the chat (from any replica) in seq order and the transient
// frames other replicas stream. The room merges them with its own
// process's frames by seq: a frame at or below the last seq sent is
// dropped, one beyond the next seq is held until the relay brings the
// missing ones (made on another replica, or lost: the relay skips a lost
// seq after its grace), so sockets get each seq once, in order.

// watchMargin is how far below the session's last seq a watch starts. The
// counter is taken before the event is inserted, so the last few seqs may
// still be in flight when a socket replays; starting lower costs a few
// frames the sockets already have (they skip them).
const watchMargin = 16

// roomRelay is a room's side of the relay.
type roomRelay struct {
	mu        sync.Mutex
	refs      int // subscribers
	gen       int // watch generation: callbacks of a stopped watch are ignored
	active    bool
	stop      func()
	delivered int64           // last seq sent to subscribers
	held      map[int64]Frame // local frames waiting for earlier seqs
	// ended are message ids whose chat.text came from another replica:
	// chunks of them that arrive later are dropped.
	ended []string
}

func (m *Manager) relayOn() bool {
	return m.opts.Relay != nil && m.opts.Relay.Mode() != relay.ModeLocal
}

func (r *room) relayState(create bool) *roomRelay {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rl == nil && create {
		r.rl = &roomRelay{}
	}
	return r.rl
}

// relayWatch counts a subscriber and starts the chat's watch at the first.
func (m *Manager) relayWatch(r *room) {
	if !m.relayOn() {
		return
	}
	rl := r.relayState(true)
	rl.mu.Lock()
	defer rl.mu.Unlock()
	rl.refs++
	if rl.active {
		return
	}
	ctx, cancel := context.WithTimeout(m.base, 5*time.Second)
	sess, err := m.opts.Store.GetSession(ctx, r.appID, r.chatID)
	cancel()
	if err != nil {
		// The next subscriber tries again; this one's replay fails too.
		m.log.Warn("relay: cannot watch chat", "chat_id", r.chatID, "err", err)
		return
	}
	rl.gen++
	gen := rl.gen
	rl.active, rl.delivered, rl.held = true, max(sess.LastSeq-watchMargin, 0), map[int64]Frame{}
	rl.stop = m.opts.Relay.Watch(r.appID, r.chatID, rl.delivered,
		func(ev store.Event) { m.relayEvent(r, rl, gen, ev) },
		func(b []byte) { m.relayFrame(r, rl, gen, b) })
}

// relayUnwatch stops the watch when the last subscriber leaves.
func (m *Manager) relayUnwatch(r *room) {
	if !m.relayOn() {
		return
	}
	rl := r.relayState(false)
	if rl == nil {
		return
	}
	rl.mu.Lock()
	defer rl.mu.Unlock()
	rl.refs = max(rl.refs-1, 0)
	if rl.refs > 0 || !rl.active {
		return
	}
	rl.stop()
	rl.active, rl.stop, rl.held, rl.ended = false, nil, nil, nil
}

// fanoutStored sends a stored event's frame made in this process, in seq
// order with those of other replicas. The chat's writer calls it.
func (m *Manager) fanoutStored(r *room, f Frame) {
	rl := r.relayState(false)
	if rl == nil {
		m.fanout(r, f)
		return
	}
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if !rl.active || m.relayAlone() {
		// Alone, the relay reads nothing back: this process's frames are
		// all there is, in order (the chat's writer stores one at a time).
		m.flushHeld(r, rl)
		m.fanout(r, f)
		rl.delivered = max(rl.delivered, f.Seq)
		return
	}
	switch {
	case f.Seq <= rl.delivered:
	case f.Seq == rl.delivered+1:
		m.fanout(r, f)
		rl.delivered = f.Seq
		m.drainHeld(r, rl)
	default:
		rl.held[f.Seq] = f
	}
}

// relayCatchUp sends the sockets of a chat being recovered the stored
// events they have not had, in order: seqs missing below the last stored
// one were lost with the process that took them, so nothing waits for them.
func (m *Manager) relayCatchUp(ctx context.Context, r *room) {
	rl := r.relayState(false)
	if rl == nil {
		return
	}
	rl.mu.Lock()
	active, from := rl.active, rl.delivered
	rl.mu.Unlock()
	if !active {
		return
	}
	var evs []store.Event
	if _, _, err := m.scan(ctx, r.appID, r.chatID, from, func(ev store.Event) { evs = append(evs, ev) }); err != nil {
		return // the relay delivers them, later
	}
	rl.mu.Lock()
	defer rl.mu.Unlock()
	for _, ev := range evs {
		if !rl.active || ev.Seq <= rl.delivered {
			continue
		}
		f, ok := rl.held[ev.Seq]
		if ok {
			delete(rl.held, ev.Seq)
		} else {
			f = EncodeStored(ev, false)
		}
		m.fanout(r, f)
		rl.delivered = ev.Seq
	}
	m.drainHeld(r, rl)
}

// relayAlone: the relay knows no other replica now (so it polls nothing).
func (m *Manager) relayAlone() bool {
	a, ok := m.opts.Relay.(interface{ Alone() bool })
	return ok && a.Alone()
}

// flushHeld sends every held frame in seq order. rl.mu is held.
func (m *Manager) flushHeld(r *room, rl *roomRelay) {
	for _, s := range slices.Sorted(maps.Keys(rl.held)) {
		m.fanout(r, rl.held[s])
		rl.delivered = max(rl.delivered, s)
	}
	clear(rl.held)
}

// drainHeld sends the held frames that are next in line. rl.mu is held.
func (m *Manager) drainHeld(r *room, rl *roomRelay) {
	for {
		f, ok := rl.held[rl.delivered+1]
		if !ok {
			return
		}
		delete(rl.held, f.Seq)
		m.fanout(r, f)
		rl.delivered = f.Seq
	}
}

// relayEvent takes a stored event from the relay. The relay delivers every
// stored seq in order, skipping only lost ones, so held frames below it
// will not be completed: they go first.
func (m *Manager) relayEvent(r *room, rl *roomRelay, gen int, ev store.Event) {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if !rl.active || rl.gen != gen || ev.Seq <= rl.delivered {
		return
	}
	if ev.Type == store.GapType {
		// A seq lost with a dead process: nothing to send, stop waiting.
		for _, s := range slices.Sorted(maps.Keys(rl.held)) {
			if s < ev.Seq {
				m.fanout(r, rl.held[s])
				delete(rl.held, s)
			}
		}
		rl.delivered = ev.Seq
		m.drainHeld(r, rl)
		return
	}
	for _, s := range slices.Sorted(maps.Keys(rl.held)) {
		if s < ev.Seq {
			m.fanout(r, rl.held[s])
			delete(rl.held, s)
		}
	}
	f, ok := rl.held[ev.Seq]
	if ok {
		delete(rl.held, ev.Seq)
	} else {
		f = EncodeStored(ev, false)
		if ev.Type == "chat.text" {
			var d struct {
				MessageID string `json:"message_id"`
			}
			if json.Unmarshal(ev.Data, &d) == nil && d.MessageID != "" {
				rl.ended = append(rl.ended[max(len(rl.ended)-7, 0):], d.MessageID)
			}
		}
	}
	m.fanout(r, f)
	rl.delivered = ev.Seq
	m.drainHeld(r, rl)
}

// relayFrame takes another replica's transient frame.
func (m *Manager) relayFrame(r *room, rl *roomRelay, gen int, b []byte) {
	var head struct {
		Type string `json:"type"`
		Data struct {
			MessageID string `json:"message_id"`
		} `json:"data"`
	}
	_ = json.Unmarshal(b, &head)
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if !rl.active || rl.gen != gen {
		return
	}
	if head.Type == "chat.print" && head.Data.MessageID != "" && slices.Contains(rl.ended, head.Data.MessageID) {
		return // its message is complete: a late chunk would follow it
	}
	m.fanout(r, Frame{Type: head.Type, Bytes: b})
}

// relaySync waits until the chat's announced frames are written, so that
// another replica reads a message's chunks no later than the message.
func (m *Manager) relaySync(ctx context.Context, r *room) {
	f, ok := m.opts.Relay.(interface {
		Flush(ctx context.Context, chatID string) error
	})
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := f.Flush(ctx, r.chatID); err != nil {
		m.log.Debug("relay: flush frames before an event", "chat_id", r.chatID, "err", err)
	}
}

// relayTransient announces an unstored frame to the other replicas.
func (m *Manager) relayTransient(r *room, f Frame) {
	if !m.relayOn() {
		return
	}
	if err := m.opts.Relay.Transient(m.base, r.appID, r.chatID, f.Bytes); err != nil {
		m.log.Debug("relay: announce frame", "chat_id", r.chatID, "err", err)
	}
}

// RelayMode is how live frames reach other replicas: "change_stream",
// "poll" or "local" (one process: nothing to carry).
func (m *Manager) RelayMode() string {
	if m.opts.Relay == nil {
		return relay.ModeLocal
	}
	return m.opts.Relay.Mode()
}

// RelayPeers is how many other replicas the relay last heard of; -1 when
// not known (yet) or when there is nothing to carry.
func (m *Manager) RelayPeers() int {
	if s, ok := m.opts.Relay.(interface{ Stats() relay.Stats }); ok {
		return int(s.Stats().Peers)
	}
	return -1
}
