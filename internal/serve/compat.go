package serve

import (
	"cmp"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/mozaiks/mozaiks/internal/chat"
	"github.com/mozaiks/mozaiks/internal/serve/ws"
	"github.com/mozaiks/mozaiks/internal/store"
)

// compatRoutes are the routes ChatUI (the original runtime's React client)
// calls: thin views over the same data.
func (s *Server) compatRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/chats/{app_id}/{workflow}/start", s.handle(s.legacyStart))
	mux.HandleFunc("GET /api/chats/exists/{app_id}/{workflow}/{chat_id}", s.handle(s.legacyExists))
	mux.HandleFunc("GET /api/chats/meta/{app_id}/{workflow}/{chat_id}", s.handle(s.legacyMeta))
	mux.HandleFunc("GET /api/chats/{app_id}/{workflow}", s.handle(s.legacyChatIDs))
	mux.HandleFunc("GET /api/sessions/list/{app_id}/{user_id}", s.handle(s.legacyInProgress))
	mux.HandleFunc("GET /api/sessions/recent/{app_id}/{user_id}", s.handle(s.legacyRecent))
	mux.HandleFunc("GET /api/workflows", s.handle(s.workflowsConfig))
	mux.HandleFunc("GET /api/workflows/config", s.handle(s.workflowsConfig))
	mux.HandleFunc("GET /api/workflows/{workflow}/transport", s.handle(s.workflowTransport))
	mux.HandleFunc("GET /api/workflows/{workflow}/ui-tools", s.handle(s.workflowUITools))
	mux.HandleFunc("POST /chat/{app_id}/{chat_id}/{user_id}/input", s.handle(s.legacyInput))
	mux.HandleFunc("POST /api/user-input/submit", s.handle(s.legacyUserInput))
	mux.HandleFunc("POST /api/ui-tool/submit", s.handle(s.legacyUITool))
	mux.HandleFunc("GET /api/general_chats/list/{app_id}/{user_id}", s.handle(s.listGeneralChats))
	mux.HandleFunc("GET /api/general_chats/transcript/{app_id}/{chat_id}", s.handle(s.generalTranscript))
	mux.HandleFunc("POST /api/chat/upload", s.handle(s.upload))
	mux.HandleFunc("GET /api/themes/{app_id}", s.handle(s.theme))
}

// legacyStatus is the integer status the original runtime used.
func legacyStatus(status string) int {
	if status == store.StatusCompleted || status == store.StatusFailed {
		return 1
	}
	return 0
}

