package doctor

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mozaiks/mozaiks/internal/config"
)

// Env is what checks read: the configuration as serve would load it, where
// to probe, and lazy handles to the expensive things (Docker, compose file).
type Env struct {
	Dir       string                   // deployment directory (.env, docker-compose.yml)
	Config    *config.Config           // nil when the configuration is invalid
	ConfigErr error                    // why Config is nil
	Values    map[string]string        // raw resolved values by setting key
	Sources   map[string]config.Source // where each came from
	DotEnv    map[string]string        // the .env file as read (nil when absent)
	Environ   map[string]string        // the process environment

	// Kind is the deployment kind (KindBare, KindComposeDev, ...); empty
	// means detect it from the files on first use (see DeploymentKind).
	Kind     string
	prod     bool
	kindOnce sync.Once

	URL    string // public URL probed by RT01, CORS01, WS*, STR01, TLS01 (no trailing slash)
	Origin string // browser origin to test besides CORS_ORIGINS (--origin)

	RootCAs     *x509.CertPool // nil: system roots (--ca-file adds a private CA to them)
	CAFile      string         // --ca-file, for messages
	InContainer bool           // this process runs inside a container (/.dockerenv); checks judge by DeploymentKind instead
	DockerHost  string         // DOCKER_HOST ("" for the platform default)
	Docker      func() (DockerAPI, error)
	ProcRoot    string // /proc

	Now       func() time.Time
	IdleProbe time.Duration // WS04: how long the socket stays idle (default 65 s)

	// HST01 thresholds, bytes.
	MinDisk, WarnDisk, MinMem, WarnMem uint64

	dockerOnce sync.Once
	dockerAPI  DockerAPI
	dockerErr  error

	composeOnce sync.Once
	compose     *composeFile
	composeErr  error
}

// EnvOptions are the inputs of NewEnv.
type EnvOptions struct {
	Load   config.LoadOptions
	URL    string // --url
	Origin string // --origin
	Prod   bool   // --prod: judge docker-compose.prod.yml
	Kind   string // --kind: the deployment kind, when the files leave it open (k8s/ beside compose files)
	CAFile string // --ca-file: PEM certificates to trust besides the system roots
}

// NewEnv loads the configuration the way serve does and fills defaults. An
// invalid configuration is not an error here: CFG01 reports it.
func NewEnv(o EnvOptions) (*Env, error) {
	env := &Env{Dir: o.Load.Dir, Origin: strings.TrimRight(o.Origin, "/"), Environ: map[string]string{}}
	environ := o.Load.Environ
	if environ == nil {
		environ = os.Environ()
	}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env.Environ[k] = v
		}
	}
	vals, src, err := config.Resolve(o.Load)
	if err != nil {
		return nil, err
	}
	env.Values, env.Sources = vals, src
	env.Config, env.ConfigErr = config.Load(o.Load)
	if d, err := config.ReadDotEnv(filepath.Join(env.Dir, ".env")); err == nil {
		env.DotEnv = d
	}
	env.prod = o.Prod
	switch o.Kind {
	case "", KindBare, KindComposeDev, KindComposeProd, KindK8s:
		env.Kind = o.Kind
	default:
		return nil, fmt.Errorf("--kind %q: want %s, %s, %s or %s", o.Kind, KindBare, KindComposeDev, KindComposeProd, KindK8s)
	}
	if o.CAFile != "" {
		pool, err := loadCAFile(o.CAFile)
		if err != nil {
			return nil, err
		}
		env.RootCAs, env.CAFile = pool, o.CAFile
	}
	env.URL = strings.TrimRight(o.URL, "/")
	if env.URL == "" && env.Config != nil {
		env.URL = env.Config.PublicURL
	}
	if env.URL == "" {
		env.URL = localURL(vals)
	}
	if _, err := os.Stat("/.dockerenv"); err == nil {
		env.InContainer = true
	}
	env.DockerHost = env.Environ["DOCKER_HOST"]
	env.ProcRoot = "/proc"
	return env, nil
}

