// Package app assembles a running runtime from a Config: logger, store
// (MongoDB or embedded), workflows, model client, engine, chat manager and
// HTTP server, and runs it until its context ends.
package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/mozaiks/mozaiks/internal/auth"
	"github.com/mozaiks/mozaiks/internal/buildinfo"
	"github.com/mozaiks/mozaiks/internal/chat"
	"github.com/mozaiks/mozaiks/internal/config"
	"github.com/mozaiks/mozaiks/internal/engine"
	"github.com/mozaiks/mozaiks/internal/llm"
	"github.com/mozaiks/mozaiks/internal/relay"
	"github.com/mozaiks/mozaiks/internal/serve"
	"github.com/mozaiks/mozaiks/internal/serve/ws"
	"github.com/mozaiks/mozaiks/internal/store"
	"github.com/mozaiks/mozaiks/internal/store/mongo"
	"github.com/mozaiks/mozaiks/internal/store/sqlite"
	"github.com/mozaiks/mozaiks/internal/uerr"
	"github.com/mozaiks/mozaiks/internal/workflow"
	"github.com/mozaiks/mozaiks/workflows"
)

// Options are what the caller adds to the Config.
type Options struct {
	Stderr io.Writer // banner and logs
	// Listener, when set, is used instead of listening on cfg.Addr (tests).
	Listener net.Listener
	// Ready is called with the bound address once the server accepts.
	Ready func(addr string)
	// WS tunes the transport (tests shorten the heartbeat).
	WS ws.Options
}

// NewLogger builds the slog logger the config asks for: JSON unless the
// output is a terminal (or LOG_FORMAT says otherwise).
func NewLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	hopts := &slog.HandlerOptions{Level: level}
	text := cfg.LogFormat == "text"
	if cfg.LogFormat == "auto" {
		if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			text = true
		}
	}
	if text {
		return slog.New(slog.NewTextHandler(w, hopts))
	}
	return slog.New(slog.NewJSONHandler(w, hopts))
}

// OpenStore opens MongoDB when MONGO_URI is set, else the embedded store.
func OpenStore(ctx context.Context, cfg *config.Config, log *slog.Logger) (store.Store, string, error) {
	if cfg.MongoURI != "" {
		s, err := mongo.Open(ctx, cfg.MongoURI, mongo.Options{Logger: log})
		if err != nil {
			// The cause (auth, DNS, TLS, URI...) is classified, never the
			// driver's text, which can quote the password.
			c := mongo.Classify(err)
			return nil, "", uerr.Wrap(err, uerr.ExitPrerequisite, "cannot use MONGO_URI "+config.RedactURI(cfg.MongoURI)+": "+c.Msg,
				c.Hint+" (or unset MONGO_URI to use the embedded store)")
		}
		return s, config.RedactURI(cfg.MongoURI) + " (database " + config.DatabaseName(cfg.MongoURI) + ")", nil
	}
	s, err := sqlite.Open(ctx, cfg.DataDir)
	if errors.Is(err, store.ErrLocked) {
		return nil, "", uerr.Wrap(err, uerr.ExitFailed, "the data directory "+cfg.DataDir+" is in use by another mozaiks process",
			"stop the other process, or give this one its own --data-dir")
	}
	if err != nil {
		// Say why: the cause (permission denied, read-only file system, no
		// space) is the operator's answer; it carries no secret.
		return nil, "", uerr.Wrap(err, uerr.ExitFailed, "cannot open the embedded store in "+cfg.DataDir+": "+rootCause(err),
			"check the directory is writable by this user, or set --data-dir")
	}
	abs, _ := filepath.Abs(s.Path())
	return s, "SQLite " + abs, nil
}

// LLMClient builds the model client the config asks for.
func LLMClient(cfg *config.Config, log *slog.Logger) (llm.Client, error) {
	return llm.New(cfg.LLMProvider, llm.Options{APIKey: cfg.OpenAIAPIKey, BaseURL: cfg.OpenAIBaseURL,
		DefaultModel: cfg.DefaultLLMModel, Logger: log,
		FirstByteTimeout: cfg.LLMFirstByteTimeout, IdleTimeout: cfg.LLMIdleTimeout, Timeout: cfg.LLMTimeout})
}