func (s *Server) legacyStart(w http.ResponseWriter, r *http.Request) error {
	appID, wf := r.PathValue("app_id"), r.PathValue("workflow")
	var req struct {
		UserID          string `json:"user_id"`
		ClientRequestID string `json:"client_request_id"`
		ForceNew        bool   `json:"force_new"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.UserID == "" {
		return apiErr(http.StatusBadRequest, "MISSING_FIELD", "user_id is required")
	}
	if err := checkIDs(map[string]string{"app_id": appID, "workflow": wf, "user_id": req.UserID}); err != nil {
		return err
	}
	allow := s.allow(r, appID, req.UserID)
	if err := allow(req.UserID); err != nil {
		return err
	}
	if _, ok := s.workflows.Get(wf); !ok {
		return apiErr(http.StatusNotFound, "WORKFLOW_NOT_FOUND", "no workflow %q", wf)
	}
	var sess store.Session
	reused := false
	if !req.ForceNew && req.ClientRequestID == "" {
		for _, st := range []string{store.StatusAwaitingInput, store.StatusInProgress} {
			// General (Ask) chats of the same workflow are not workflow chats to reuse.
			list, err := s.chats.ListWorkflowChats(r.Context(), appID, req.UserID, wf, st, 1, allow)
			if err != nil {
				return err
			}
			if len(list) > 0 && (!reused || list[0].UpdatedAt.After(sess.UpdatedAt)) {
				sess, reused = list[0], true
			}
		}
	}
	if !reused {
		var created bool
		var err error
		sess, created, err = s.chats.Create(r.Context(), chat.OpenRequest{ChatID: NewChatID(), AppID: appID, UserID: req.UserID,
			Workflow: wf, ClientRequestID: req.ClientRequestID})
		if err != nil {
			return err
		}
		reused = !created
	}
	msg := "chat session created"
	if reused {
		msg = "existing chat session reused"
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "chat_id": sess.ChatID, "workflow_name": wf, "app_id": appID,
		"user_id": req.UserID, "websocket_url": wsURL(wf, appID, sess.ChatID, req.UserID), "message": msg, "reused": reused,
		"cache_seed": ws.CacheSeed(sess.ChatID)})
	return nil
}

// legacyLookup reads a chat by the ids of a legacy path; exists is false for
// a missing chat or one of another workflow.
func (s *Server) legacyLookup(r *http.Request) (store.Session, bool, error) {
	appID, wf, chatID := r.PathValue("app_id"), r.PathValue("workflow"), r.PathValue("chat_id")
	if err := checkIDs(map[string]string{"app_id": appID, "workflow": wf, "chat_id": chatID}); err != nil {
		return store.Session{}, false, err
	}
	sess, err := s.chats.Get(r.Context(), appID, chatID, s.allow(r, appID, ""))
	if errors.Is(err, chat.ErrNotYours) || (err == nil && (sess.Workflow != wf || chat.IsGeneral(chatID))) {
		return store.Session{}, false, nil
	}
	if err != nil {
		return store.Session{}, false, err
	}
	return sess, true, nil
}

func (s *Server) legacyExists(w http.ResponseWriter, r *http.Request) error {
	_, ok, err := s.legacyLookup(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]bool{"exists": ok})
	return nil
}

func (s *Server) legacyMeta(w http.ResponseWriter, r *http.Request) error {
	sess, ok, err := s.legacyLookup(r)
	if err != nil {
		return err
	}
	if !ok {
		writeJSON(w, http.StatusOK, map[string]any{"exists": false, "chat_id": r.PathValue("chat_id"), "workflow_name": r.PathValue("workflow")})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]any{"exists": true, "chat_id": sess.ChatID, "workflow_name": sess.Workflow,
		"status": legacyStatus(sess.Status), "last_sequence": sess.LastSeq, "created_at": sess.CreatedAt.Format(time.RFC3339Nano),
		"last_updated_at": sess.UpdatedAt.Format(time.RFC3339Nano), "last_artifact": ws.ChatUIArtifact(sess)})
	return nil
}

func (s *Server) legacyChatIDs(w http.ResponseWriter, r *http.Request) error {
	appID, wf, userID := r.PathValue("app_id"), r.PathValue("workflow"), r.URL.Query().Get("user_id")
	if userID == "" {
		return apiErr(http.StatusBadRequest, "MISSING_FIELD", "user_id query parameter is required")
	}
	if err := checkIDs(map[string]string{"app_id": appID, "workflow": wf, "user_id": userID}); err != nil {
		return err
	}
	if err := s.authorize(r, appID, userID); err != nil {
		return err
	}
	list, err := s.chats.ListWorkflowChats(r.Context(), appID, userID, wf, "", 20, s.allow(r, appID, userID))
	if err != nil {
		return err
	}
	ids := make([]string, len(list))
	for i, x := range list {
		ids[i] = x.ChatID
	}
	writeJSON(w, http.StatusOK, map[string]any{"chat_ids": ids})
	return nil
}

// inProgress lists the user's unfinished sessions, newest first.
func (s *Server) inProgress(r *http.Request) ([]map[string]any, error) {
	appID, userID := r.PathValue("app_id"), r.PathValue("user_id")
	if err := checkIDs(map[string]string{"app_id": appID, "user_id": userID}); err != nil {
		return nil, err
	}
	if err := s.authorize(r, appID, userID); err != nil {
		return nil, err
	}
	var out []map[string]any
	for _, st := range []string{store.StatusInProgress, store.StatusAwaitingInput} {
		list, err := s.chats.ListWorkflowChats(r.Context(), appID, userID, "", st, 50, s.allow(r, appID, userID))
		if err != nil {
			return nil, err
		}
		for _, x := range list {
			out = append(out, map[string]any{"chat_id": x.ChatID, "workflow_name": x.Workflow, "app_id": x.AppID, "user_id": x.UserID,
				"status": legacyStatus(x.Status), "state": x.Status, "created_at": x.CreatedAt, "last_updated_at": x.UpdatedAt,
				"last_sequence": x.LastSeq, "updated": x.UpdatedAt.UnixMilli()})
		}
	}
	// Newest activity first across both statuses.
	slices.SortStableFunc(out, func(a, b map[string]any) int { return cmp.Compare(b["updated"].(int64), a["updated"].(int64)) })
	for _, m := range out {
		delete(m, "updated")
	}
	return out, nil
}

func (s *Server) legacyInProgress(w http.ResponseWriter, r *http.Request) error {
	list, err := s.inProgress(r)
	if err != nil {
		return err
	}
	if list == nil {
		list = []map[string]any{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": list})
	return nil
}

func (s *Server) legacyRecent(w http.ResponseWriter, r *http.Request) error {
	list, err := s.inProgress(r)
	if err != nil {
		return err
	}
	var recent any
	if len(list) > 0 {
		recent = list[0]
	}
	writeJSON(w, http.StatusOK, map[string]any{"session": recent})
	return nil
}

func (s *Server) workflowTransport(w http.ResponseWriter, r *http.Request) error {
	wf := r.PathValue("workflow")
	if _, ok := s.workflows.Get(wf); !ok {
		return apiErr(http.StatusNotFound, "WORKFLOW_NOT_FOUND", "no workflow %q", wf)
	}
	writeJSON(w, http.StatusOK, map[string]any{"workflow_name": wf, "transport": "websocket", "endpoints": map[string]string{
		"websocket": "/ws/" + wf + "/{app_id}/{chat_id}/{user_id}", "input": "/chat/{app_id}/{chat_id}/{user_id}/input"}})
	return nil
}

func (s *Server) workflowUITools(w http.ResponseWriter, r *http.Request) error {
	wf := r.PathValue("workflow")
	m, ok := s.workflows.Manifest(wf)
	if !ok {
		return apiErr(http.StatusNotFound, "WORKFLOW_NOT_FOUND", "no workflow %q", wf)
	}
	writeJSON(w, http.StatusOK, map[string]any{"workflow_name": wf, "ui_tools_count": len(m.Tools), "ui_tools": m.Tools})
	return nil
}

// legacyInput has the effect of a user.input.submit frame and answers 202 at
// once (the original blocked until the run ended).
func (s *Server) legacyInput(w http.ResponseWriter, r *http.Request) error {
	appID, chatID, userID := r.PathValue("app_id"), r.PathValue("chat_id"), r.PathValue("user_id")
	if err := checkIDs(map[string]string{"app_id": appID, "chat_id": chatID, "user_id": userID}); err != nil {
		return err
	}
	var req struct {
		Message      *string        `json:"message"`
		WorkflowName string         `json:"workflow_name"`
		Context      map[string]any `json:"context"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.Message == nil {
		return apiErr(http.StatusBadRequest, "MISSING_FIELD", "message is required")
	}
	// The token is checked before anything is looked up: a caller without
	// the right to this user learns nothing about its chats.
	if err := s.authorize(r, appID, userID); err != nil {
		return err
	}
	sess, err := s.chats.Get(r.Context(), appID, chatID, s.allow(r, appID, userID))
	if errors.Is(err, chat.ErrNotYours) || (err == nil && req.WorkflowName != "" && sess.Workflow != req.WorkflowName) {
		return apiErr(http.StatusNotFound, "SESSION_NOT_FOUND", "no session %s for app %s", chatID, appID)
	}
	if err != nil {
		return err
	}
	ack, err := s.chats.Submit(r.Context(), chat.Submission{AppID: appID, ChatID: chatID, UserID: userID, Text: *req.Message,
		InputRequestID: sess.PendingID, Context: req.Context})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"status": "accepted", "chat_id": chatID, "message_id": ack.MessageID})
	return nil
}

