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
	if len(*c.out) >= flushAt {
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
