package serve

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mozaiks/mozaiks/internal/chat"
	"github.com/mozaiks/mozaiks/internal/serve/ws"
	"github.com/mozaiks/mozaiks/internal/store"
)

// The general (Ask mode) chat routes ChatUI calls on every page load and when
// it enters Ask mode (ChatUI/src/adapters/api.js listGeneralChats,
// fetchGeneralChatTranscript; ChatUI/src/pages/ChatPage.js
// refreshGeneralSessions, hydrateGeneralTranscript, mapGeneralMessage).

// listGeneralChats: GET /api/general_chats/list/{app_id}/{user_id}?limit=N
// -> {"sessions": [{chat_id, label, sequence, status, created_at,
// last_updated_at, last_sequence}], "count"}, newest first.
func (s *Server) listGeneralChats(w http.ResponseWriter, r *http.Request) error {
	appID, userID := r.PathValue("app_id"), r.PathValue("user_id")
	if err := checkIDs(map[string]string{"app_id": appID, "user_id": userID}); err != nil {
		return err
	}
	limit, err := queryInt(r, "limit", 50, 1, 200)
	if err != nil {
		return err
	}
	// A token for another user is a 401 here: a list names no resource
	// whose existence could leak.
	if err := s.authorize(r, appID, userID); err != nil {
		return err
	}
	list, err := s.chats.ListGeneral(r.Context(), appID, userID, limit, s.allow(r, appID, userID))
	if err != nil {
		return err
	}
	out := make([]map[string]any, len(list))
	for i, x := range list {
		out[i] = map[string]any{"chat_id": x.ChatID, "label": ws.GeneralLabel(x), "sequence": len(list) - i,
			"status": legacyStatus(x.Status), "state": x.Status, "workflow_name": x.Workflow,
			"created_at": x.CreatedAt.UTC().Format(time.RFC3339Nano), "last_updated_at": x.UpdatedAt.UTC().Format(time.RFC3339Nano),
			"last_sequence": x.LastSeq, "message_count": x.MessageCount}
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out, "count": len(out)})
	return nil
}

// generalTranscript: GET /api/general_chats/transcript/{app_id}/{chat_id}
// ?after_sequence=N&limit=M -> {chat_id, label, last_sequence,
// last_updated_at, messages: [{role: "user"|"assistant", content,
// event_id, sequence, timestamp, agent, metadata}]}. A missing chat, a
// workflow chat or another user's chat is a 404 (ChatUI treats 404 as "no
// transcript"). With auth off the owner is the user_id query parameter when
// given.
func (s *Server) generalTranscript(w http.ResponseWriter, r *http.Request) error {
	appID, chatID := r.PathValue("app_id"), r.PathValue("chat_id")
	if err := checkIDs(map[string]string{"app_id": appID, "chat_id": chatID}); err != nil {
		return err
	}
	after, err := queryInt(r, "after_sequence", -1, -1, 1<<62)
	if err != nil {
		return err
	}
	limit, err := queryInt(r, "limit", 200, 1, 1000)
	if err != nil {
		return err
	}
	notFound := apiErr(http.StatusNotFound, "SESSION_NOT_FOUND", "no general chat %s for app %s", chatID, appID)
	if !chat.IsGeneral(chatID) {
		return notFound
	}
	sess, err := s.chats.Get(r.Context(), appID, chatID, s.allow(r, appID, r.URL.Query().Get("user_id")))
	if errors.Is(err, chat.ErrNotYours) {
		return notFound
	}
	if err != nil {
		return err
	}
	msgs := []map[string]any{}
	if err := s.chats.Events(r.Context(), sess, int64(max(after, 0)), func(ev store.Event) bool {
		if m, ok := generalMessage(ev); ok {
			msgs = append(msgs, m)
		}
		return len(msgs) < limit
	}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"chat_id": chatID, "app_id": appID, "user_id": sess.UserID,
		"label": ws.GeneralLabel(sess), "workflow_name": sess.Workflow, "last_sequence": sess.LastSeq,
		"last_updated_at": sess.UpdatedAt.UTC().Format(time.RFC3339Nano), "messages": msgs})
	return nil
}

// generalMessage maps a stored text or attachment to the message shape
// ChatUI's mapGeneralMessage reads (role "assistant" shows as the agent).
func generalMessage(ev store.Event) (map[string]any, bool) {
	if ev.Type != "chat.text" && ev.Type != "chat."+chat.KindAttachment {
		return nil, false
	}
	var d map[string]any
	if json.Unmarshal(ev.Data, &d) != nil {
		return nil, false
	}
	role := "assistant"
	if ev.Agent == "user" || d["role"] == "user" {
		role = "user"
	}
	meta := map[string]any{"source": "general_agent", "kind": d["kind"]}
	if ev.Type != "chat.text" {
		meta["attachment_id"], meta["filename"], meta["content_type"] = d["attachment_id"], d["filename"], d["content_type"]
	}
	content, _ := d["content"].(string)
	return map[string]any{"role": role, "content": content, "agent": ev.Agent, "event_id": ev.ChatID + ":" + strconv.FormatInt(ev.Seq, 10),
		"sequence": ev.Seq, "timestamp": ev.Timestamp.UTC().Format(time.RFC3339Nano), "metadata": meta}, true
}

// unknownFrameCounter counts inbound socket frames of unknown types, which
// are ignored (spec/runtime.md §2.2).
func (s *Server) unknownFrameCounter() func() {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "mozaiks_ws_unknown_frames_total",
		Help: "Inbound WebSocket frames of an unknown type (ignored)."})
	s.metrics.reg.MustRegister(c)
	return c.Inc
}
