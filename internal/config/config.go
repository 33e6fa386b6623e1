// Package config owns the runtime's configuration: one Config struct, loaded
// with the precedence flag > environment > .env in the working directory >
// --config YAML file > default, and validated with errors that name the
// setting and where its value came from.
package config

import (
	"cmp"
	"fmt"
	"github.com/mozaiks/mozaiks/internal/ids"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config is every setting of the runtime and of the operator commands that read it.
type Config struct {
	Addr          string // listen address; from PORT unless --addr is given
	Port          int
	MongoURI      string
	DataDir       string
	WorkflowsPath string
	DefaultAppID  string
	CORSOrigins   []string
	PublicURL     string

	OpenAIAPIKey    string
	OpenAIBaseURL   string
	DefaultLLMModel string
	LLMProvider     string // openai | echo
	// Model call timeouts: to the first byte of a reply, between two of its
	// chunks, and for a whole call with its retries.
	LLMFirstByteTimeout time.Duration
	LLMIdleTimeout      time.Duration
	LLMTimeout          time.Duration
	// LLMHistoryMessages bounds the conversation sent with each model
	// request to about this many recent messages (0: all of it).
	LLMHistoryMessages int
	// StreamChunkInterval: a message's streamed chunks go out at most this
	// often, the ones in between joined (0: each as it comes).
	StreamChunkInterval time.Duration

	LogFormat string // auto | json | text
	LogLevel  string // debug | info | warn | error

	AuthEnabled     bool
	AuthJWTSecret   string
	AuthIssuer      string
	AuthAudience    string
	AuthUserIDClaim string
	AuthClockSkew   time.Duration // allowed on exp/nbf/iat

	ShutdownTimeout time.Duration
	// RunLease is how long a chat's run lease lasts without renewal: how
	// soon another process (or this one, restarted) takes over the runs of
	// a process that died. MongoDB only; the embedded store is one process.
	RunLease time.Duration

	Console bool   // serve the browser console at /
	Limits  Limits // abuse limits (limits.go)
	// ChatUI and Ask mode (spec/runtime.md §1.2).
	DefaultWorkflow string // listed first by GET /api/workflows
	GeneralWorkflow string // workflow whose first agent answers general (Ask) chats
	ThemesPath      string // directory of per-app theme files {app_id}.json
	UploadMaxBytes  int64  // POST /api/chat/upload size limit

	// Sources records where each setting's value came from, by key.
	Sources map[string]Source
}

// Source is where a value came from.
type Source string

const (
	SourceFlag    Source = "flag"
	SourceEnv     Source = "environment"
	SourceDotEnv  Source = ".env"
	SourceFile    Source = "config file"
	SourceDefault Source = "default"
)

// Setting describes one configuration value under its three names.
type Setting struct {
	Key     string // YAML key and viper key: mongo_uri
	Env     string // MONGO_URI
	Flag    string // mongo-uri ("" when the setting has no flag)
	Default string
	Secret  bool
	Help    string
}

// Settings lists every setting, in the order they are reported.
var Settings = []Setting{
	{Key: "port", Env: "PORT", Flag: "port", Default: "8000", Help: "port to listen on (Cloud Run sets PORT)"},
	{Key: "addr", Env: "MOZAIKS_ADDR", Flag: "addr", Default: "", Help: "listen address host:port (overrides PORT)"},
	{Key: "mongo_uri", Env: "MONGO_URI", Flag: "mongo-uri", Secret: true, Help: "MongoDB URI; empty uses the embedded store"},
	{Key: "data_dir", Env: "MOZAIKS_DATA_DIR", Flag: "data-dir", Default: "./data", Help: "directory of the embedded store"},
	{Key: "workflows_path", Env: "MOZAIKS_WORKFLOWS_PATH", Flag: "workflows-path", Default: "./workflows", Help: "directory of workflow folders"},
	{Key: "default_app_id", Env: "DEFAULT_APP_ID", Flag: "app-id", Default: "default", Help: "app_id used when a request names none"},
	{Key: "cors_origins", Env: "CORS_ORIGINS", Flag: "cors-origins", Default: "http://localhost:3000,http://127.0.0.1:3000,http://localhost:5173,http://127.0.0.1:5173,http://localhost:8000,http://127.0.0.1:8000", Help: "comma-separated allowed browser origins"},
	{Key: "public_url", Env: "MOZAIKS_PUBLIC_URL", Flag: "public-url", Help: "public URL of the runtime (through the proxy)"},
	{Key: "openai_api_key", Env: "OPENAI_API_KEY", Flag: "openai-api-key", Secret: true, Help: "OpenAI (or compatible) API key"},
	{Key: "openai_base_url", Env: "OPENAI_BASE_URL", Flag: "openai-base-url", Help: "OpenAI-compatible base URL (e.g. http://vllm:8000/v1)"},
	{Key: "default_llm_model", Env: "DEFAULT_LLM_MODEL", Flag: "model", Default: "gpt-4o-mini", Help: "model used when an agent names none"},
	{Key: "llm_provider", Env: "LLM_PROVIDER", Flag: "llm-provider", Default: "openai", Help: "openai, or echo (offline stand-in for demos)"},
	{Key: "llm_first_byte_timeout", Env: "LLM_FIRST_BYTE_TIMEOUT", Flag: "llm-first-byte-timeout", Default: "30s", Help: "how long a model call waits for the first byte of the reply before it retries"},
	{Key: "llm_idle_timeout", Env: "LLM_IDLE_TIMEOUT", Flag: "llm-idle-timeout", Default: "30s", Help: "how long a streamed reply may stall between chunks before the call retries"},
	{Key: "llm_timeout", Env: "LLM_TIMEOUT", Flag: "llm-timeout", Default: "5m", Help: "bound on a whole model call, retries included"},
	{Key: "llm_history_messages", Env: "LLM_HISTORY_MESSAGES", Default: "100", Help: "recent messages of the conversation sent with each model request, cut at a user message (0: the whole conversation)"},
	{Key: "stream_chunk_interval", Env: "STREAM_CHUNK_INTERVAL", Default: "15ms", Help: "shortest time between two streamed chunks of a message sent to clients; the first goes at once, faster ones are joined (0: each chunk as it comes)"},
	{Key: "log_format", Env: "LOG_FORMAT", Flag: "log-format", Default: "auto", Help: "auto (text on a TTY, else JSON), json or text"},
	{Key: "log_level", Env: "LOG_LEVEL", Flag: "log-level", Default: "info", Help: "debug, info, warn or error"},
	{Key: "auth_enabled", Env: "AUTH_ENABLED", Flag: "auth-enabled", Default: "false", Help: "require bearer JWTs"},
	{Key: "auth_jwt_secret", Env: "AUTH_JWT_SECRET", Secret: true, Help: "HS256 shared secret"},
	{Key: "auth_issuer", Env: "AUTH_ISSUER", Help: "OIDC issuer URL (discovery + JWKS)"},
	{Key: "auth_audience", Env: "AUTH_AUDIENCE", Help: "expected JWT audience"},
	{Key: "auth_user_id_claim", Env: "AUTH_USER_ID_CLAIM", Default: "sub", Help: "claim holding the user id"},
	{Key: "auth_clock_skew", Env: "AUTH_CLOCK_SKEW", Default: "30s", Help: "clock skew allowed on token exp/nbf/iat"},
	{Key: "max_message_bytes", Env: "MOZAIKS_MAX_MESSAGE_BYTES", Default: "262144", Help: "largest user message on any route (413 / chat.error)"},
	{Key: "messages_per_minute", Env: "MOZAIKS_MESSAGES_PER_MINUTE", Default: "30", Help: "user messages per user per minute, bursts of up to 10 (0: no limit)"},
	{Key: "sessions_per_minute", Env: "MOZAIKS_SESSIONS_PER_MINUTE", Default: "10", Help: "new sessions per user per minute, bursts of up to 10 (0: no limit)"},
	{Key: "max_sockets_per_user", Env: "MOZAIKS_MAX_SOCKETS_PER_USER", Default: "16", Help: "open chat sockets per user (0: no limit)"},
	{Key: "max_queued_per_chat", Env: "MOZAIKS_MAX_QUEUED_PER_CHAT", Default: "16", Help: "messages that may wait behind a chat's run; more are refused, not stored (0: no limit)"},
	{Key: "max_conns_per_ip", Env: "MOZAIKS_MAX_CONNS_PER_IP", Default: "4096", Help: "open connections per client IP, sockets included; behind a proxy every client shares its IP (0: no limit)"},
	{Key: "body_timeout", Env: "MOZAIKS_BODY_TIMEOUT", Default: "30s", Help: "time allowed to read a request's headers and body"},
	{Key: "shutdown_timeout", Env: "MOZAIKS_SHUTDOWN_TIMEOUT", Flag: "shutdown-timeout", Default: "25s", Help: "how long shutdown may drain"},
	{Key: "run_lease", Env: "MOZAIKS_RUN_LEASE", Flag: "run-lease", Default: "15s", Help: "run lease on MongoDB: a dead process's runs are taken over after this"},
	{Key: "console", Env: "MOZAIKS_CONSOLE", Flag: "console", Default: "true", Help: "serve the browser console at / (false: / is 404)"},
	{Key: "default_workflow", Env: "DEFAULT_WORKFLOW", Default: "assistant", Help: "workflow listed first by /api/workflows (ChatUI opens its socket for the first)"},
	{Key: "general_workflow", Env: "GENERAL_WORKFLOW", Default: "assistant", Help: "workflow whose agent answers general (Ask mode) chats"},
	{Key: "themes_path", Env: "MOZAIKS_THEMES_PATH", Default: "./themes", Help: "directory of per-app ChatUI themes ({app_id}.json)"},
	{Key: "upload_max_bytes", Env: "MOZAIKS_UPLOAD_MAX_BYTES", Default: "5242880", Help: "largest file POST /api/chat/upload accepts"},
}

// SettingByKey finds a setting.
func SettingByKey(key string) (Setting, bool) {
	for _, s := range Settings {
		if s.Key == key {
			return s, true
		}
	}
	return Setting{}, false
}

// InvalidError says which setting is wrong and where its value came from.
type InvalidError struct {
	Setting Setting
	Source  Source
	Value   string
	Reason  string
}

func (e *InvalidError) Error() string {
	v := e.Value
	if e.Setting.Secret {
		v = "(redacted)"
	}
	return fmt.Sprintf("invalid %s=%q (from %s): %s", e.Setting.Env, v, e.Source, e.Reason)
}

// fromValues builds and validates a Config from resolved string values.
func fromValues(vals map[string]string, src map[string]Source) (*Config, error) {
	bad := func(key, reason string) error {
		s, _ := SettingByKey(key)
		return &InvalidError{Setting: s, Source: src[key], Value: vals[key], Reason: reason}
	}
	c := &Config{Sources: src}
	port, err := strconv.Atoi(strings.TrimSpace(vals["port"]))
	if err != nil || port < 0 || port > 65535 {
		return nil, bad("port", "want a port number 0-65535")
	}
	c.Port = port
	c.Addr = strings.TrimSpace(vals["addr"])
	if c.Addr == "" {
		c.Addr = ":" + strconv.Itoa(port)
	} else if !strings.Contains(c.Addr, ":") {
		return nil, bad("addr", "want host:port, e.g. 127.0.0.1:8000 or :8000")
	}

	c.MongoURI = strings.TrimSpace(vals["mongo_uri"])
	if c.MongoURI != "" && !strings.HasPrefix(c.MongoURI, "mongodb://") && !strings.HasPrefix(c.MongoURI, "mongodb+srv://") {
		return nil, bad("mongo_uri", "want a mongodb:// or mongodb+srv:// URI")
	}
	c.DataDir = vals["data_dir"]
	if c.DataDir == "" {
		return nil, bad("data_dir", "must not be empty")
	}
	c.WorkflowsPath = vals["workflows_path"]
	c.DefaultAppID = vals["default_app_id"]
	if !ValidID(c.DefaultAppID) {
		return nil, bad("default_app_id", "want 1-128 characters of A-Z a-z 0-9 . _ : @ -")
	}
	origins, err := ParseOrigins(vals["cors_origins"])
	if err != nil {
		return nil, bad("cors_origins", err.Error())
	}
	c.CORSOrigins = origins
	c.PublicURL = strings.TrimRight(strings.TrimSpace(vals["public_url"]), "/")
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, bad("public_url", "want an absolute http:// or https:// URL")
		}
	}

	c.OpenAIAPIKey = strings.TrimSpace(vals["openai_api_key"])
	c.OpenAIBaseURL = strings.TrimRight(strings.TrimSpace(vals["openai_base_url"]), "/")
	if c.OpenAIBaseURL != "" {
		if u, err := url.Parse(c.OpenAIBaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, bad("openai_base_url", "want an absolute http:// or https:// URL, e.g. https://api.openai.com/v1")
		}
	}
	c.DefaultLLMModel = vals["default_llm_model"]
	c.LLMProvider = strings.ToLower(vals["llm_provider"])
	if c.LLMProvider != "openai" && c.LLMProvider != "echo" {
		return nil, bad("llm_provider", "want openai or echo")
	}
	for _, d := range []struct {
		key string
		to  *time.Duration
	}{{"llm_first_byte_timeout", &c.LLMFirstByteTimeout}, {"llm_idle_timeout", &c.LLMIdleTimeout}, {"llm_timeout", &c.LLMTimeout}} {
		if *d.to, err = time.ParseDuration(strings.TrimSpace(vals[d.key])); err != nil || *d.to <= 0 {
			return nil, bad(d.key, "want a positive duration such as 30s or 5m")
		}
	}
	if c.LLMHistoryMessages, err = strconv.Atoi(strings.TrimSpace(vals["llm_history_messages"])); err != nil || c.LLMHistoryMessages < 0 {
		return nil, bad("llm_history_messages", "want a number of messages such as 100, or 0 for the whole conversation")
	}
	if c.StreamChunkInterval, err = time.ParseDuration(strings.TrimSpace(vals["stream_chunk_interval"])); err != nil || c.StreamChunkInterval < 0 {
		return nil, bad("stream_chunk_interval", "want a duration such as 15ms, or 0 to send every chunk as it comes")
	}
	c.LogFormat = strings.ToLower(vals["log_format"])
	if c.LogFormat != "auto" && c.LogFormat != "json" && c.LogFormat != "text" {
		return nil, bad("log_format", "want auto, json or text")
	}
	c.LogLevel = strings.ToLower(vals["log_level"])
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return nil, bad("log_level", "want debug, info, warn or error")
	}
	c.AuthEnabled, err = strconv.ParseBool(vals["auth_enabled"])
	if err != nil {
		return nil, bad("auth_enabled", "want true or false")
	}
	c.AuthJWTSecret = vals["auth_jwt_secret"]
	c.AuthIssuer = strings.TrimRight(vals["auth_issuer"], "/")
	c.AuthAudience = vals["auth_audience"]
	c.AuthUserIDClaim = vals["auth_user_id_claim"]
	if c.AuthEnabled && c.AuthJWTSecret == "" && c.AuthIssuer == "" {
		return nil, bad("auth_enabled", "AUTH_ENABLED=true needs AUTH_JWT_SECRET or AUTH_ISSUER")
	}
	if c.AuthEnabled && c.AuthJWTSecret != "" && len(c.AuthJWTSecret) < MinSecretBytes {
		return nil, bad("auth_jwt_secret", fmt.Sprintf("a shared secret must be at least %d bytes (it is %d); generate one with `openssl rand -hex 32`",
			MinSecretBytes, len(c.AuthJWTSecret)))
	}
	c.AuthClockSkew, err = time.ParseDuration(vals["auth_clock_skew"])
	if err != nil || c.AuthClockSkew < 0 || c.AuthClockSkew > 10*time.Minute {
		return nil, bad("auth_clock_skew", "want a duration from 0s to 10m, such as 30s")
	}
	if c.Limits, err = limitsFrom(vals, bad); err != nil {
		return nil, err
	}
	c.ShutdownTimeout, err = time.ParseDuration(vals["shutdown_timeout"])
	if err != nil || c.ShutdownTimeout <= 0 {
		return nil, bad("shutdown_timeout", "want a positive duration such as 25s")
	}
	c.RunLease, err = time.ParseDuration(vals["run_lease"])
	if err != nil || c.RunLease < time.Second {
		return nil, bad("run_lease", "want a duration of at least 1s such as 15s")
	}
	if c.Console, err = strconv.ParseBool(cmp.Or(vals["console"], "true")); err != nil {
		return nil, bad("console", "want true or false")
	}
	c.DefaultWorkflow, c.GeneralWorkflow = vals["default_workflow"], vals["general_workflow"]
	for _, k := range []string{"default_workflow", "general_workflow"} {
		if !ValidID(vals[k]) {
			return nil, bad(k, "want a workflow name: 1-128 characters of A-Z a-z 0-9 . _ : @ -")
		}
	}
	c.ThemesPath = vals["themes_path"]
	c.UploadMaxBytes, err = strconv.ParseInt(strings.TrimSpace(vals["upload_max_bytes"]), 10, 64)
	if err != nil || c.UploadMaxBytes <= 0 {
		return nil, bad("upload_max_bytes", "want a positive number of bytes")
	}
	return c, nil
}

