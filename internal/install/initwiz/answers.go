// Package initwiz is `mozaiks init`: it gathers the operator's answers (flags,
// environment, the previous .env, or an interactive form), checks them against
// the real services, renders the deployment files from the embedded templates
// and writes them atomically, showing a redacted diff before changing anything.
package initwiz

import (
	"cmp"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/mozaiks/mozaiks/internal/config"
	"github.com/mozaiks/mozaiks/internal/llm"
)

// Env names of the answers: the runtime's own names where it has one, so a
// .env written by init is read back by both init and `mozaiks serve`.
const (
	EnvDeployment = "MOZAIKS_DEPLOYMENT"
	EnvDatabase   = "MOZAIKS_DATABASE"
	EnvProxy      = "MOZAIKS_PROXY"
	EnvK8s        = "MOZAIKS_K8S"
	EnvMongoURI   = "MONGO_URI"
	EnvAPIKey     = "OPENAI_API_KEY"
	EnvBaseURL    = "OPENAI_BASE_URL"
	EnvModel      = "DEFAULT_LLM_MODEL"
	EnvPublicURL  = "MOZAIKS_PUBLIC_URL"
	EnvCORS       = "CORS_ORIGINS"
	EnvAppID      = "DEFAULT_APP_ID"
	EnvProject    = "MOZAIKS_PROJECT"
	EnvHTTPPort   = "MOZAIKS_HTTP_PORT"

	envJWTSecret = "AUTH_JWT_SECRET"
	envMongoUser = "MONGO_ROOT_USERNAME"
	envMongoPass = "MONGO_ROOT_PASSWORD"
	envDiagToken = "MOZAIKS_DIAG_TOKEN"
)

// Defaults of the project name and the runtime's host port.
const (
	DefaultProject  = "mozaiksai"
	DefaultHTTPPort = "8000"
)

// Question is one answer under its flag and environment names.
type Question struct {
	Flag   string
	Env    string
	Help   string
	Bool   bool // a boolean flag (--k8s)
	Secret bool
}

// Questions lists every answer init takes, in the order the form asks them.
// The CLI binds one flag per entry; the names are fixed by spec/operator.md.
var Questions = []Question{
	{Flag: "deployment", Env: EnvDeployment, Help: "dev (compose with Mongo, auth off) or prod (auth on, restart policies, TLS proxy)"},
	{Flag: "database", Env: EnvDatabase, Help: "bundled (mongo container), external (--mongo-uri) or embedded (SQLite in the runtime container)"},
	{Flag: "mongo-uri", Env: EnvMongoURI, Help: "MongoDB URI for --database external", Secret: true},
	{Flag: "openai-api-key", Env: EnvAPIKey, Help: "OpenAI (or compatible) API key", Secret: true},
	{Flag: "openai-base-url", Env: EnvBaseURL, Help: "OpenAI-compatible base URL, e.g. http://vllm:8000/v1 (default api.openai.com)"},
	{Flag: "model", Env: EnvModel, Help: "default model (default gpt-4o-mini)"},
	{Flag: "public-url", Env: EnvPublicURL, Help: "public URL of the runtime, e.g. https://agents.example.com"},
	{Flag: "cors-origins", Env: EnvCORS, Help: "comma list of browser origins allowed to call the runtime"},
	{Flag: "app-id", Env: EnvAppID, Help: "default app id (default \"default\")"},
	{Flag: "proxy", Env: EnvProxy, Help: "reverse proxy for prod: caddy (automatic TLS), nginx (a compose service), nginx-host (an nginx you run on the host) or none"},
	{Flag: "k8s", Env: EnvK8s, Help: "also write Kubernetes manifests into k8s/", Bool: true},
	{Flag: "project-name", Env: EnvProject, Help: "compose project name; containers are PROJECT-runtime, PROJECT-mongo, so two stacks can share a host (default mozaiksai)"},
	{Flag: "http-port", Env: EnvHTTPPort, Help: "host port the runtime is published on (default 8000; on 127.0.0.1 behind a proxy)"},
	{Flag: "cloud-run", Env: EnvCloudRun, Help: "also write cloudrun/service.yaml for Google Cloud Run", Bool: true},
	{Flag: "container-apps", Env: EnvContainerApps, Help: "also write azure/containerapp.yaml for Azure Container Apps", Bool: true},
}

func questionByEnv(env string) Question {
	for _, q := range Questions {
		if q.Env == env {
			return q
		}
	}
	return Question{Env: env}
}

// name is how errors refer to an answer: "--public-url (MOZAIKS_PUBLIC_URL)".
func (q Question) name() string { return "--" + q.Flag + " (" + q.Env + ")" }

