package doctor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mozaiks/mozaiks/internal/serve/diag"
)

func checkRuntime() Check {
	return Check{Code: "RT01", Name: "runtime health", Needs: []string{"CFG01"}, Timeout: 15 * time.Second, Run: runRuntime}
}

// probeGet fetches url and returns status, content type and at most 4 KiB of body.
func probeGet(ctx context.Context, env *Env, url string, hdr http.Header) (int, string, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := env.httpClient(8 * time.Second).Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, resp.Header.Get("Content-Type"), body, nil
}

// netCause turns a dial/HTTP error into a short user-safe cause.
func netCause(err error) string {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.As(err, &dnsErr):
		return "host name does not resolve (" + dnsErr.Name + ")"
	case strings.Contains(err.Error(), "no such host"):
		return "host name does not resolve"
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "Client.Timeout"):
		return "timed out"
	case strings.Contains(err.Error(), "connection refused"):
		return "connection refused (nothing listens there)"
	case strings.Contains(err.Error(), "certificate") || strings.Contains(err.Error(), "x509") || strings.Contains(err.Error(), "tls:"):
		return "TLS handshake failed (see TLS01)"
	case errors.As(err, &opErr):
		return opErr.Op + " failed"
	default:
		return "request failed"
	}
}

func runRuntime(ctx context.Context, env *Env) Result {
	d := map[string]any{"url": env.URL}
	status, _, body, err := probeGet(ctx, env, env.URL+"/api/health", nil)
	if err != nil {
		d["error"] = netCause(err)
		if direct, ok := env.directRuntime(ctx); ok {
			d["runtime_direct"] = direct
			return fail(fmt.Sprintf("%s does not answer (%s), but the runtime is healthy at %s: the proxy in front of it does not reach it", env.URL, netCause(err), direct),
				"point the proxy at "+direct+": a host nginx uses nginx/mozaiks-host.conf (upstream 127.0.0.1), "+
					"the compose proxy nginx/mozaiks.conf (upstream runtime:8000); check that the proxy runs and listens on "+env.URL, d)
		}
		if logs := runtimeLogs(ctx, env); len(logs) > 0 {
			d["last_logs"] = logs
		}
		return fail("runtime not reachable at "+env.URL+": "+netCause(err), env.startHint(), d)
	}
	d["health_status"] = status
	d["health"] = safeJSON(body)
	if status != http.StatusOK {
		msg, hint := fmt.Sprintf("/api/health answered %d", status), hintForStatus(status)
		if gatewayStatus(status) {
			// The proxy answered, the runtime behind it did not: is the
			// runtime down, or is the proxy's upstream wrong?
			if direct, ok := env.directRuntime(ctx); ok {
				d["runtime_direct"] = direct
				msg = fmt.Sprintf("the proxy at %s answers %d, but the runtime is healthy at %s: the proxy's upstream does not reach it", env.URL, status, direct)
				hint = "point the proxy at " + direct + ": a host nginx uses nginx/mozaiks-host.conf (upstream 127.0.0.1), " +
					"the compose proxy nginx/mozaiks.conf (upstream runtime:8000)"
			}
		}
		return fail(msg, hint, d)
	}
	rs, _, rbody, err := probeGet(ctx, env, env.URL+"/api/ready", nil)
	if err != nil {
		return fail("/api/ready not reachable: "+netCause(err), "read the runtime's log: mozaiks logs runtime --tail 50", d)
	}
	d["ready_status"] = rs
	d["ready"] = safeJSON(rbody)
	switch {
	case rs == http.StatusOK:
		return ok("healthy and ready at "+env.URL, d)
	case rs == http.StatusNotFound:
		return warn("healthy, but /api/ready is missing (an older runtime or a proxy route?)", "route /api/ to the runtime in the proxy", d)
	default:
		msg := fmt.Sprintf("runtime up but not ready (/api/ready answered %d): degraded", rs)
		cause, mongo := degradedCause(body)
		if cause == "" {
			return fail(msg, "the ready answer names the failing dependency (see details; MDB01 and LLM01 probe them); last log lines: mozaiks logs runtime --tail 50", d)
		}
		msg += ": " + cause
		if mongo {
			// The runtime itself serves; MongoDB is what fails, and MDB01
			// fails with the cause. One fault, one failing check.
			return warn(msg, "fix MongoDB as MDB01 says; the runtime recovers by itself once it answers", d)
		}
		return fail(msg, "last log lines: mozaiks logs runtime --tail 50", d)
	}
}

func gatewayStatus(s int) bool {
	return s == http.StatusBadGateway || s == http.StatusGatewayTimeout || s == http.StatusServiceUnavailable
}

