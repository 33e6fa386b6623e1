package serve

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/mozaiks/mozaiks/internal/chat"
	"github.com/mozaiks/mozaiks/internal/engine"
	"github.com/mozaiks/mozaiks/internal/store"
)

// sessionView is a session as the API shows it.
type sessionView struct {
	ChatID       string          `json:"chat_id"`
	AppID        string          `json:"app_id"`
	UserID       string          `json:"user_id"`
	Workflow     string          `json:"workflow"`
	Status       string          `json:"status"`
	CreatedAt    time.Time       `json:"created_at"`
	UpdatedAt    time.Time       `json:"updated_at"`
	LastSeq      int64           `json:"last_seq"`
	MessageCount int64           `json:"message_count"`
	Usage        store.Usage     `json:"usage"`
	WebSocketURL string          `json:"websocket_url"`
	PendingInput *engine.Pending `json:"pending_input,omitempty"`
}

func wsURL(workflow, appID, chatID, userID string) string {
	return "/ws/" + workflow + "/" + appID + "/" + chatID + "/" + userID
}

func viewOf(x store.Session) sessionView {
	v := sessionView{ChatID: x.ChatID, AppID: x.AppID, UserID: x.UserID, Workflow: x.Workflow, Status: x.Status,
		CreatedAt: x.CreatedAt, UpdatedAt: x.UpdatedAt, LastSeq: x.LastSeq, MessageCount: x.MessageCount, Usage: x.Usage,
		WebSocketURL: wsURL(x.Workflow, x.AppID, x.ChatID, x.UserID)}
	if x.PendingID != "" {
		// The session's columns say what is pending; the engine's state adds
		// the detail once the run that asked has ended.
		v.PendingInput = &engine.Pending{Kind: x.PendingKind, RequestID: x.PendingID}
		if st, err := engine.DecodeState(x.State); err == nil && st.Pending != nil && st.Pending.RequestID == x.PendingID {
			v.PendingInput = st.Pending
		}
	}
	return v
}

// NewChatID makes a chat id: unguessable, and valid under config.ValidID.
func NewChatID() string { return "chat_" + uuid.NewString() }

type createSessionReq struct {
	Workflow        string `json:"workflow"`
	UserID          string `json:"user_id"`
	AppID           string `json:"app_id"`
	ClientRequestID string `json:"client_request_id"`
}

// createSession: POST /api/sessions. 201 with a new session; 200 with the
// same one when the user repeats a client_request_id within 60 s.
func (s *Server) createSession(w http.ResponseWriter, r *http.Request) error {
	var req createSessionReq
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.UserID == "" {
		return apiErr(http.StatusBadRequest, "MISSING_FIELD", "user_id is required")
	}
	if req.Workflow == "" {
		return apiErr(http.StatusBadRequest, "MISSING_FIELD", "workflow is required")
	}
	if req.AppID == "" {
		req.AppID = s.cfg.DefaultAppID
	}
	if err := checkIDs(map[string]string{"workflow": req.Workflow, "user_id": req.UserID, "app_id": req.AppID}); err != nil {
		return err
	}
	if req.ClientRequestID != "" && len(req.ClientRequestID) > 128 {
		return apiErr(http.StatusBadRequest, "INVALID_REQUEST", "client_request_id is longer than 128 characters")
	}
	if err := s.authorize(r, req.AppID, req.UserID); err != nil {
		return err
	}
	if _, ok := s.workflows.Get(req.Workflow); !ok {
		return apiErr(http.StatusNotFound, "WORKFLOW_NOT_FOUND", "no workflow %q", req.Workflow)
	}
	sess, created, err := s.chats.Create(r.Context(), chat.OpenRequest{ChatID: NewChatID(), AppID: req.AppID,
		UserID: req.UserID, Workflow: req.Workflow, ClientRequestID: req.ClientRequestID})
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if !created {
		status = http.StatusOK
	}
	writeJSON(w, status, viewOf(sess))
	return nil
}

