package chat

import (
	"strings"
	"sync"
	"time"

	"github.com/mozaiks/mozaiks/internal/engine"
)

// A message's streamed chunks go out at most every Options.PrintEvery. The
// first chunk of a message, and any chunk that comes when the interval has
// passed, goes at once: the time to first token never waits. Chunks that
// come sooner after the last one sent are joined and sent together when the
// interval is up, or before anything else the run emits, so a chat's frames
// keep their order. A model streaming faster than the interval (a fast model
// sends a token every 2-10 ms) then costs one frame per interval instead of
// one per token, on every socket, the relay and the clients; one at a real
// model's pace is not touched. Clients append a chunk's content
// (ChatUI/src/pages/ChatPage.js case 'print'), so joined chunks show what
// their parts would have; a chunk that replaces the message (a retried
// stream) is never joined to the chunks before it, only they to it.

// DefaultPrintEvery is the default Options.PrintEvery: below a screen's
// refresh interval, so joining chunks is not visible.
const DefaultPrintEvery = 15 * time.Millisecond

// chunks paces one run's chunks (a roomSink's).
type chunks struct {
	m     *Manager
	r     *room
	every time.Duration

	mu     sync.Mutex
	held   *engine.Print   // chunks waiting for the interval, joined
	text   strings.Builder // held's content
	msg    string          // message of the last chunk sent
	sentAt time.Time       // when it was sent
	timer  *time.Timer     // sends held when the interval is up
}

// print sends p now or holds it for the interval.
func (c *chunks) print(p engine.Print) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held != nil && (p.Restart || p.MessageID != c.held.MessageID || p.Agent != c.held.Agent) {
		c.flushLocked()
	}
	if c.held != nil {
		c.text.WriteString(p.Content)
		return
	}
	now := time.Now()
	if wait := c.every - now.Sub(c.sentAt); c.every <= 0 || p.MessageID != c.msg || wait <= 0 {
		c.sendLocked(p, now)
		return
	} else if c.timer == nil {
		c.timer = time.AfterFunc(wait, c.flush)
	} else {
		c.timer.Reset(wait)
	}
	c.held = &p
	c.text.Reset()
	c.text.WriteString(p.Content)
}

// flush sends what is held now.
func (c *chunks) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushLocked()
}

func (c *chunks) flushLocked() {
	if c.held == nil {
		return
	}
	p := *c.held
	p.Content = c.text.String()
	c.held = nil
	if c.timer != nil {
		c.timer.Stop()
	}
	c.sendLocked(p, time.Now())
}

// sendLocked fans p out as one chat.print (under c.mu: chunks leave in order).
func (c *chunks) sendLocked(p engine.Print, now time.Time) {
	c.msg, c.sentAt = p.MessageID, now
	f := encodePrint(now, p.Agent, p.Content, p.MessageID, p.Restart)
	c.m.fanout(c.r, f)
	c.m.relayTransient(c.r, f) // relay:
}
