package ws

import (
	"encoding/binary"
	"sync"
	"time"

	"github.com/mozaiks/mozaiks/internal/chat"
)

// The writer frames what it sends itself and writes the frames of one of its
// turns together: an ack and the echo of the user's message, the events a
// run stores at its end, a replay, each leave in one write instead of one
// write (one syscall, and one wake-up of the client) per frame. gorilla
// writes every message on its own; it still reads the socket, and writes
// control frames (ping, close) after the writer has flushed what it queued.
// A server's frames are unmasked (RFC 6455 §5.2), so a frame is its header
// and the payload; compression is not negotiated (Upgrader.EnableCompression
// is off).

// flushAt: a writer turn with more queued than this writes it out and goes on.
const flushAt = 32 << 10

// maxPooled: a buffer that grew past this (a big replay) is not kept.
const maxPooled = 64 << 10

// outBufs holds the buffers of writers that are not writing, so an idle
// socket holds none.
var outBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// appendText appends payload as one final text frame.
func appendText(buf, payload []byte) []byte {
	n := len(payload)
	switch {
	case n < 126:
		buf = append(buf, 0x81, byte(n))
	case n <= 0xFFFF:
		buf = append(buf, 0x81, 126, byte(n>>8), byte(n))
	default:
		buf = append(buf, 0x81, 127)
		buf = binary.BigEndian.AppendUint64(buf, uint64(n))
	}
	return append(buf, payload...)
}

// writeDirect queues one frame for the writer's next flush (at once past
// flushAt); false when the socket is gone. Only the goroutine owning the
// writes calls it, and it flushes before it lets go of them.
func (c *conn) writeDirect(f chat.Frame) bool {
	if c.out == nil {
		c.out = outBufs.Get().(*[]byte)
	}
	*c.out = appendText(*c.out, f.Bytes)
	if len(*c.out) >= flushAt && !c.holding {
		return c.flush()
	}
	return true
}

// flush writes the queued frames; false when the socket is gone.
func (c *conn) flush() bool {
	buf := c.out
	if buf == nil {
		return true
	}
	c.out = nil
	nc := c.ws.NetConn()
	_ = nc.SetWriteDeadline(time.Now().Add(c.h.opts.WriteTimeout))
	_, err := nc.Write(*buf)
	if cap(*buf) <= maxPooled {
		*buf = (*buf)[:0]
		outBufs.Put(buf)
	}
	return err == nil
}

// sendNow is a writer's turn done by the goroutine that has a frame for the
// socket (f, queued by the reader: enqueue) or published the chat's live
// frames (notify), once it owns the writes. A publisher holds the chat's
// locks and must not block, and a reader must go on reading: the frames are
// written only as far as the socket's buffer takes them at once (writeNow);
// the rest, a dropped subscription or a failed write is left to a writer
// goroutine.
func (c *conn) sendNow(f *chat.Frame) {
	c.holding = true
	if f != nil {
		c.writeDirect(*f)
	}
	select {
	case <-c.v.sub.Dropped:
		c.holding = false
		c.handOff(true)
		return
	default:
	}
	var frames [4]chat.Frame
	batch := frames[:0]
	c.writeLive(&batch)
	c.holding = false
	if c.out != nil && !c.writeNow() {
		c.handOff(false)
		return
	}
	c.release()
}

// writeNow writes the queued frames as far as the socket takes them without
// waiting; true when all went. What did not go stays queued.
func (c *conn) writeNow() bool {
	buf := *c.out
	n := writeNow(c.ws.NetConn(), buf)
	if n < len(buf) {
		*c.out = buf[:copy(buf, buf[n:])]
		return false
	}
	*c.out = buf[:0]
	if cap(buf) <= maxPooled {
		outBufs.Put(c.out)
	}
	c.out = nil
	return true
}

// handOff gives the writes, with what is queued, to a new writer goroutine;
// live: the subscription has news for it (it was dropped).
func (c *conn) handOff(live bool) {
	c.mu.Lock()
	c.live = c.live || live
	c.mu.Unlock()
	go func() {
		if !c.flush() {
			c.finish()
			return
		}
		c.writer()
	}()
}