// ParseOrigins normalises a comma-separated origin list to scheme://host[:port]
// without a trailing slash. "*" is kept as is (the server never pairs it with credentials).
func ParseOrigins(s string) ([]string, error) {
	var out []string
	for _, o := range strings.Split(s, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		if o == "*" {
			out = append(out, o)
			continue
		}
		n, err := NormalizeOrigin(o)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// NormalizeOrigin turns "https://Example.com:443/" into "https://example.com".
func NormalizeOrigin(o string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(o))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("origin %q is not scheme://host[:port]", o)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("origin %q must not have a path, query or user info", o)
	}
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return u.Scheme + "://" + host, nil
}

// ValidID reports whether s is a valid app/user/chat id or workflow name
// (see ids.Valid, where the rule lives so that packages below config use it
// too).
func ValidID(s string) bool { return ids.Valid(s) }

// DatabaseName is the database named by the URI's path, default MozaiksAI.
func DatabaseName(mongoURI string) string {
	u, err := url.Parse(mongoURI)
	if err != nil {
		return "MozaiksAI"
	}
	name := strings.Trim(u.Path, "/")
	if name == "" {
		return "MozaiksAI"
	}
	return name
}

// RedactURI hides the password in a URI for output.
func RedactURI(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable URI)"
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	return u.String()
}
