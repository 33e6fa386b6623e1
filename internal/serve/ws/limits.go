package ws

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/mozaiks/mozaiks/internal/auth"
	"github.com/mozaiks/mozaiks/internal/chat"
	"github.com/mozaiks/mozaiks/internal/serve/limit"
)

// CloseTokenExpired closes a socket whose token has expired. ChatUI (or any
// client) shows the reason and reconnects with a fresh token.
const CloseTokenExpired = 4001

// socketCaps count open sockets per user and per client IP.
type socketCaps struct {
	perUser *limit.Counter
	perIP   *limit.Counter
}

func newSocketCaps(o Options) socketCaps {
	return socketCaps{perUser: limit.NewCounter(o.MaxSocketsPerUser), perIP: limit.NewCounter(o.MaxSocketsPerIP)}
}

// acquire takes a slot for the socket's user and IP before the upgrade, or
// answers 429 (nothing upgraded, nothing opened).
func (c socketCaps) acquire(w http.ResponseWriter, r *http.Request, p Params) (release func(), ok bool) {
	user, ip := p.AppID+"\x00"+p.UserID, limit.IP(r.RemoteAddr)
	if !c.perUser.Acquire(user) {
		tooMany(w, "too many open sockets for this user; close one (another tab?) and retry")
		return nil, false
	}
	if !c.perIP.Acquire(ip) {
		c.perUser.Release(user)
		tooMany(w, "too many open sockets from this address")
		return nil, false
	}
	return func() { c.perUser.Release(user); c.perIP.Release(ip) }, true
}

func tooMany(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Retry-After", "5")
	w.WriteHeader(http.StatusTooManyRequests)
	q := strconv.Quote(msg)
	_, _ = w.Write([]byte(`{"error":{"code":"TOO_MANY_SOCKETS","message":` + q + `},"detail":` + q + `}` + "\n"))
}

// expireAt closes the socket with 4001 when the token it was opened with
// stops being valid (its exp plus the allowed clock skew). The returned
// func stops the timer.
func (c *conn) expireAt(reqCtx context.Context) func() {
	id, ok := auth.FromContext(reqCtx)
	if !ok || id.ValidUntil.IsZero() {
		return func() {}
	}
	t := time.AfterFunc(time.Until(id.ValidUntil), func() {
		c.h.opts.Logger.Info("socket closed: token expired", "app_id", c.p.AppID, "chat_id", c.p.ChatID, "user_id", c.p.UserID)
		c.shutdown(CloseTokenExpired, "token expired: reconnect with a fresh token")
	})
	return func() { t.Stop() }
}

// admit applies the size limit and the per-user message rate to a user
// message before the chat runtime sees it: a refused message is answered
// with chat.error and nothing is stored.
func (c *conn) admit(text string) (chat.Frame, bool) {
	if max := c.h.opts.MaxMessageBytes; len(text) > max {
		return chat.ErrorFrame("MESSAGE_TOO_LARGE", "message is "+strconv.Itoa(len(text))+" bytes; the limit is "+strconv.Itoa(max), false), false
	}
	if allow := c.h.opts.AllowMessage; allow != nil {
		if ok, wait := allow(c.p.AppID, c.p.UserID); !ok {
			secs := max(1, int(math.Ceil(wait.Seconds())))
			return chat.ErrorFrame("RATE_LIMITED", "too many messages; nothing was stored, send again in "+strconv.Itoa(secs)+" s", true), false
		}
	}
	return chat.Frame{}, true
}
