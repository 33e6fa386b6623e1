package serve

import (
	"net/http"
	"strconv"
	"time"

	"github.com/mozaiks/mozaiks/internal/auth"
	"github.com/mozaiks/mozaiks/internal/serve/ws"
)

// chatSocket: WS /ws/{workflow}/{app_id}/{chat_id}/{user_id}. Everything
// that can be refused with an HTTP status is checked before the upgrade.
func (s *Server) chatSocket(w http.ResponseWriter, r *http.Request) error {
	p := ws.Params{Workflow: r.PathValue("workflow"), AppID: r.PathValue("app_id"), ChatID: r.PathValue("chat_id"), UserID: r.PathValue("user_id")}
	if err := checkIDs(map[string]string{"workflow": p.Workflow, "app_id": p.AppID, "chat_id": p.ChatID, "user_id": p.UserID}); err != nil {
		return err
	}
	if v := r.URL.Query().Get("after_seq"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return apiErr(http.StatusBadRequest, "INVALID_REQUEST", "after_seq must be a non-negative integer")
		}
		p.AfterSeq, p.HasAfterSeq = n, true
	}
	if s.draining.Load() {
		return apiErr(http.StatusServiceUnavailable, "NOT_READY", "server is shutting down")
	}
	if !s.originAllowed(r) {
		return apiErr(http.StatusForbidden, "ORIGIN_NOT_ALLOWED", "origin %q is not in CORS_ORIGINS", r.Header.Get("Origin"))
	}
	if _, ok := s.workflows.Get(p.Workflow); !ok {
		return apiErr(http.StatusNotFound, "WORKFLOW_NOT_FOUND", "no workflow %q", p.Workflow)
	}
	if s.auth != nil {
		tok, _ := auth.WebSocketToken(r)
		if err := s.auth.Authorize(r.Context(), tok, p.AppID, p.UserID); err != nil {
			return &APIError{Status: http.StatusUnauthorized, Code: "UNAUTHORIZED", Msg: "missing or invalid token (use Sec-WebSocket-Protocol: bearer, <token> or ?access_token=)", Err: err}
		}
	}
	s.ws.ServeChat(w, r, p)
	return nil
}

// chatObserver feeds chat runtime measurements into Prometheus.
type chatObserver struct{ m *metrics }

func (o chatObserver) RunStarted() { o.m.runsLive.Inc() }
func (o chatObserver) RunFinished(status string) {
	o.m.runsLive.Dec()
	o.m.runs.WithLabelValues(status).Inc()
}
func (o chatObserver) LLMCall(model string, d time.Duration, prompt, completion int64) {
	o.m.llmTime.WithLabelValues(model).Observe(d.Seconds())
	o.m.llmTokens.WithLabelValues(model, "prompt").Add(float64(prompt))
	o.m.llmTokens.WithLabelValues(model, "completion").Add(float64(completion))
}
