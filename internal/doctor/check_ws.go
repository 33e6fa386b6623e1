package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mozaiks/mozaiks/internal/serve/diag"
)

// wsURL is the public URL's WebSocket form of path.
func (e *Env) wsURL(path string) string {
	u := e.URL
	switch {
	case strings.HasPrefix(u, "https://"):
		u = "wss://" + strings.TrimPrefix(u, "https://")
	case strings.HasPrefix(u, "http://"):
		u = "ws://" + strings.TrimPrefix(u, "http://")
	}
	return u + path
}

type wsDialResult struct {
	conn        *websocket.Conn
	status      int
	contentType string
	body        string
	err         error
}

func wsDial(ctx context.Context, env *Env, origin string) wsDialResult {
	d := websocket.Dialer{HandshakeTimeout: 8 * time.Second, TLSClientConfig: env.tlsConfig()}
	hdr := http.Header{}
	if origin != "" {
		hdr.Set("Origin", origin)
	}
	if tok := env.diagToken(); tok != "" {
		hdr.Set(DiagHeader, tok)
	}
	conn, resp, err := d.DialContext(ctx, env.wsURL(diag.PathWSEcho), hdr)
	r := wsDialResult{conn: conn, err: err}
	if resp != nil {
		r.status = resp.StatusCode
		r.contentType = resp.Header.Get("Content-Type")
		if resp.Body != nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			r.body = strings.TrimSpace(string(b))
		}
	}
	return r
}

// wsHandshakeStatus is the status of an upgrade attempt (0 when none came back).
func wsHandshakeStatus(ctx context.Context, env *Env, origin string) int {
	r := wsDial(ctx, env, origin)
	if r.conn != nil {
		r.conn.Close()
	}
	return r.status
}

const nginxWSLines = "nginx: proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection \"upgrade\"; (Caddy's reverse_proxy upgrades by itself)"

func checkWSUpgrade() Check {
	return Check{Code: "WS01", Name: "WebSocket upgrade", Needs: []string{"RT01"}, Timeout: 15 * time.Second, Run: runWSUpgrade}
}

func runWSUpgrade(ctx context.Context, env *Env) Result {
	origin := env.pageOrigin()
	d := map[string]any{"url": env.wsURL(diag.PathWSEcho), "origin": origin}
	r := wsDial(ctx, env, origin)
	if r.conn != nil {
		r.conn.Close()
		return ok("upgraded (101) through "+env.URL, d)
	}
	d["status"] = r.status
	d["content_type"] = r.contentType
	if r.body != "" {
		d["body"] = truncate(r.body, 160)
	}
	switch {
	case r.status == 0:
		return fail("no handshake answer: "+netCause(r.err), "check that the public URL reaches the runtime (RT01)", d)
	case r.status == http.StatusOK && strings.Contains(r.contentType, "html"):
		return fail("answered 200 with HTML: the proxy serves a page instead of upgrading the socket", "route /api/ and /ws/ to the runtime before any SPA fallback, with "+nginxWSLines, d)
	case r.status == http.StatusOK:
		return fail("answered 200 without upgrading: the proxy does not pass the Upgrade", "add "+nginxWSLines, d)
	case r.status == http.StatusBadRequest:
		// The runtime's upgrader answers 400 when Upgrade/Connection did not
		// reach it; whoami says whether the hop was HTTP/1.0.
		if w, err := fetchWhoami(ctx, env, nil); err == nil {
			d["upstream_proto"] = w.Proto
			if w.Proto == "HTTP/1.0" {
				return fail("400: the proxy talks HTTP/1.0 to the runtime, which cannot upgrade", "add proxy_http_version 1.1; to the location (with the Upgrade and Connection headers)", d)
			}
		}
		return fail("400: the Upgrade/Connection headers do not reach the runtime", "add "+nginxWSLines, d)
	case r.status == http.StatusForbidden:
		return fail("403: the runtime refused the socket's Origin "+origin, "add "+origin+" to CORS_ORIGINS (exact scheme://host[:port]); see CORS01", d)
	case r.status == http.StatusNotFound:
		return fail("404: /api/diag/ws-echo not found (old runtime, or the proxy routes /api/ elsewhere)", "route /api/ and /ws/ to the runtime; upgrade the runtime; a proxy written by mozaiks init hides /api/diag/* unless X-Mozaiks-Diag carries MOZAIKS_DIAG_TOKEN from .env (run doctor with that .env, --dir)", d)
	case r.status == http.StatusBadGateway || r.status == http.StatusGatewayTimeout:
		return fail(fmt.Sprintf("%d from the proxy: it cannot reach the runtime for the upgrade", r.status), "check the proxy's upstream address and that the runtime is up (mozaiks status)", d)
	default:
		return fail(fmt.Sprintf("upgrade refused with %d", r.status), "add "+nginxWSLines, d)
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

func checkWSEcho() Check {
	return Check{Code: "WS02", Name: "WebSocket echo", Needs: []string{"WS01"}, Timeout: 15 * time.Second, Run: runWSEcho}
}

func runWSEcho(ctx context.Context, env *Env) Result {
	r := wsDial(ctx, env, env.pageOrigin())
	if r.conn == nil {
		return fail(fmt.Sprintf("cannot open the socket (status %d)", r.status), "see WS01", nil)
	}
	defer r.conn.Close()
	const n = 5
	var rtts []time.Duration
	for i := range n {
		msg := fmt.Sprintf("doctor-%d-%d", i, env.now().UnixNano())
		_ = r.conn.SetReadDeadline(env.now().Add(5 * time.Second))
		_ = r.conn.SetWriteDeadline(env.now().Add(5 * time.Second))
		t0 := env.now()
		if err := r.conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			return wsCloseResult("send", err, rtts)
		}
		_, got, err := r.conn.ReadMessage()
		if err != nil {
			return wsCloseResult("receive", err, rtts)
		}
		if string(got) != msg {
			return fail(fmt.Sprintf("echo mismatch at message %d: sent %q, got %q", i+1, msg, truncate(string(got), 60)),
				"something between rewrites or reorders WebSocket frames; bypass it for /api/ and /ws/", nil)
		}
		rtts = append(rtts, env.now().Sub(t0))
	}
	_ = r.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), env.now().Add(time.Second))
	med := median(rtts)
	d := map[string]any{"messages": n, "median_rtt_ms": float64(med.Microseconds()) / 1000}
	if med > 500*time.Millisecond {
		return warn(fmt.Sprintf("echo ok but slow: median round trip %s", med.Round(time.Millisecond)), "check the network path and the proxy's load", d)
	}
	return ok(fmt.Sprintf("%d messages echoed in order, median round trip %s", n, med.Round(10*time.Microsecond)), d)
}