func (s *Server) legacyUserInput(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		InputRequestID string  `json:"input_request_id"`
		UserInput      *string `json:"user_input"`
		AppID          string  `json:"app_id"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.InputRequestID == "" || req.UserInput == nil {
		return apiErr(http.StatusBadRequest, "MISSING_FIELD", "input_request_id and user_input are required")
	}
	if req.AppID == "" {
		req.AppID = s.cfg.DefaultAppID
	}
	if err := checkIDs(map[string]string{"app_id": req.AppID}); err != nil {
		return err
	}
	if _, _, err := s.chats.AnswerInput(r.Context(), req.AppID, req.InputRequestID, *req.UserInput, s.allow(r, req.AppID, "")); err != nil {
		if errors.Is(err, chat.ErrNoPending) {
			return apiErr(http.StatusNotFound, "INPUT_REQUEST_NOT_FOUND", "no pending input request %q", req.InputRequestID)
		}
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "success"})
	return nil
}

func (s *Server) legacyUITool(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		EventID      string         `json:"event_id"`
		ResponseData map[string]any `json:"response_data"`
		AppID        string         `json:"app_id"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.EventID == "" || req.ResponseData == nil {
		return apiErr(http.StatusBadRequest, "MISSING_FIELD", "event_id and response_data are required")
	}
	if req.AppID == "" {
		req.AppID = s.cfg.DefaultAppID
	}
	if err := checkIDs(map[string]string{"app_id": req.AppID}); err != nil {
		return err
	}
	if err := s.chats.RespondUITool(r.Context(), req.AppID, "", req.EventID, req.ResponseData, s.allow(r, req.AppID, "")); err != nil {
		if errors.Is(err, chat.ErrNoPending) {
			return apiErr(http.StatusNotFound, "UI_TOOL_NOT_FOUND", "no UI tool waits for event %q", req.EventID)
		}
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "success"})
	return nil
}
