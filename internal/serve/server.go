// Package serve is the runtime's HTTP server: routes, middleware (CORS,
// auth, logging, metrics), the JSON error shape, and graceful shutdown. The
// WebSocket transport lives in serve/ws and the chat runtime in internal/chat.
package serve

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/rs/cors"

	"github.com/mozaiks/mozaiks/internal/auth"
	"github.com/mozaiks/mozaiks/internal/buildinfo"
	"github.com/mozaiks/mozaiks/internal/chat"
	"github.com/mozaiks/mozaiks/internal/config"
	"github.com/mozaiks/mozaiks/internal/llm"
	"github.com/mozaiks/mozaiks/internal/serve/diag"
	"github.com/mozaiks/mozaiks/internal/serve/limit"
	"github.com/mozaiks/mozaiks/internal/serve/ws"
	"github.com/mozaiks/mozaiks/internal/store"
	"github.com/mozaiks/mozaiks/internal/workflow"
)

// Options are the server's dependencies.
type Options struct {
	Config    *config.Config
	Store     store.Store
	Workflows *workflow.Set
	LLM       llm.Client
	Chats     *chat.Manager
	Auth      *auth.Verifier // nil when auth is off
	Logger    *slog.Logger
	WS        ws.Options // transport tunables (heartbeat, buffers); zero values are the defaults
	// Diagnostics are the workflow loader's findings, shown to operators.
	Diagnostics []workflow.Diagnostic
}

// Server is the runtime's HTTP side.
type Server struct {
	cfg       *config.Config
	store     store.Store
	workflows *workflow.Set
	llm       llm.Client
	chats     *chat.Manager
	auth      *auth.Verifier
	log       *slog.Logger
	metrics   *metrics
	ws        *ws.Handler
	started   time.Time
	draining  atomic.Bool
	handler   http.Handler
	diags     []workflow.Diagnostic
	guards    *guards
}

// New builds the server and its routes.
func New(o Options) *Server {
	s := &Server{cfg: o.Config, store: o.Store, workflows: o.Workflows, llm: o.LLM, chats: o.Chats, auth: o.Auth,
		log: o.Logger, metrics: newMetrics(), started: time.Now(), diags: o.Diagnostics}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	wsOpts := o.WS
	wsOpts.CheckOrigin = s.originAllowed
	wsOpts.Logger = s.log
	wsOpts.OnConnect = func(delta int) { s.metrics.wsConns.Add(float64(delta)) }
	s.guards = s.newGuards()
	s.limitSockets(&wsOpts)
	wsOpts.GeneralWorkflow = s.cfg.GeneralWorkflow
	wsOpts.OnUnknownFrame = s.unknownFrameCounter()
	s.ws = ws.NewHandler(s.chats, wsOpts)
	s.chats.SetObserver(chatObserver{s.metrics})

	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/health", s.handle(s.health))
	mux.HandleFunc("GET /api/ready", s.handle(s.ready))
	mux.Handle("GET /metrics", s.metrics.handler())
	mux.HandleFunc("POST /api/sessions", s.handle(s.createSession))
	mux.HandleFunc("GET /api/sessions", s.handle(s.listSessions))
	mux.HandleFunc("GET /api/sessions/{chat_id}", s.handle(s.getSession))
	mux.HandleFunc("GET /ws/{workflow}/{app_id}/{chat_id}/{user_id}", s.handle(s.chatSocket))
	s.compatRoutes(mux)
	diag.Register(mux, diag.Options{CheckOrigin: s.originAllowed, Logger: s.log, Bounded: s.auth != nil})
	s.consoleRoutes(mux)
	mux.HandleFunc("/", s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return apiErr(http.StatusNotFound, "NOT_FOUND", "no route %s %s", r.Method, r.URL.Path)
	}))

	s.handler = s.observe(s.cors().Handler(s.guard(mux)))
	return s
}

// Handler is the complete HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// cors answers preflights and sets CORS headers for the configured origins.
// Credentials are never combined with "*".
func (s *Server) cors() *cors.Cors {
	wildcard := slices.Contains(s.cfg.CORSOrigins, "*")
	return cors.New(cors.Options{
		AllowedOrigins:   s.cfg.CORSOrigins,
		AllowedMethods:   []string{http.MethodGet, http.MethodPost, http.MethodDelete, http.MethodOptions},
		AllowedHeaders:   []string{"Authorization", "Content-Type", "X-Request-Id"},
		AllowCredentials: !wildcard,
		MaxAge:           600,
	})
}

// originAllowed is the WebSocket Origin policy: the CORS list. A request
// without Origin is not from a browser page and is allowed.
func (s *Server) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if slices.Contains(s.cfg.CORSOrigins, "*") || s.sameOrigin(r, origin) {
		return true
	}
	n, err := config.NormalizeOrigin(origin)
	return err == nil && slices.Contains(s.cfg.CORSOrigins, n)
}

// Serve serves on ln until ctx is cancelled, then shuts down in order: stop
// accepting and mark not ready, tell sockets to go away (1001), let runs reach
// a safe point, wait for in-flight requests, all within the drain timeout.
// The caller closes the store afterwards.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// Runs a stopped or killed process left unfinished, and messages it
	// acknowledged but never answered, continue now (on MongoDB, also the
	// chats other replicas leave, from here on).
	s.chats.RecoverInBackground(5 * time.Second)
	// A client that stalls its headers or body is cut at the body timeout
	// (MOZAIKS_BODY_TIMEOUT, 30 s by default); sockets set their own
	// deadlines once upgraded. Connections per IP are capped below the
	// process's descriptor limit.
	bodyTimeout := s.cfg.Limits.BodyTimeout
	if bodyTimeout <= 0 {
		bodyTimeout = 30 * time.Second
	}
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: min(10*time.Second, bodyTimeout),
		ReadTimeout:       bodyTimeout,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	capped := limit.NewListener(ln, s.cfg.Limits.MaxConnsPerIP)
	capped.OnRefuse = func(ip string) {
		s.metrics.errors.WithLabelValues("TOO_MANY_CONNECTIONS").Inc()
		s.log.Debug("connection refused: per-IP cap", "ip", ip)
	}
	ln = capped
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.draining.Store(true)
	drain := s.cfg.ShutdownTimeout
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	s.log.Info("shutting down", "drain_timeout", drain.String())
	shutdownErr := make(chan error, 1)
	go func() { shutdownErr <- hs.Shutdown(sctx) }() // stops accepting; idle conns close
	s.ws.CloseAll()                                  // 1001 going away to every socket
	s.chats.Shutdown(sctx)                           // cancel runs at a safe point, wait for them to persist
	err := <-shutdownErr
	if errors.Is(err, context.DeadlineExceeded) {
		s.log.Warn("drain timeout reached; closing remaining connections")
		hs.Close()
		return nil
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s *Server) version() string { return buildinfo.Get().Version }