func wsCloseResult(stage string, err error, rtts []time.Duration) Result {
	d := map[string]any{"echoed_before_error": len(rtts)}
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		d["close_code"] = ce.Code
		switch ce.Code {
		case websocket.CloseAbnormalClosure:
			return fail("socket dropped without a close frame (1006) during "+stage, "a proxy or load balancer cut the connection: check its WebSocket support and timeouts", d)
		case websocket.ClosePolicyViolation:
			return fail("closed with 1008 (policy violation)", "the runtime refused the socket: check the Origin (CORS01) and the token", d)
		case websocket.CloseMessageTooBig:
			return fail("closed with 1009 (message too big)", "a proxy or the runtime limits frame size below the echo probe", d)
		default:
			return fail(fmt.Sprintf("closed with %d during %s", ce.Code, stage), "read the runtime's log: mozaiks logs runtime --tail 50", d)
		}
	}
	if websocket.IsUnexpectedCloseError(err) || strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "reset") {
		d["close_code"] = websocket.CloseAbnormalClosure
		return fail("socket dropped without a close frame (1006) during "+stage, "a proxy or load balancer cut the connection: check its WebSocket support and timeouts", d)
	}
	return fail(stage+" failed: "+netCause(err), "", d)
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func fetchWhoami(ctx context.Context, env *Env, hdr http.Header) (diag.Whoami, error) {
	var w diag.Whoami
	status, _, body, err := probeGet(ctx, env, env.URL+diag.PathWhoami, hdr)
	if err != nil {
		return w, err
	}
	if status != http.StatusOK {
		return w, fmt.Errorf("whoami answered %d", status)
	}
	return w, json.Unmarshal(body, &w)
}

func checkWSScheme() Check {
	return Check{Code: "WS03", Name: "ws:// vs wss:// and forwarded proto", Needs: []string{"RT01"}, Timeout: 10 * time.Second, Run: runWSScheme}
}