// checkIDs validates several ids, naming the first bad one.
func checkIDs(ids map[string]string) error {
	for _, f := range []string{"workflow", "app_id", "chat_id", "user_id"} {
		if v, ok := ids[f]; ok {
			if err := checkID(f, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// messageView is one transcript entry.
type messageView struct {
	Seq       int64           `json:"seq"`
	Type      string          `json:"type"`
	Agent     string          `json:"agent,omitempty"`
	Timestamp time.Time       `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// getSession: GET /api/sessions/{chat_id}[?app_id=&user_id=&after_seq=&limit=]:
// the session's state and a page of its transcript (chat.text events).
func (s *Server) getSession(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	chatID := r.PathValue("chat_id")
	appID := q.Get("app_id")
	if appID == "" {
		appID = s.cfg.DefaultAppID
	}
	userID := q.Get("user_id")
	ids := map[string]string{"chat_id": chatID, "app_id": appID}
	if userID != "" {
		ids["user_id"] = userID
	}
	if err := checkIDs(ids); err != nil {
		return err
	}
	after, err := queryInt(r, "after_seq", 0, 0, 1<<62)
	if err != nil {
		return err
	}
	limit, err := queryInt(r, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	if userID != "" {
		if err := s.authorize(r, appID, userID); err != nil {
			return err // before any lookup: no token, no hint
		}
	}
	sess, err := s.chats.Get(r.Context(), appID, chatID, s.allow(r, appID, userID))
	if err != nil {
		return notFoundAs(err, chatID, appID)
	}
	msgs, next, err := s.transcriptPage(r, sess, int64(after), limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		sessionView
		Messages     []messageView `json:"messages"`
		NextAfterSeq int64         `json:"next_after_seq,omitempty"`
	}{viewOf(sess), msgs, next})
	return nil
}

// transcriptPage collects up to limit chat.text and chat.attachment events after seq after;
// next is the seq to continue from, 0 when the transcript is exhausted.
func (s *Server) transcriptPage(r *http.Request, sess store.Session, after int64, limit int) ([]messageView, int64, error) {
	msgs := []messageView{}
	next := int64(0)
	err := s.chats.Events(r.Context(), sess, after, func(ev store.Event) bool {
		if ev.Type != "chat.text" && ev.Type != "chat.attachment" { // attachments: POST /api/chat/upload
			return true
		}
		msgs = append(msgs, messageView{Seq: ev.Seq, Type: ev.Type, Agent: ev.Agent, Timestamp: ev.Timestamp, Data: ev.Data})
		if len(msgs) == limit {
			next = ev.Seq
			return false
		}
		return true
	})
	return msgs, next, err
}

func notFoundAs(err error, chatID, appID string) error {
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, chat.ErrNotYours) {
		return apiErr(http.StatusNotFound, "SESSION_NOT_FOUND", "no session %s for app %s", chatID, appID)
	}
	return err
}

// listSessions: GET /api/sessions?app_id=&user_id=[&status=&workflow=&limit=&cursor=].
func (s *Server) listSessions(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	userID := q.Get("user_id")
	if userID == "" {
		return apiErr(http.StatusBadRequest, "MISSING_FIELD", "user_id query parameter is required")
	}
	appID := q.Get("app_id")
	if appID == "" {
		appID = s.cfg.DefaultAppID
	}
	if err := checkIDs(map[string]string{"app_id": appID, "user_id": userID}); err != nil {
		return err
	}
	status := q.Get("status")
	switch status {
	case "", store.StatusInProgress, store.StatusAwaitingInput, store.StatusCompleted, store.StatusFailed:
	default:
		return apiErr(http.StatusBadRequest, "INVALID_REQUEST", "status must be in_progress, awaiting_input, completed or failed")
	}
	wf := q.Get("workflow")
	if wf != "" {
		if err := checkID("workflow", wf); err != nil {
			return err
		}
	}
	limit, err := queryInt(r, "limit", 20, 1, store.MaxListLimit)
	if err != nil {
		return err
	}
	if err := s.authorize(r, appID, userID); err != nil {
		return err // a token for another user: 401 (a list names no resource)
	}
	list, next, err := s.chats.List(r.Context(), store.ListQuery{AppID: appID, UserID: userID, Status: status,
		Workflow: wf, Limit: limit, Cursor: q.Get("cursor")}, s.allow(r, appID, userID))
	if err != nil {
		return err
	}
	views := make([]sessionView, len(list))
	for i, x := range list {
		views[i] = viewOf(x)
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": views, "next_cursor": next})
	return nil
}
