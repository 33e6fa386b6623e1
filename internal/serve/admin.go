package serve

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/mozaiks/mozaiks/internal/auth"
	"github.com/mozaiks/mozaiks/internal/store"
	"github.com/mozaiks/mozaiks/internal/workflow"
)

// AdminScopes are the token scopes (scp or scope) that open the operator
// view when auth is on. With auth off the view is open, as every route is.
var AdminScopes = []string{"admin", "mozaiks:admin"}

// recentLister is implemented by stores that can list an app's sessions of
// every user (both built-in stores do).
type recentLister interface {
	RecentSessions(ctx context.Context, appID string, limit int) ([]store.Session, error)
}

// authorizeAdmin lets the operator view through with auth off, or with a
// valid token that carries an admin scope.
func (s *Server) authorizeAdmin(r *http.Request) error {
	if s.auth == nil {
		return nil
	}
	id, err := s.auth.Verify(r.Context(), auth.BearerToken(r))
	if err != nil {
		return &APIError{Status: http.StatusUnauthorized, Code: "UNAUTHORIZED", Msg: "missing or invalid bearer token", Err: err}
	}
	for _, sc := range id.Scopes {
		if slices.Contains(AdminScopes, sc) {
			return nil
		}
	}
	return apiErr(http.StatusForbidden, "FORBIDDEN", "the operator view needs a token with the admin scope")
}

type adminOverview struct {
	Status      string                `json:"status"` // ok | degraded | draining
	Version     string                `json:"version"`
	UptimeS     int64                 `json:"uptime_s"`
	Ready       bool                  `json:"ready"`
	ReadyReason string                `json:"ready_reason,omitempty"`
	Store       mongoHealth           `json:"store"`
	LLM         llmHealth             `json:"llm"`
	Conns       int                   `json:"connections"`
	Runs        int                   `json:"active_runs"`
	AuthEnabled bool                  `json:"auth_enabled"`
	AppID       string                `json:"default_app_id"`
	Workflows   []adminWorkflow       `json:"workflows"`
	Problems    []workflow.Diagnostic `json:"problems"` // diagnostics of folders that did not load
}

type adminWorkflow struct {
	Name        string                `json:"name"`
	Description string                `json:"description"`
	Source      string                `json:"source"`
	Pattern     string                `json:"orchestration_pattern"`
	Agents      []string              `json:"agents"`
	Tools       int                   `json:"tools"`
	Diagnostics []workflow.Diagnostic `json:"diagnostics"`
}

// adminOverview: GET /api/admin/overview, the operator view's one read.
func (s *Server) adminOverview(w http.ResponseWriter, r *http.Request) error {
	if err := s.authorizeAdmin(r); err != nil {
		return err
	}
	d, perr := s.ping(r.Context())
	o := adminOverview{
		Status:      "ok",
		Version:     s.version(),
		UptimeS:     int64(time.Since(s.started).Seconds()),
		Ready:       true,
		Store:       mongoHealth{Status: "ok", PingMS: float64(d.Microseconds()) / 1000, Backend: s.store.Backend()},
		LLM:         s.llmStatus(),
		Conns:       s.ws.Connections(),
		Runs:        s.chats.ActiveRuns(),
		AuthEnabled: s.auth != nil,
		AppID:       s.cfg.DefaultAppID,
		Workflows:   []adminWorkflow{},
		Problems:    []workflow.Diagnostic{},
	}
	if perr != nil {
		o.Status, o.Ready, o.ReadyReason = "degraded", false, "database ("+s.store.Backend()+") did not answer a ping"
		o.Store.Status, o.Store.Error = "unavailable", "database did not answer a ping"
	}
	if s.draining.Load() {
		o.Status, o.Ready, o.ReadyReason = "draining", false, "server is shutting down"
	}
	loaded := map[string]bool{}
	for _, name := range s.workflowOrder() {
		wf, _ := s.workflows.Get(name)
		aw := adminWorkflow{Name: name, Description: wf.Orchestrator.Description, Source: wf.Source,
			Pattern: wf.Orchestrator.Pattern, Agents: wf.AgentNames(), Tools: len(wf.Tools), Diagnostics: []workflow.Diagnostic{}}
		for _, dg := range s.diags {
			if dg.Workflow == name {
				aw.Diagnostics = append(aw.Diagnostics, dg)
			}
		}
		loaded[name] = true
		o.Workflows = append(o.Workflows, aw)
	}
	for _, dg := range s.diags {
		if !loaded[dg.Workflow] {
			o.Problems = append(o.Problems, dg)
		}
	}
	writeJSON(w, http.StatusOK, o)
	return nil
}

// adminSessions: GET /api/admin/sessions?app_id=&limit=, the app's most
// recently updated sessions across users.
func (s *Server) adminSessions(w http.ResponseWriter, r *http.Request) error {
	if err := s.authorizeAdmin(r); err != nil {
		return err
	}
	appID := r.URL.Query().Get("app_id")
	if appID == "" {
		appID = s.cfg.DefaultAppID
	}
	if err := checkID("app_id", appID); err != nil {
		return err
	}
	limit, err := queryInt(r, "limit", 20, 1, store.MaxListLimit)
	if err != nil {
		return err
	}
	rl, ok := s.store.(recentLister)
	if !ok {
		return apiErr(http.StatusNotImplemented, "NOT_SUPPORTED", "the %s store cannot list sessions across users", s.store.Backend())
	}
	list, err := rl.RecentSessions(r.Context(), appID, limit)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(list))
	for _, x := range list {
		out = append(out, map[string]any{"chat_id": x.ChatID, "app_id": x.AppID, "user_id": x.UserID, "workflow": x.Workflow,
			"status": x.Status, "created_at": x.CreatedAt, "updated_at": x.UpdatedAt, "last_seq": x.LastSeq,
			"message_count": x.MessageCount, "usage": x.Usage})
	}
	writeJSON(w, http.StatusOK, map[string]any{"app_id": appID, "sessions": out})
	return nil
}
