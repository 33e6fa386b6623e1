// Package ws is the chat WebSocket transport: upgrade, the read and write
// pumps, heartbeat, replay on connect and on client.resume, bounded send
// buffers, and the inbound frame validation of spec/runtime.md §2.2. What a
// frame means is internal/chat's business.
package ws

import (
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mozaiks/mozaiks/internal/chat"
)

// Options tune the transport. Zero values take the defaults.
type Options struct {
	PingInterval time.Duration // default 30s (below common 60 s proxy idle timeouts)
	PongTimeout  time.Duration // default 60s: a peer silent this long is dropped
	WriteTimeout time.Duration // default 10s per frame
	SendBuffer   int           // frames queued per socket before it is dropped with 1013 (default 1024)
	ReadLimit    int64         // default 1 MiB; larger frames close with 1009
	CheckOrigin  func(*http.Request) bool
	Logger       *slog.Logger
	OnConnect    func(delta int) // metrics: +1 on open, -1 on close

	// Abuse limits (limits.go); zero values mean none.
	HandshakeTimeout  time.Duration                                    // default 10s
	MaxMessageBytes   int                                              // one user message; default MaxTextBytes
	MaxSocketsPerUser int                                              // open sockets per app+user
	MaxSocketsPerIP   int                                              // open sockets per client IP
	AllowMessage      func(appID, userID string) (bool, time.Duration) // per-user message rate
	// GeneralWorkflow runs new general (Ask mode) chats; default "assistant".
	GeneralWorkflow string
	// OnUnknownFrame counts inbound frames of a type the server does not
	// know (they are ignored, as the original runtime did).
	OnUnknownFrame func()
}

func (o *Options) defaults() {
	if o.PingInterval <= 0 {
		o.PingInterval = 30 * time.Second
	}
	if o.PongTimeout <= 0 {
		o.PongTimeout = 60 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.SendBuffer <= 0 {
		// Frames wait only while the socket's kernel buffer is full, and the
		// queue holds memory only then.
		o.SendBuffer = 1024
	}
	if o.ReadLimit <= 0 {
		o.ReadLimit = 1 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.OnConnect == nil {
		o.OnConnect = func(int) {}
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = MaxTextBytes
	}
	if o.GeneralWorkflow == "" {
		o.GeneralWorkflow = "assistant"
	}
	if o.OnUnknownFrame == nil {
		o.OnUnknownFrame = func() {}
	}
}

// Handler serves chat sockets.
type Handler struct {
	chats    *chat.Manager
	opts     Options
	upgrader websocket.Upgrader
	count    atomic.Int64

	mu     sync.Mutex
	conns  map[*conn]struct{}
	closed bool

	caps socketCaps
}

// NewHandler builds a Handler.
func NewHandler(chats *chat.Manager, o Options) *Handler {
	o.defaults()
	h := &Handler{chats: chats, opts: o, conns: map[*conn]struct{}{}, caps: newSocketCaps(o)}
	h.upgrader = websocket.Upgrader{
		HandshakeTimeout: o.HandshakeTimeout,
		// An idle socket holds only its read buffer: frames from clients are
		// small, and the write buffer goes back to a pool after each frame.
		ReadBufferSize:  1024,
		WriteBufferSize: 4096,
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     o.CheckOrigin,
		Subprotocols:    []string{"bearer"},
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			code := "WS_UPGRADE_FAILED"
			if status == http.StatusForbidden {
				code = "ORIGIN_NOT_ALLOWED"
			}
			_, _ = w.Write([]byte(`{"error":{"code":"` + code + `","message":"` + reason.Error() + `"},"detail":"` + reason.Error() + `"}`))
		},
	}
	return h
}

// Connections is the number of open chat sockets.
func (h *Handler) Connections() int { return int(h.count.Load()) }

// CloseAll tells every socket the server is going away (1001) and refuses
// new ones.
func (h *Handler) CloseAll() {
	h.mu.Lock()
	h.closed = true
	conns := make([]*conn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.shutdown(websocket.CloseGoingAway, "server shutting down")
	}
}

func (h *Handler) track(c *conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.conns[c] = struct{}{}
	h.count.Add(1)
	h.opts.OnConnect(1)
	return true
}

func (h *Handler) untrack(c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.conns[c]; ok {
		delete(h.conns, c)
		h.count.Add(-1)
		h.opts.OnConnect(-1)
	}
}

// Params are a chat socket's URL parts, validated by the caller.
type Params struct {
	Workflow, AppID, ChatID, UserID string
	AfterSeq                        int64 // ?after_seq=N: replay every event after N instead of the transcript
	HasAfterSeq                     bool
}

// ServeChat upgrades the request and runs the socket until it closes.
func (h *Handler) ServeChat(w http.ResponseWriter, r *http.Request, p Params) {
	release, ok := h.caps.acquire(w, r, p)
	if !ok {
		return // answered 429
	}
	ws, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		release()
		return // the upgrader has answered
	}
	ws.SetReadLimit(h.opts.ReadLimit)
	c := newConn(h, ws, p)
	if !h.track(c) {
		c.closeNow(websocket.CloseGoingAway, "server shutting down")
		release()
		return
	}
	if !c.start(r.Context()) {
		h.untrack(c)
		release()
		return
	}
	// The socket goes on in a goroutine of its own and this handler returns:
	// net/http then lets go of the connection's 4 KiB read and write buffers
	// and of this goroutine's stack, which the request's handling grew.
	ctx := r.Context()
	go func() {
		defer release()
		defer h.untrack(c)
		defer func() {
			if p := recover(); p != nil {
				h.opts.Logger.Error("chat socket panic", "chat_id", c.p.ChatID, "panic", p)
				c.shutdown(websocket.CloseInternalServerErr, "internal error")
			}
		}()
		c.serve(ctx)
	}()
}

var errClosed = errors.New("socket closed")