// Answers are the operator's choices. Strings are raw until Normalize.
type Answers struct {
	Deployment    string // dev | prod
	Database      string // bundled | external | embedded
	MongoURI      string // external only
	OpenAIAPIKey  string
	OpenAIBaseURL string
	Model         string
	PublicURL     string
	CORSOrigins   string // comma list
	AppID         string
	Proxy         string // caddy | nginx | none
	K8s           bool
	Project       string // compose project: container and volume names derive from it
	HTTPPort      string // the runtime's host port
	CloudRun      bool   // cloud.go
	ContainerApps bool
}

// mergeAnswers layers the sources, lowest first: the previous .env, the
// environment, then flags (the precedence of every mozaiks command).
func mergeAnswers(layers ...map[string]string) Answers {
	get := func(env string) string {
		v := ""
		for _, l := range layers {
			if x, ok := l[env]; ok {
				v = strings.TrimSpace(x)
			}
		}
		return v
	}
	a := Answers{
		Deployment:    strings.ToLower(get(EnvDeployment)),
		Database:      strings.ToLower(get(EnvDatabase)),
		MongoURI:      get(EnvMongoURI),
		OpenAIAPIKey:  get(EnvAPIKey),
		OpenAIBaseURL: get(EnvBaseURL),
		Model:         get(EnvModel),
		PublicURL:     get(EnvPublicURL),
		CORSOrigins:   get(EnvCORS),
		AppID:         get(EnvAppID),
		Proxy:         strings.ToLower(get(EnvProxy)),
		Project:       strings.ToLower(get(EnvProject)),
		HTTPPort:      get(EnvHTTPPort),
	}
	a.K8s, _ = strconv.ParseBool(get(EnvK8s))
	a.CloudRun, _ = strconv.ParseBool(get(EnvCloudRun))
	a.ContainerApps, _ = strconv.ParseBool(get(EnvContainerApps))
	return a
}

// fillDefaults sets what has a sensible default once the deployment is known.
// The deployment itself has none: non-interactive runs must say it.
func (a *Answers) fillDefaults() {
	if a.Database == "" {
		a.Database = "bundled"
	}
	if a.Model == "" {
		a.Model = llm.DefaultModel
	}
	if a.AppID == "" {
		a.AppID = "default"
	}
	if a.Project == "" {
		a.Project = DefaultProject
	}
	if a.HTTPPort == "" {
		a.HTTPPort = DefaultHTTPPort
	}
	if a.Deployment == "dev" {
		if a.PublicURL == "" {
			a.PublicURL = "http://localhost:8000"
		}
		if a.Proxy == "" {
			a.Proxy = "none"
		}
		if a.CORSOrigins == "" {
			s, _ := config.SettingByKey("cors_origins")
			a.CORSOrigins = s.Default
		}
	}
	if a.Deployment == "prod" {
		if a.Proxy == "" {
			a.Proxy = "caddy"
		}
		if a.CORSOrigins == "" && a.PublicURL != "" {
			if o, err := config.NormalizeOrigin(originOf(a.PublicURL)); err == nil {
				a.CORSOrigins = o
			}
		}
	}
}

// originOf cuts a URL down to scheme://host[:port].
func originOf(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return raw
	}
	return u.Scheme + "://" + u.Host
}

// missing lists the answers a non-interactive run cannot guess.
func (a Answers) missing() []string {
	var out []string
	if a.Deployment == "" {
		out = append(out, questionByEnv(EnvDeployment).name()+" dev|prod")
	}
	if a.Database == "external" && a.MongoURI == "" {
		out = append(out, questionByEnv(EnvMongoURI).name())
	}
	if a.OpenAIAPIKey == "" && a.OpenAIBaseURL == "" {
		out = append(out, questionByEnv(EnvAPIKey).name()+" or "+questionByEnv(EnvBaseURL).name())
	}
	if a.Deployment == "prod" && a.PublicURL == "" {
		out = append(out, questionByEnv(EnvPublicURL).name())
	}
	return out
}

// The validators below serve both the form (inline) and Normalize.

func validDeployment(s string) error { return oneOf(s, "dev", "prod") }
func validDatabase(s string) error   { return oneOf(s, "bundled", "external", "embedded") }
func validProxy(s string) error      { return oneOf(s, "caddy", "nginx", "nginx-host", "none") }

func oneOf(s string, allowed ...string) error {
	for _, a := range allowed {
		if s == a {
			return nil
		}
	}
	return fmt.Errorf("want one of %s, got %q", strings.Join(allowed, ", "), s)
}

func validMongoURI(s string) error {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "mongodb://") && !strings.HasPrefix(s, "mongodb+srv://") {
		return fmt.Errorf("want a mongodb:// or mongodb+srv:// URI")
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return fmt.Errorf("not a valid URI (host missing or malformed)")
	}
	return nil
}

func validBaseURL(s string) error {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("want an absolute http:// or https:// URL, e.g. https://api.openai.com/v1")
	}
	return nil
}

func validModel(s string) error {
	if strings.TrimSpace(s) == "" || strings.ContainsAny(strings.TrimSpace(s), " \t\r\n") {
		return fmt.Errorf("want a model name without spaces, e.g. gpt-4o-mini")
	}
	return nil
}

