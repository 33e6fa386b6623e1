//go:build !unix

package ws

import "net"

// canWriteNow: only unix sockets are written without waiting (writenow_unix.go).
func canWriteNow(net.Conn) bool { return false }

func writeNow(net.Conn, []byte) int { return 0 }