// degradedCause reads the runtime's /api/health body for what is down;
// mongo is true when that is MongoDB (which MDB01 checks on its own).
func degradedCause(health []byte) (cause string, mongo bool) {
	var h struct {
		MongoDB struct {
			Status  string `json:"status"`
			Backend string `json:"backend"`
		} `json:"mongodb"`
	}
	if json.Unmarshal(health, &h) != nil || h.MongoDB.Status == "" || h.MongoDB.Status == "ok" {
		return "", false
	}
	if h.MongoDB.Backend == "embedded" {
		return "the embedded store does not answer (" + h.MongoDB.Status + ")", false
	}
	return "MongoDB does not answer the runtime (" + h.MongoDB.Status + "; MDB01 names the cause)", true
}

// directRuntime finds the runtime answering /api/health without the proxy:
// at the runtime service's published port in compose, at serve's own
// address otherwise. It returns that base URL.
func (e *Env) directRuntime(ctx context.Context) (string, bool) {
	var candidates []string
	if cf, err := e.Compose(); err == nil && cf != nil {
		for _, p := range cf.Ports {
			if p.Service == runtimeService {
				host := p.HostIP
				if host == "" || host == "0.0.0.0" || host == "::" {
					host = "127.0.0.1"
				}
				candidates = append(candidates, "http://"+net.JoinHostPort(host, strconv.Itoa(p.Port)))
			}
		}
	}
	candidates = append(candidates, localURL(e.Values))
	for _, c := range candidates {
		if c == e.URL {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		status, _, _, err := probeGet(cctx, e, c+"/api/health", nil)
		cancel()
		if err == nil && status == http.StatusOK {
			return c, true
		}
	}
	return "", false
}

func hintForStatus(s int) string {
	switch {
	case s == http.StatusNotFound:
		return "the URL does not reach the runtime: route /api/ (and /ws/) to it in the proxy"
	case s == http.StatusBadGateway || s == http.StatusGatewayTimeout || s == http.StatusServiceUnavailable:
		return "the proxy cannot reach the runtime: is the container up (mozaiks status) and the upstream address right?"
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		return "something in front of the runtime requires auth for /api/health; probes must pass without a token"
	default:
		return "read the runtime's log: mozaiks logs runtime --tail 50"
	}
}

// safeJSON keeps a small JSON answer as data (health bodies carry only
// status fields) and anything else as truncated text.
func safeJSON(b []byte) any {
	var v any
	if json.Unmarshal(b, &v) == nil {
		return v
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// runtimeLogs fetches the runtime container's last log lines when this is
// a compose deployment and the engine answers; nil otherwise.
func runtimeLogs(ctx context.Context, env *Env) []string {
	cf, err := env.Compose()
	if err != nil || cf == nil {
		return nil
	}
	api, err := env.docker()
	if err != nil {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	list, err := api.ProjectContainers(cctx, cf.Project)
	if err != nil {
		return nil
	}
	for _, c := range list {
		if c.Service == "runtime" || strings.HasSuffix(c.Name, "-runtime") {
			l, err := api.Logs(cctx, c.ID, 10)
			if err != nil {
				return nil
			}
			return strings.Split(strings.TrimRight(l, "\n"), "\n")
		}
	}
	return nil
}

// origins is what CORS01 and the WebSocket checks test: CORS_ORIGINS plus --origin.
func (e *Env) origins() []string {
	var out []string
	if e.Config != nil {
		for _, o := range e.Config.CORSOrigins {
			if o != "*" {
				out = append(out, o)
			}
		}
	}
	if e.Origin != "" && !slices.Contains(out, e.Origin) {
		out = append(out, e.Origin)
	}
	return out
}

// pageOrigin is the origin a browser page would send: --origin, else the
// public URL itself when it is allowed, else the first allowed origin.
func (e *Env) pageOrigin() string {
	if e.Origin != "" {
		return e.Origin
	}
	if u, err := e.targetURL(); err == nil {
		self := u.Scheme + "://" + u.Host
		if e.Config != nil && (slices.Contains(e.Config.CORSOrigins, self) || slices.Contains(e.Config.CORSOrigins, "*")) {
			return self
		}
	}
	if o := e.origins(); len(o) > 0 {
		return o[0]
	}
	return ""
}

// bogusOrigin is an origin nobody may allow (.invalid is reserved, RFC 2606).
const bogusOrigin = "https://mozaiks-doctor-bogus.invalid"

func checkCORS() Check {
	return Check{Code: "CORS01", Name: "CORS and socket origins", Needs: []string{"RT01"}, Timeout: 20 * time.Second, Run: runCORS}
}

func runCORS(ctx context.Context, env *Env) Result {
	origins := env.origins()
	d := map[string]any{"origins": origins}
	if env.Config != nil && slices.Contains(env.Config.CORSOrigins, "*") {
		return corsWildcard(ctx, env, d)
	}
	if len(origins) == 0 {
		return fail("no browser origin is allowed (CORS_ORIGINS is empty)", "set CORS_ORIGINS to your front-end origins, e.g. CORS_ORIGINS=https://app.example.com", d)
	}
	var refused, noUpgrade []string
	perOrigin := map[string]any{}
	for _, o := range origins {
		pre, err := preflight(ctx, env, o)
		if err != nil {
			return fail("preflight failed: "+netCause(err), "", d)
		}
		ws := wsHandshakeStatus(ctx, env, o)
		perOrigin[o] = map[string]any{"preflight_allow_origin": pre.allowOrigin, "ws_status": ws}
		switch {
		case !pre.allows(o) || ws == http.StatusForbidden:
			refused = append(refused, o)
		case ws != http.StatusSwitchingProtocols:
			// Not an origin decision (the proxy does not upgrade, 502...):
			// WS01 judges that, with the proxy lines to add.
			noUpgrade = append(noUpgrade, o)
		}
	}
	d["per_origin"] = perOrigin
	bogus, err := preflight(ctx, env, bogusOrigin)
	if err != nil {
		return fail("preflight failed: "+netCause(err), "", d)
	}
	bogusWS := wsHandshakeStatus(ctx, env, bogusOrigin)
	d["bogus_origin"] = map[string]any{"origin": bogusOrigin, "preflight_allow_origin": bogus.allowOrigin, "allow_credentials": bogus.allowCredentials, "ws_status": bogusWS}

	want := "CORS_ORIGINS=" + strings.Join(origins, ",")
	hint := "set " + want + " on the runtime (exact scheme://host[:port], no trailing slash) and restart it; the proxy must not add its own Access-Control-* headers"
	if len(refused) > 0 && env.Config != nil && allListed(refused, env.Config.CORSOrigins) {
		// Telling the operator to set the value they already have is no help.
		hint = "CORS_ORIGINS already lists " + strings.Join(refused, ", ") + ", so the runtime answering is not running with this configuration: " +
			"restart it so it reads it (" + env.restartCommand() + "); or the proxy rewrites Origin or adds its own Access-Control-* headers"
	}
	var problems []string
	if len(refused) > 0 {
		problems = append(problems, "allowed origin refused: "+strings.Join(refused, ", "))
	}
	if bogus.allowOrigin == "*" && bogus.allowCredentials {
		problems = append(problems, "Access-Control-Allow-Origin: * together with credentials")
	} else if bogus.allows(bogusOrigin) {
		problems = append(problems, "an unknown origin is allowed by CORS ("+bogus.allowOrigin+")")
	}
	if bogusWS == http.StatusSwitchingProtocols {
		problems = append(problems, "an unknown origin may open WebSockets (cross-site WebSocket hijacking)")
	}
	if len(problems) > 0 {
		return fail(strings.Join(problems, "; "), hint, d)
	}
	if len(noUpgrade) > 0 {
		return ok(fmt.Sprintf("%d origin(s) allowed over HTTP; the WebSocket handshake did not upgrade, so socket origins are not judged here (see WS01)", len(origins)), d)
	}
	return ok(fmt.Sprintf("%d origin(s) allowed over HTTP and WebSocket; an unknown origin is refused", len(origins)), d)
}

type preflightResult struct {
	allowOrigin      string
	allowCredentials bool
}

func (p preflightResult) allows(o string) bool { return p.allowOrigin == o || p.allowOrigin == "*" }

func preflight(ctx context.Context, env *Env, origin string) (preflightResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodOptions, env.URL+diag.PathWhoami, nil)
	if err != nil {
		return preflightResult{}, err
	}
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization,content-type")
	resp, err := env.httpClient(8 * time.Second).Do(req)
	if err != nil {
		return preflightResult{}, err
	}
	resp.Body.Close()
	return preflightResult{
		allowOrigin:      resp.Header.Get("Access-Control-Allow-Origin"),
		allowCredentials: resp.Header.Get("Access-Control-Allow-Credentials") == "true",
	}, nil
}

func checkStream() Check {
	return Check{Code: "STR01", Name: "streaming through the proxy", Needs: []string{"RT01"}, Timeout: 15 * time.Second, Run: runStream}
}

func runStream(ctx context.Context, env *Env) Result {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, env.URL+diag.PathStream, nil)
	if err != nil {
		return fail("bad URL", "", nil)
	}
	start := env.now()
	resp, err := env.httpClient(12 * time.Second).Do(req)
	if err != nil {
		return fail("stream request failed: "+netCause(err), "", nil)
	}
	defer resp.Body.Close()
	d := map[string]any{"status": resp.StatusCode, "content_type": resp.Header.Get("Content-Type"), "content_encoding": resp.Header.Get("Content-Encoding")}
	if resp.StatusCode == http.StatusNotFound {
		return warn("/api/diag/stream not found (a runtime older than this doctor, or the proxy routes it elsewhere)", "upgrade the runtime; route /api/ to it; a proxy written by mozaiks init hides /api/diag/* unless X-Mozaiks-Diag carries MOZAIKS_DIAG_TOKEN from .env", d)
	}
	if resp.StatusCode != http.StatusOK {
		return fail(fmt.Sprintf("/api/diag/stream answered %d", resp.StatusCode), hintForStatus(resp.StatusCode), d)
	}
	var arrivals []time.Duration
	var sent []time.Time
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var c diag.StreamChunk
		if json.Unmarshal([]byte(strings.TrimPrefix(sc.Text(), "data: ")), &c) != nil {
			continue
		}
		arrivals = append(arrivals, env.now().Sub(start))
		sent = append(sent, c.SentAt)
	}
	if len(arrivals) < 2 {
		return fail(fmt.Sprintf("stream cut short: %d chunk(s) arrived", len(arrivals)), "the proxy closes or rewrites streamed responses; check its read timeout and buffering", d)
	}
	first, last := arrivals[0], arrivals[len(arrivals)-1]
	sentSpan := sent[len(sent)-1].Sub(sent[0])
	gotSpan := last - first
	d["chunks"] = len(arrivals)
	d["first_byte_ms"] = first.Milliseconds()
	d["last_byte_ms"] = last.Milliseconds()
	d["server_span_ms"] = sentSpan.Milliseconds()
	// The server spread its chunks over sentSpan; if they reached us within a
	// small fraction of that, something in between held them back.
	if sentSpan > 0 && gotSpan < sentSpan/4 {
		return fail(fmt.Sprintf("responses are buffered: the first byte arrived with the last (%d chunks sent over %s arrived within %s)",
			len(arrivals), sentSpan.Round(time.Millisecond), gotSpan.Round(time.Millisecond)),
			"turn proxy buffering off for the runtime: nginx `proxy_buffering off;` (and do not ignore X-Accel-Buffering), no gzip on streamed responses", d)
	}
	return ok(fmt.Sprintf("%d chunks streamed as sent (first after %s, last after %s)", len(arrivals), first.Round(time.Millisecond), last.Round(time.Millisecond)), d)
}

// corsWildcard judges CORS_ORIGINS=*: tolerable for a demo without
// credentials, never together with Access-Control-Allow-Credentials.
func corsWildcard(ctx context.Context, env *Env, d map[string]any) Result {
	p, err := preflight(ctx, env, bogusOrigin)
	if err != nil {
		return fail("preflight failed: "+netCause(err), "", d)
	}
	d["bogus_origin"] = map[string]any{"origin": bogusOrigin, "preflight_allow_origin": p.allowOrigin, "allow_credentials": p.allowCredentials}
	hint := "set CORS_ORIGINS to the exact origins of your front-ends, e.g. CORS_ORIGINS=https://app.example.com"
	if p.allowCredentials && (p.allowOrigin == "*" || p.allowOrigin == bogusOrigin) {
		return fail("any origin is allowed together with credentials", hint, d)
	}
	return warn("CORS_ORIGINS=*: any web site may call this runtime and open its sockets", hint, d)
}

func allListed(origins, configured []string) bool {
	for _, o := range origins {
		if !slices.Contains(configured, o) {
			return false
		}
	}
	return true
}

// restartCommand is how this deployment's runtime is restarted.
func (e *Env) restartCommand() string {
	switch e.DeploymentKind() {
	case KindComposeDev, KindComposeProd:
		return e.upCommand() + ", which recreates it when its settings changed"
	case KindK8s:
		return "kubectl rollout restart deployment/mozaiksai-runtime"
	}
	return "stop mozaiks serve and start it again"
}

// startHint says how this deployment's runtime is started and where its
// log is.
func (e *Env) startHint() string {
	switch e.DeploymentKind() {
	case KindComposeDev, KindComposeProd:
		return "start it: " + e.upCommand() + "; its last log lines: mozaiks logs runtime --tail 50 (details show them when Docker answers)"
	case KindK8s:
		return "check the Deployment: kubectl get pods -l app=mozaiksai-runtime; kubectl logs deploy/mozaiksai-runtime --tail 50"
	}
	return "start it (mozaiks serve), or point --url / MOZAIKS_PUBLIC_URL at where it listens"
}
