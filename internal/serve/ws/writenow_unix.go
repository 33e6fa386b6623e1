//go:build unix

package ws

import (
	"net"
	"syscall"
	"time"
)

// canWriteNow: writeNow can write to nc (a plain TCP or Unix socket; not
// TLS, which frames and encrypts on its own).
func canWriteNow(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	_, err := sc.SyscallConn()
	return err == nil
}

// writeNow writes b to nc as far as its socket buffer takes it without
// waiting and returns how much went: the socket is non-blocking (Go's
// poller), so a full buffer returns EAGAIN instead of blocking.
func writeNow(nc net.Conn, b []byte) int {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return 0
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	// A deadline passed since the last write would refuse this one.
	_ = nc.SetWriteDeadline(time.Time{})
	n := 0
	_ = rc.Write(func(fd uintptr) bool {
		for n < len(b) {
			m, err := syscall.Write(int(fd), b[n:])
			if m > 0 {
				n += m
			}
			if err == syscall.EINTR {
				continue
			}
			if err != nil || m <= 0 {
				break
			}
		}
		return true // never wait: what is left goes to a writer goroutine
	})
	return n
}
