// Package diag serves the tiny endpoints `mozaiks doctor` probes through
// reverse proxies: what the server saw of a request (whoami), a WebSocket
// echo, and a slow chunked stream that reveals proxy buffering. They expose
// nothing secret: only what the client itself sent, and the server's clock.
package diag

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mozaiks/mozaiks/internal/serve/limit"
)

// Defaults for Options fields left zero.
const (
	DefaultReadLimit     = 64 << 10
	DefaultChunkInterval = 200 * time.Millisecond
	DefaultChunks        = 10
)

// Options configure the endpoints.
type Options struct {
	// CheckOrigin decides whether a WebSocket upgrade from r's Origin is
	// allowed; the server passes the same check its chat sockets use, so the
	// doctor's CORS and WebSocket checks see the real policy. Nil refuses every
	// cross-origin upgrade (gorilla's default same-host check).
	CheckOrigin func(*http.Request) bool
	// ReadLimit bounds one echoed frame (default 64 KiB); larger frames close
	// the socket with 1009.
	ReadLimit int64
	// ChunkInterval and Chunks shape /api/diag/stream (default 10 chunks 200 ms apart).
	ChunkInterval time.Duration
	Chunks        int
	// Now is the clock stamped into responses (default time.Now).
	Now func() time.Time

	// Bounded caps every echo socket in time and messages (the server sets
	// it when auth is on: these endpoints need no token, so an anonymous
	// client must not be able to hold one open for long, idle or not).
	Bounded     bool
	MaxLifetime time.Duration // default 5s
	MaxMessages int           // default 16 (the doctor sends 5)
	IdleTimeout time.Duration // default 5s between frames

	// PerIPPerMinute and Burst rate-limit every diag request per client IP
	// (default 60 a minute in bursts of 30: a doctor run makes about ten).
	PerIPPerMinute int
	Burst          int

	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.ReadLimit <= 0 {
		o.ReadLimit = DefaultReadLimit
	}
	if o.ChunkInterval <= 0 {
		o.ChunkInterval = DefaultChunkInterval
	}
	if o.Chunks <= 0 {
		o.Chunks = DefaultChunks
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxLifetime <= 0 {
		o.MaxLifetime = 5 * time.Second
	}
	if o.MaxMessages <= 0 {
		o.MaxMessages = 16
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 5 * time.Second
	}
	if o.PerIPPerMinute <= 0 {
		o.PerIPPerMinute = 60
	}
	if o.Burst <= 0 {
		o.Burst = 30
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Paths of the endpoints, shared with the doctor that probes them.
const (
	PathWhoami = "/api/diag/whoami"
	PathWSEcho = "/api/diag/ws-echo"
	PathStream = "/api/diag/stream"
)

// Register mounts the endpoints on mux with Go 1.22 method patterns.
func Register(mux *http.ServeMux, opts Options) {
	opts = opts.withDefaults()
	rl := limit.NewRate(opts.PerIPPerMinute, time.Minute, opts.Burst)
	mux.HandleFunc("GET "+PathWhoami, opts.limited(rl, opts.whoami))
	mux.HandleFunc("GET "+PathWSEcho, opts.limited(rl, opts.wsEcho))
	mux.HandleFunc("GET "+PathStream, opts.limited(rl, opts.stream))
}

// limited answers 429 with Retry-After to an IP over the diag rate.
func (o Options) limited(rl *limit.Rate, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ip := limit.IP(r.RemoteAddr)
		if ok, wait := rl.Allow(ip); !ok {
			o.Logger.Info("diag rate limited", "path", r.URL.Path, "remote", r.RemoteAddr)
			secs := max(1, int(math.Ceil(wait.Seconds())))
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			w.WriteHeader(http.StatusTooManyRequests)
			msg := strconv.Quote("too many diagnostic requests; retry in " + strconv.Itoa(secs) + " s")
			_, _ = w.Write([]byte(`{"error":{"code":"RATE_LIMITED","message":` + msg + `},"detail":` + msg + "}\n"))
			return
		}
		next(w, r)
	}
}

// Whoami is what the server saw of a request, as /api/diag/whoami returns it.
type Whoami struct {
	Scheme          string    `json:"scheme"` // http or https, as this server terminated it
	TLS             bool      `json:"tls"`
	Host            string    `json:"host"`
	Origin          string    `json:"origin,omitempty"`
	RemoteAddr      string    `json:"remote_addr"`
	XForwardedFor   string    `json:"x_forwarded_for,omitempty"`
	XForwardedProto string    `json:"x_forwarded_proto,omitempty"`
	XForwardedHost  string    `json:"x_forwarded_host,omitempty"`
	Forwarded       string    `json:"forwarded,omitempty"`
	XRealIP         string    `json:"x_real_ip,omitempty"`
	Proto           string    `json:"proto"` // HTTP/1.0 from nginx means proxy_http_version is missing
	ProtoMajor      int       `json:"proto_major"`
	ProtoMinor      int       `json:"proto_minor"`
	Upgrade         string    `json:"upgrade,omitempty"`
	Connection      string    `json:"connection,omitempty"`
	ServerTime      time.Time `json:"server_time"`
}

func (o Options) whoami(w http.ResponseWriter, r *http.Request) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	h := r.Header
	resp := Whoami{
		Scheme: scheme, TLS: r.TLS != nil, Host: r.Host, Origin: h.Get("Origin"),
		RemoteAddr: r.RemoteAddr, XForwardedFor: h.Get("X-Forwarded-For"),
		XForwardedProto: h.Get("X-Forwarded-Proto"), XForwardedHost: h.Get("X-Forwarded-Host"),
		Forwarded: h.Get("Forwarded"), XRealIP: h.Get("X-Real-IP"),
		Proto: r.Proto, ProtoMajor: r.ProtoMajor, ProtoMinor: r.ProtoMinor,
		Upgrade: h.Get("Upgrade"), Connection: h.Get("Connection"),
		ServerTime: o.Now().UTC(),
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(resp)
}

func (o Options) wsEcho(w http.ResponseWriter, r *http.Request) {
	up := websocket.Upgrader{
		CheckOrigin:      o.CheckOrigin,
		HandshakeTimeout: 10 * time.Second,
	}
	if up.CheckOrigin == nil {
		up.CheckOrigin = sameHost
	}
	conn, err := up.Upgrade(w, r, nil) // on failure the upgrader has answered (400/403)
	if err != nil {
		return
	}
	defer conn.Close()
	conn.SetReadLimit(o.ReadLimit)
	// The request's read deadline does not carry over to the socket.
	_ = conn.SetReadDeadline(time.Time{})
	var end time.Time
	if o.Bounded {
		end = time.Now().Add(o.MaxLifetime)
		stop := time.AfterFunc(o.MaxLifetime, func() {
			_ = conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "diagnostic socket time limit"),
				time.Now().Add(time.Second))
			_ = conn.Close()
		})
		defer stop.Stop()
	}
	for n := 0; ; n++ {
		if o.Bounded {
			if n == o.MaxMessages {
				_ = conn.WriteControl(websocket.CloseMessage,
					websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "diagnostic socket message limit"),
					time.Now().Add(time.Second))
				return
			}
			dl := time.Now().Add(o.IdleTimeout)
			if end.Before(dl) {
				dl = end
			}
			_ = conn.SetReadDeadline(dl)
		}
		typ, msg, err := conn.ReadMessage()
		if err != nil {
			// A frame over the limit already got 1009 from gorilla; anything
			// else is the peer going away, or, bounded, the idle limit:
			// say so, so the doctor can tell it from a proxy timeout.
			var ne net.Error
			if o.Bounded && errors.As(err, &ne) && ne.Timeout() {
				_ = conn.WriteControl(websocket.CloseMessage,
					websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "diagnostic socket idle limit"),
					time.Now().Add(time.Second))
			}
			return
		}
		if typ != websocket.TextMessage {
			_ = conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseUnsupportedData, "text frames only"),
				time.Now().Add(time.Second))
			return
		}
		_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if err := conn.WriteMessage(websocket.TextMessage, msg); err != nil {
			return
		}
	}
}