// Run serves until ctx is cancelled, then shuts down in order and closes the store.
func Run(ctx context.Context, cfg *config.Config, o Options) error {
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	log := NewLogger(cfg, o.Stderr)
	TuneGC(log)

	ln := o.Listener
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", cfg.Addr)
		if err != nil {
			return uerr.Wrap(err, uerr.ExitFailed, "cannot listen on "+cfg.Addr,
				"another process holds the port: stop it, or set PORT / --addr to a free one")
		}
	}
	defer ln.Close()

	st, where, err := OpenStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()

	set, diags := workflow.LoadSet(cfg.WorkflowsPath, workflows.FS)
	for _, d := range diags {
		log.Warn("workflow problem", "diagnostic", d.String())
	}
	model, err := LLMClient(cfg, log)
	if err != nil {
		return uerr.Wrap(err, uerr.ExitUsage, "invalid LLM_PROVIDER", "use openai or echo")
	}
	var verifier *auth.Verifier
	if cfg.AuthEnabled {
		if verifier, err = auth.New(auth.Options{Secret: cfg.AuthJWTSecret, Issuer: cfg.AuthIssuer, Audience: cfg.AuthAudience,
			UserIDClaim: cfg.AuthUserIDClaim, Leeway: cfg.AuthClockSkew, Logger: log}); err != nil {
			return uerr.Wrap(err, uerr.ExitUsage, "invalid auth settings", "set AUTH_JWT_SECRET or AUTH_ISSUER")
		}
	}
	owner, single := "", st.Backend() == "embedded" // the data directory lock makes this the only process
	if host, err := os.Hostname(); err == nil && !single {
		owner = fmt.Sprintf("%s-%d-%d", host, os.Getpid(), time.Now().UnixNano())
	}
	eng := engine.New(engine.Options{Workflows: set, LLM: model, DefaultModel: cfg.DefaultLLMModel, Logger: log,
		HistoryMessages: cmp.Or(cfg.LLMHistoryMessages, -1)})
	rel, stopRelay := relay.For(ctx, st, relay.Options{Origin: owner, Logger: log})
	defer stopRelay()
	chats := chat.NewManager(chat.Options{Store: st, Runner: eng, Workflows: set, Owner: owner, SingleProcess: single,
		HistoryMessages: cmp.Or(cfg.LLMHistoryMessages, -1),
		LeaseTTL:        cfg.RunLease, MaxQueued: cfg.Limits.MaxQueuedPerChat, Logger: log, Relay: rel,
		PrintEvery: cmp.Or(cfg.StreamChunkInterval, -1)})
	srv := serve.New(serve.Options{Config: cfg, Store: st, Workflows: set, LLM: model, Chats: chats, Auth: verifier, Logger: log, WS: o.WS,
		Diagnostics: diags})

	banner(o.Stderr, cfg, ln.Addr().String(), where, model, set, st)
	fmt.Fprintf(o.Stderr, "  replicas   %s\n", relayLine(rel.Mode()))
	if o.Ready != nil {
		o.Ready(ln.Addr().String())
	}
	return srv.Serve(ctx, ln)
}

func banner(w io.Writer, cfg *config.Config, addr, where string, model llm.Client, set *workflow.Set, st store.Store) {
	host, port, _ := net.SplitHostPort(addr)
	if host == "" || host == "::" || host == "0.0.0.0" {
		host = "localhost"
	}
	llmLine := model.Provider() + " " + cfg.DefaultLLMModel
	switch {
	case model.Provider() == llm.ProviderEcho:
		llmLine = "echo (offline stand-in: canned replies, not a model)"
	case !model.Configured():
		llmLine += " (not configured: set OPENAI_API_KEY or OPENAI_BASE_URL, or LLM_PROVIDER=echo)"
	}
	auth := "off (identity is the user_id in the URL)"
	if cfg.AuthEnabled {
		auth = "bearer JWT"
	}
	fmt.Fprintf(w, "mozaiks %s\n  listening  http://%s\n  store      %s (%s)\n  llm        %s\n  workflows  %s\n  auth       %s\n  cors       %s\n",
		buildinfo.Get().Version, net.JoinHostPort(host, port), st.Backend(), where, llmLine, strings.Join(set.Names(), ", "), auth,
		strings.Join(cfg.CORSOrigins, ", "))
	if cfg.Console {
		fmt.Fprintf(w, "  console    %s/\n", cmp.Or(cfg.PublicURL, "http://"+net.JoinHostPort(host, port)))
	}
}

// relayLine says how live frames reach sockets on other replicas.
func relayLine(mode string) string {
	switch mode {
	case relay.ModeLocal:
		return "one process (the embedded store is locked to it)"
	case relay.ModePoll:
		return "live frames shared through MongoDB by polling (no change streams on this server); no sticky sessions needed"
	}
	return "live frames shared through MongoDB change streams; no sticky sessions needed"
}

// rootCause is the innermost error's text, e.g. "permission denied".
func rootCause(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}
