package config

import (
	"strconv"
	"strings"
	"time"
)

// MinSecretBytes is the shortest AUTH_JWT_SECRET accepted (256 bits, as
// RFC 7518 §3.2 asks of an HS256 key).
const MinSecretBytes = 32

// Limits bound what one client can make the server do. Zero disables a
// rate or a cap; defaults are sized for a small server.
type Limits struct {
	MaxMessageBytes   int           // one user message, on every route
	MessagesPerMinute int           // per user; bursts up to Burst
	SessionsPerMinute int           // per user
	Burst             int           // bucket size of both rates
	MaxSocketsPerUser int           // open chat sockets per app+user
	MaxQueuedPerChat  int           // messages waiting behind a chat's run
	MaxConnsPerIP     int           // open TCP connections per client IP
	BodyTimeout       time.Duration // headers + body of one request
}

// DefaultLimits are the limits when no setting changes them.
func DefaultLimits() Limits {
	return Limits{MaxMessageBytes: 256 << 10, MessagesPerMinute: 30, SessionsPerMinute: 10, Burst: 10,
		MaxSocketsPerUser: 16, MaxQueuedPerChat: 16, MaxConnsPerIP: 4096, BodyTimeout: 30 * time.Second}
}

func limitsFrom(vals map[string]string, bad func(key, reason string) error) (Limits, error) {
	l := DefaultLimits()
	ints := []struct {
		key      string
		dst      *int
		min, max int
	}{
		{"max_message_bytes", &l.MaxMessageBytes, 1, 1 << 20},
		{"messages_per_minute", &l.MessagesPerMinute, 0, 1 << 20},
		{"sessions_per_minute", &l.SessionsPerMinute, 0, 1 << 20},
		{"max_sockets_per_user", &l.MaxSocketsPerUser, 0, 1 << 20},
		{"max_queued_per_chat", &l.MaxQueuedPerChat, 0, 1 << 20},
		{"max_conns_per_ip", &l.MaxConnsPerIP, 0, 1 << 24},
	}
	for _, x := range ints {
		v, ok := vals[x.key]
		if !ok {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < x.min || n > x.max {
			return Limits{}, bad(x.key, "want an integer from "+strconv.Itoa(x.min)+" to "+strconv.Itoa(x.max))
		}
		*x.dst = n
	}
	if v, ok := vals["body_timeout"]; ok {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d < time.Second {
			return Limits{}, bad("body_timeout", "want a duration of at least 1s, such as 30s")
		}
		l.BodyTimeout = d
	}
	return l, nil
}
