package chat

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/mozaiks/mozaiks/internal/store"
)

// Subscriber receives a chat's live frames through a bounded queue that
// holds memory only while the socket lags: an idle socket costs a few
// words, a slow one up to its limit. A subscriber that falls further behind
// is dropped (Dropped closes) rather than slowing the chat down; its client
// resumes from its last seq.
type Subscriber struct {
	// Ready is signalled (capacity 1) when frames are waiting: call Take.
	Ready   chan struct{}
	Dropped chan struct{}
	room    *room
	max     int
	once    sync.Once
	notify  func() // SubscribeNotify: called after each push and on drop

	mu    sync.Mutex
	queue []Frame
}

// Subscribe starts delivering the chat's live frames, up to limit frames
// queued. Subscribe before reading stored events, then skip live frames at
// or below the last stored seq sent: nothing is missed and nothing is sent
// twice.
func (m *Manager) Subscribe(appID, chatID string, limit int) *Subscriber {
	return m.SubscribeNotify(appID, chatID, limit, nil)
}

// SubscribeNotify is Subscribe with notify called (besides signalling
// Ready) after every frame queued and when the subscriber is dropped, so a
// socket needs no goroutine waiting on Ready while idle. notify runs on the
// publisher's goroutine with the chat's locks held: it must not block nor
// call back into the Manager.
func (m *Manager) SubscribeNotify(appID, chatID string, limit int, notify func()) *Subscriber {
	if limit <= 0 {
		limit = 1024
	}
	r := m.lockRoom(appID, chatID)
	s := &Subscriber{Ready: make(chan struct{}, 1), Dropped: make(chan struct{}), room: r, max: limit, notify: notify}
	r.subs[s] = struct{}{}
	r.mu.Unlock()
	m.relayWatch(r) // relay: the first subscriber starts the chat's watch
	return s
}

// Take moves the waiting frames into buf (reusing it) and returns them.
func (s *Subscriber) Take(buf []Frame) []Frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	buf = append(buf[:0], s.queue...)
	if cap(s.queue) > 64 {
		s.queue = nil // give a burst's memory back
	} else {
		s.queue = s.queue[:0]
	}
	return buf
}

// push queues f; false when the queue is full.
func (s *Subscriber) push(f Frame) bool {
	s.mu.Lock()
	if len(s.queue) >= s.max {
		s.mu.Unlock()
		return false
	}
	s.queue = append(s.queue, f)
	s.mu.Unlock()
	select {
	case s.Ready <- struct{}{}:
	default:
	}
	if s.notify != nil {
		s.notify()
	}
	return true
}

// Unsubscribe stops delivery.
func (m *Manager) Unsubscribe(s *Subscriber) {
	s.room.mu.Lock()
	delete(s.room.subs, s)
	s.room.mu.Unlock()
	m.relayUnwatch(s.room) // relay: the last one stops it
	m.forget(s.room)
}

// fanout delivers f to every subscriber without blocking. Callers hold pubMu.
func (m *Manager) fanout(r *room, f Frame) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for s := range r.subs {
		if !s.push(f) {
			delete(r.subs, s)
			s.once.Do(func() {
				close(s.Dropped)
				if s.notify != nil {
					s.notify()
				}
			})
		}
	}
}

// Replay reads the chat's stored events after afterSeq in order and calls fn
// with each frame (marked replay). textsOnly restricts it to chat.text, as a
// first connect shows the transcript, plus the event of what the chat still
// waits for (pendingID: its input request or UI tool call), in its place. It
// returns the last seq read (even when it was filtered out) and how many
// frames it sent.
func (m *Manager) Replay(ctx context.Context, appID, chatID string, afterSeq int64, textsOnly bool, pendingID string,
	fn func(Frame) error) (int64, int, error) {
	n := 0
	var ferr error
	last, _, err := m.scan(ctx, appID, chatID, afterSeq, func(ev store.Event) {
		if ferr != nil {
			return
		}
		if textsOnly && ev.Type != "chat.text" &&
			(pendingID == "" || (ev.Type != "chat.input_request" && ev.Type != "chat.tool_call") || !eventHasID(ev, pendingID)) {
			return
		}
		if ferr = fn(EncodeStored(ev, true)); ferr == nil {
			n++
		}
	})
	if ferr != nil {
		return last, n, ferr
	}
	return last, n, err
}

// scan calls fn for every stored event after afterSeq, in pages.
func (m *Manager) scan(ctx context.Context, appID, chatID string, afterSeq int64, fn func(store.Event)) (int64, int, error) {
	const batch = 500
	last, n := afterSeq, 0
	for {
		evs, err := m.opts.Store.ListEvents(ctx, appID, chatID, last, batch)
		if err != nil {
			return last, n, err
		}
		for _, ev := range evs {
			last = ev.Seq
			fn(ev)
			n++
		}
		if len(evs) < batch {
			return last, n, nil
		}
	}
}

func eventHasID(ev store.Event, id string) bool {
	var d struct {
		RequestID string `json:"request_id"`
		EventID   string `json:"eventId"`
		Corr      string `json:"corr"`
	}
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		return false
	}
	return d.RequestID == id || d.EventID == id || d.Corr == id
}