// loadCAFile is the system roots plus the PEM certificates in path: a
// private CA the proxy's certificate comes from.
func loadCAFile(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--ca-file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("--ca-file %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// localURL is where serve listens on this machine, from --addr/PORT.
func localURL(vals map[string]string) string {
	if addr := strings.TrimSpace(vals["addr"]); addr != "" {
		host, port, err := net.SplitHostPort(addr)
		if err == nil {
			if host == "" || host == "0.0.0.0" || host == "::" {
				host = "127.0.0.1"
			}
			return "http://" + net.JoinHostPort(host, port)
		}
	}
	port := strings.TrimSpace(vals["port"])
	if _, err := strconv.Atoi(port); err != nil {
		port = "8000"
	}
	return "http://127.0.0.1:" + port
}

func (e *Env) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Env) idleProbe() time.Duration {
	if e.IdleProbe > 0 {
		return e.IdleProbe
	}
	return 65 * time.Second
}

// tlsConfig trusts RootCAs (tests, private CAs) or the system roots.
func (e *Env) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: e.RootCAs, MinVersion: tls.VersionTLS12}
}

// httpClient is a fresh client per check: no shared keep-alive state between
// concurrent probes, no redirects followed (a redirect is itself a finding).
func (e *Env) httpClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: diagTransport{token: e.diagToken(), base: &http.Transport{
			Proxy:             nil,
			TLSClientConfig:   e.tlsConfig(),
			DisableKeepAlives: true,
		}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// DiagHeader carries MOZAIKS_DIAG_TOKEN: the proxies `mozaiks init` writes
// answer 404 on /api/diag/* without it, so only the doctor gets through.
const DiagHeader = "X-Mozaiks-Diag"

// diagToken is MOZAIKS_DIAG_TOKEN from the environment or .env.
func (e *Env) diagToken() string {
	if v := e.Environ["MOZAIKS_DIAG_TOKEN"]; v != "" {
		return v
	}
	return e.DotEnv["MOZAIKS_DIAG_TOKEN"]
}

// diagTransport adds the diag token to requests for /api/diag/*, and only
// to those.
type diagTransport struct {
	token string
	base  http.RoundTripper
}

func (d diagTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if d.token != "" && strings.HasPrefix(r.URL.Path, "/api/diag/") {
		r = r.Clone(r.Context())
		r.Header.Set(DiagHeader, d.token)
	}
	return d.base.RoundTrip(r)
}

// Secrets lists the values that must never appear in output: every secret
// setting, the password inside MONGO_URI, and secret-looking .env entries.
func (e *Env) Secrets() []string {
	var out []string
	add := func(v string) {
		v = strings.TrimSpace(v)
		// Very short values ("true", "1") would mangle ordinary text and are
		// not secrets worth the name anyway; SEC01 flags them.
		if len(v) >= 6 {
			out = append(out, v)
		}
	}
	// MONGO_URI is scrubbed by its password, not whole: its redacted form
	// (host, database) is what MDB01 must be able to show.
	for _, s := range config.Settings {
		if s.Secret && s.Key != "mongo_uri" {
			add(e.Values[s.Key])
		}
	}
	if u, err := url.Parse(e.Values["mongo_uri"]); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			add(p)
			add(url.QueryEscape(p))
		}
	}
	for k, v := range e.DotEnv {
		if secretName(k) && k != "MONGO_URI" {
			add(v)
		}
	}
	return out
}

// secretName says whether an environment key names a secret.
func secretName(k string) bool {
	k = strings.ToUpper(k)
	for _, w := range []string{"PASSWORD", "SECRET", "TOKEN", "API_KEY", "PRIVATE"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	return k == "MONGO_URI"
}

// targetURL parses the probe URL.
func (e *Env) targetURL() (*url.URL, error) {
	return url.Parse(e.URL)
}

// Close releases the lazily opened Docker client.
func (e *Env) Close() {
	if e.dockerAPI != nil {
		_ = e.dockerAPI.Close()
	}
}