func runWSScheme(ctx context.Context, env *Env) Result {
	u, err := env.targetURL()
	if err != nil {
		return fail("bad public URL", "", nil)
	}
	w, err := fetchWhoami(ctx, env, nil)
	if err != nil {
		return fail("cannot read /api/diag/whoami: "+truncate(err.Error(), 80), "route /api/ to the runtime; upgrade the runtime if it is older than this doctor", nil)
	}
	seen := w.Scheme
	if p := strings.ToLower(strings.TrimSpace(strings.Split(w.XForwardedProto, ",")[0])); p != "" {
		seen = p
	}
	socketScheme := "ws"
	if u.Scheme == "https" {
		socketScheme = "wss"
	}
	d := map[string]any{
		"public_scheme": u.Scheme, "socket_scheme": socketScheme, "server_scheme": w.Scheme,
		"x_forwarded_proto": w.XForwardedProto, "forwarded": w.Forwarded, "upstream_proto": w.Proto,
	}
	page := env.pageOrigin()
	if strings.HasPrefix(page, "https://") && u.Scheme == "http" {
		d["page_origin"] = page
		return fail("the page is served over https but the runtime URL is http: browsers block ws:// from an https page (mixed content)",
			"serve the runtime over https behind the same proxy and set MOZAIKS_PUBLIC_URL=https://...; the client must use wss://", d)
	}
	if u.Scheme == "https" && seen != "https" {
		return fail("the public URL is https but the runtime sees http (no X-Forwarded-Proto: https)",
			"forward the scheme: nginx proxy_set_header X-Forwarded-Proto $scheme; (Caddy does it by itself)", d)
	}
	if w.Proto == "HTTP/1.0" {
		return warn("the proxy talks HTTP/1.0 to the runtime", "add proxy_http_version 1.1; (WebSockets need it)", d)
	}
	return ok(fmt.Sprintf("public %s, sockets %s://, the runtime sees %s", u.Scheme, socketScheme, seen), d)
}

func checkWSIdle() Check {
	return Check{Code: "WS04", Name: "WebSocket idle timeout", Needs: []string{"WS01"}, Slow: true, Timeout: 100 * time.Second, Run: runWSIdle}
}

func runWSIdle(ctx context.Context, env *Env) Result {
	idle := env.idleProbe()
	r := wsDial(ctx, env, env.pageOrigin())
	if r.conn == nil {
		return fail(fmt.Sprintf("cannot open the socket (status %d)", r.status), "see WS01", nil)
	}
	defer r.conn.Close()
	d := map[string]any{"idle_seconds": idle.Seconds()}
	// Read in the background: a proxy that times the socket out closes it
	// while we wait, and the read reports when.
	closed := make(chan error, 1)
	go func() {
		_, _, err := r.conn.ReadMessage()
		closed <- err
	}()
	start := env.now()
	select {
	case err := <-closed:
		d["closed_after_seconds"] = env.now().Sub(start).Seconds()
		var ce *websocket.CloseError
		if errors.As(err, &ce) && ce.Code == websocket.ClosePolicyViolation && strings.HasPrefix(ce.Text, "diagnostic socket") {
			// The runtime itself (auth on) keeps diagnostic sockets short:
			// the proxy's idle timeout cannot be measured through one.
			return skip("the runtime closes diagnostic sockets after a few seconds when AUTH_ENABLED is on (" + ce.Text +
				"), so the proxy's idle timeout is not measured; check nginx proxy_read_timeout / Caddy settings by hand")
		}
		return fail(fmt.Sprintf("an idle socket was closed after %s (%s)", env.now().Sub(start).Round(time.Second), truncate(errText(err), 60)),
			"raise the proxy's idle timeout above the runtime's 30 s heartbeat margin: nginx proxy_read_timeout 3600s; proxy_send_timeout 3600s;", d)
	case <-ctx.Done():
		return fail("interrupted", "", d)
	case <-time.After(idle):
	}
	msg := "still-there"
	_ = r.conn.SetWriteDeadline(env.now().Add(5 * time.Second))
	if err := r.conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		return fail("the idle socket is gone: "+truncate(errText(err), 60), "raise the proxy's idle timeout: nginx proxy_read_timeout 3600s;", d)
	}
	select {
	case err := <-closed:
		if err != nil {
			return fail("the idle socket is gone: "+truncate(errText(err), 60), "raise the proxy's idle timeout: nginx proxy_read_timeout 3600s;", d)
		}
	case <-time.After(5 * time.Second):
		return fail("no echo after idling", "raise the proxy's idle timeout: nginx proxy_read_timeout 3600s;", d)
	}
	return ok(fmt.Sprintf("socket survived %s idle", idle.Round(time.Second)), d)
}

func errText(err error) string {
	if err == nil {
		return "closed"
	}
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return fmt.Sprintf("close %d", ce.Code)
	}
	return netCause(err)
}
