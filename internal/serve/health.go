package serve

import (
	"context"
	"net/http"
	"time"
)

type healthBody struct {
	Status    string      `json:"status"` // ok | degraded | draining
	Version   string      `json:"version"`
	UptimeS   int64       `json:"uptime_s"`
	MongoDB   mongoHealth `json:"mongodb"`
	LLM       llmHealth   `json:"llm"`
	Conns     int         `json:"connections"`
	Runs      int         `json:"active_runs"`
	Workflows []string    `json:"workflows"`
	Relay     relayHealth `json:"relay"`
}

// relayHealth says how live frames reach sockets on other replicas.
type relayHealth struct {
	Mode          string `json:"mode"`                     // change_stream | poll | local
	OtherReplicas *int   `json:"other_replicas,omitempty"` // heard of lately; absent when not known
}

type mongoHealth struct {
	Status  string  `json:"status"` // ok | unavailable
	PingMS  float64 `json:"ping_ms"`
	Backend string  `json:"backend"` // mongodb | embedded
	Error   string  `json:"error,omitempty"`
}

type llmHealth struct {
	Provider   string `json:"provider"`
	Model      string `json:"model"`
	Configured bool   `json:"configured"`
	Note       string `json:"note,omitempty"`
}

// ping asks the store with a short timeout so a probe never hangs.
func (s *Server) ping(ctx context.Context) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	start := time.Now()
	err := s.store.Ping(ctx)
	return time.Since(start), err
}

// health is liveness plus status: 200 while the process serves, even when
// the database is down (then "degraded"). It never needs a token.
func (s *Server) health(w http.ResponseWriter, r *http.Request) error {
	d, err := s.ping(r.Context())
	b := healthBody{Status: "ok", Version: s.version(), UptimeS: int64(time.Since(s.started).Seconds()),
		MongoDB: mongoHealth{Status: "ok", PingMS: float64(d.Microseconds()) / 1000, Backend: s.store.Backend()},
		LLM:     llmHealth{Provider: s.llm.Provider(), Model: s.cfg.DefaultLLMModel, Configured: s.llm.Configured()},
		Conns:   s.ws.Connections(), Runs: s.chats.ActiveRuns(), Workflows: s.workflows.Names(),
		Relay: relayHealth{Mode: s.chats.RelayMode()}}
	if n := s.chats.RelayPeers(); n >= 0 {
		b.Relay.OtherReplicas = &n
	}
	if s.llm.Provider() == "echo" {
		b.LLM.Model = "echo"
		b.LLM.Note = "offline echo provider: replies are canned, not from a model"
	}
	if err != nil {
		b.Status = "degraded"
		b.MongoDB.Status = "unavailable"
		b.MongoDB.Error = "database did not answer a ping"
	}
	if s.draining.Load() {
		b.Status = "draining"
	}
	writeJSON(w, http.StatusOK, b)
	return nil
}

// ready is 200 only when the database answers and the server is not draining.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) error {
	if s.draining.Load() {
		return apiErr(http.StatusServiceUnavailable, "NOT_READY", "server is shutting down")
	}
	if _, err := s.ping(r.Context()); err != nil {
		return &APIError{Status: http.StatusServiceUnavailable, Code: "NOT_READY", Msg: "database (" + s.store.Backend() + ") did not answer a ping", Err: err}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}
