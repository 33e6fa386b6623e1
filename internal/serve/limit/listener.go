package limit

import (
	"net"
	"sync"
)

// Listener caps open connections per client IP: a connection over the cap
// is closed as soon as it is accepted, before any byte is read, so a client
// holding many idle or stalled connections cannot exhaust descriptors for
// everyone else. Hijacked connections (WebSockets) count until closed.
type Listener struct {
	net.Listener
	per *Counter
	// OnRefuse is called for each refused connection (logging, metrics).
	OnRefuse func(ip string)
}

// NewListener wraps ln; max <= 0 returns a Listener with no cap.
func NewListener(ln net.Listener, max int) *Listener {
	return &Listener{Listener: ln, per: NewCounter(max)}
}

// Accept returns the next connection within the caps.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := IP(c.RemoteAddr().String())
		if !l.per.Acquire(ip) {
			_ = c.Close()
			if l.OnRefuse != nil {
				l.OnRefuse(ip)
			}
			continue
		}
		return &countedConn{Conn: c, release: func() { l.per.Release(ip) }}, nil
	}
}

// Open is how many connections ip holds.
func (l *Listener) Open(ip string) int { return l.per.Held(ip) }

type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
