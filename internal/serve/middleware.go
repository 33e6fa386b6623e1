package serve

import (
	"bufio"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// statusRecorder remembers the status a handler wrote. It keeps Flush and
// Hijack working, which streaming and WebSocket handlers need.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
		htmlPolicy(r.Header())
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
		htmlPolicy(r.Header())
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += n
	return n, err
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := r.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("hijack not supported")
	}
	if r.status == 0 {
		r.status = http.StatusSwitchingProtocols
	}
	return h.Hijack()
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// observe logs every request (never its body) and records metrics; it also
// turns a handler panic into a 500 so one bad request cannot take the server down.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		securityHeaders(w.Header())
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("handler panic", "route", r.Pattern, "panic", p)
				if rec.status == 0 {
					s.writeError(rec, r, apiErr(http.StatusInternalServerError, "INTERNAL", "internal error"))
				}
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			d := time.Since(start)
			code := rec.status
			if code == 0 {
				code = http.StatusOK
			}
			s.metrics.requests.WithLabelValues(route, r.Method, strconv.Itoa(code)).Inc()
			s.metrics.latency.WithLabelValues(route).Observe(d.Seconds())
			level := slog.LevelInfo
			if route == "GET /api/health" || route == "GET /api/ready" || route == "GET /metrics" {
				level = slog.LevelDebug // probes would drown the log
			}
			s.log.LogAttrs(r.Context(), level, "http", slog.String("method", r.Method), slog.String("route", route),
				slog.String("path", r.URL.Path), slog.Int("status", code), slog.Int("bytes", rec.bytes),
				slog.Duration("duration", d), slog.String("remote", r.RemoteAddr))
		}()
		next.ServeHTTP(rec, r)
	})
}

// contentSecurityPolicy is sent with HTML (and untyped) responses that set
// none of their own: same-origin scripts only, no framing, no plugins.
// Styles may be inline and connections may go anywhere, as a UI configured
// with another API or socket base URL needs.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self' http: https: ws: wss:; " +
	"frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"

// securityHeaders are set on every response.
func securityHeaders(h http.Header) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

// htmlPolicy adds the CSP to a response about to be sent as HTML (or with
// no type, which the server would sniff), unless the handler chose one.
func htmlPolicy(h http.Header) {
	ct := h.Get("Content-Type")
	if h.Get("Content-Security-Policy") != "" || (ct != "" && !strings.HasPrefix(ct, "text/html")) {
		return
	}
	h.Set("Content-Security-Policy", contentSecurityPolicy)
}