// sameHost is gorilla's default origin policy, spelled out so a nil
// CheckOrigin means the same thing here as in a bare Upgrader.
func sameHost(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// StreamChunk is one line of /api/diag/stream (SSE data or a plain line).
type StreamChunk struct {
	Seq    int       `json:"seq"`
	Of     int       `json:"of"`
	SentAt time.Time `json:"sent_at"`
}

func (o Options) stream(w http.ResponseWriter, r *http.Request) {
	// ResponseController sees through middleware wrappers that implement
	// Unwrap, so a metrics or logging recorder does not break flushing.
	rc := http.NewResponseController(w)
	sse := r.URL.Query().Get("format") == "sse" || r.Header.Get("Accept") == "text/event-stream"
	if sse {
		w.Header().Set("Content-Type", "text/event-stream")
	} else {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	w.Header().Set("Cache-Control", "no-store")
	// nginx honours this per response, so real streams pass even where
	// proxy_buffering is on; the doctor reports what still buffers.
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	t := time.NewTicker(o.ChunkInterval)
	defer t.Stop()
	for i := 1; i <= o.Chunks; i++ {
		b, _ := json.Marshal(StreamChunk{Seq: i, Of: o.Chunks, SentAt: o.Now().UTC()})
		if sse {
			fmt.Fprintf(w, "event: chunk\ndata: %s\n\n", b)
		} else {
			fmt.Fprintf(w, "%s\n", b)
		}
		if err := rc.Flush(); err != nil {
			return // this server cannot stream; the doctor reports the cut
		}
		if i == o.Chunks {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
		}
	}
}