// validPublicURL accepts scheme://host[:port] with an optional path; the host
// goes into proxy configs verbatim, so only DNS names and IP addresses pass.
func validPublicURL(s string) error {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("want an absolute http:// or https:// URL, e.g. https://agents.example.com")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("must not have user info, a query or a fragment")
	}
	if !validHost(u.Hostname()) {
		return fmt.Errorf("host %q is not a DNS name or IP address", u.Hostname())
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q is not 1-65535", p)
		}
	}
	return nil
}

func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// normalizeOrigins turns the comma list into its canonical form; "*" is refused in prod.
func normalizeOrigins(s, deployment string) (string, error) {
	var out []string
	for _, o := range strings.Split(s, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		if o == "*" {
			if deployment == "prod" {
				return "", fmt.Errorf(`"*" is not allowed in prod: list the origins your frontends are served from`)
			}
			out = append(out, o)
			continue
		}
		n, err := config.NormalizeOrigin(o)
		if err != nil {
			return "", err
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return "", fmt.Errorf("want at least one origin, e.g. https://app.example.com")
	}
	return strings.Join(out, ","), nil
}

func validAppID(s string) error {
	if !config.ValidID(s) {
		return fmt.Errorf("want 1-128 characters of A-Z a-z 0-9 . _ : @ -")
	}
	return nil
}

// validProject: compose's rule for project names.
func validProject(s string) error {
	if s == "" || len(s) > 63 {
		return fmt.Errorf("want 1-63 characters of a-z 0-9 _ -, starting with a letter or digit")
	}
	for i, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || (i > 0 && (c == '_' || c == '-'))) {
			return fmt.Errorf("want 1-63 characters of a-z 0-9 _ -, starting with a letter or digit")
		}
	}
	return nil
}

func validPort(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("want a port number 1-65535")
	}
	return nil
}

// Normalize validates every answer and returns the canonical form, or one
// usage error naming each bad answer by its flag.
func (a Answers) Normalize() (Answers, []string) {
	var probs []string
	bad := func(env string, err error) {
		if err != nil {
			probs = append(probs, questionByEnv(env).name()+": "+err.Error())
		}
	}
	bad(EnvDeployment, validDeployment(a.Deployment))
	bad(EnvDatabase, validDatabase(a.Database))
	bad(EnvProxy, validProxy(a.Proxy))
	if a.Database == "external" {
		bad(EnvMongoURI, validMongoURI(a.MongoURI))
		a.MongoURI = strings.TrimSpace(a.MongoURI)
	} else {
		a.MongoURI = ""
	}
	bad(EnvBaseURL, validBaseURL(a.OpenAIBaseURL))
	a.OpenAIBaseURL = strings.TrimRight(a.OpenAIBaseURL, "/")
	bad(EnvModel, validModel(a.Model))
	if err := validPublicURL(a.PublicURL); err != nil {
		bad(EnvPublicURL, err)
	} else {
		a.PublicURL = strings.TrimRight(a.PublicURL, "/")
		if a.Deployment == "prod" && a.Proxy != "none" && endpointOf(a.PublicURL).port == 8000 {
			bad(EnvPublicURL, fmt.Errorf("port 8000 is the runtime's own port; the proxy needs another (e.g. 443)"))
		}
	}
	origins, err := normalizeOrigins(a.CORSOrigins, a.Deployment)
	bad(EnvCORS, err)
	a.CORSOrigins = origins
	bad(EnvAppID, validAppID(a.AppID))
	a.Project = cmp.Or(strings.ToLower(strings.TrimSpace(a.Project)), DefaultProject)
	a.HTTPPort = cmp.Or(strings.TrimSpace(a.HTTPPort), DefaultHTTPPort)
	bad(EnvProject, validProject(a.Project))
	bad(EnvHTTPPort, validPort(a.HTTPPort))
	if a.Deployment == "prod" && a.Proxy != "none" && a.HTTPPort == strconv.Itoa(endpointOf(a.PublicURL).port) {
		bad(EnvHTTPPort, fmt.Errorf("the proxy listens on %s already; give the runtime another host port", a.HTTPPort))
	}
	if a.K8s && a.Database != "external" {
		bad(EnvK8s, fmt.Errorf("the Kubernetes manifests need --database external (the cluster runs no bundled Mongo, and replicas cannot share an embedded store)"))
	}
	a.validateCloud(bad)
	return a, probs
}

// endpoint is what the proxy configs need from the public URL.
type endpoint struct {
	https bool
	host  string
	port  int // explicit or the scheme's default
}

func endpointOf(publicURL string) endpoint {
	u, err := url.Parse(publicURL)
	if err != nil {
		return endpoint{}
	}
	e := endpoint{https: u.Scheme == "https", host: u.Hostname(), port: 80}
	if e.https {
		e.port = 443
	}
	if p, err := strconv.Atoi(u.Port()); err == nil {
		e.port = p
	}
	return e
}
