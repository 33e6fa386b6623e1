//go:build !windows

// Package slowreader dials WebSockets as a client that stops reading would:
// with a 4 KB receive buffer, the server's writes to it stall after a few
// kilobytes instead of after the megabytes a default socket takes.
package slowreader

import (
	"net"
	"syscall"

	"github.com/gorilla/websocket"
)

// Dialer is a WebSocket dialer whose sockets have a 4 KB receive buffer.
func Dialer() *websocket.Dialer {
	nd := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	return &websocket.Dialer{ReadBufferSize: 1024, NetDialContext: nd.DialContext}
}
