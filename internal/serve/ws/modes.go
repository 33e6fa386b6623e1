package ws

import (
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"time"

	"github.com/mozaiks/mozaiks/internal/chat"
	"github.com/mozaiks/mozaiks/internal/store"
)

// Ask mode, as ChatUI drives it: the robot avatar sends
// chat.enter_general_mode and expects chat.mode_changed with mode "general"
// and the general chat's id (ChatUI/src/pages/ChatPage.js ensureGeneralMode,
// and handleIncoming case 'mode_changed' reading data.mode,
// data.general_chat_id, data.general_chat_label, data.general_chat_sequence);
// going back sends chat.switch_workflow {chat_id} and expects
// chat.context_switched {to_chat_id, workflow_name} (case 'context_switched').
// The socket stays open; what it sends and where its input goes follow the
// switch.

// errGeneralInPath refuses sockets whose path names a general chat: those are
// reached through chat.enter_general_mode on a workflow chat's socket.
var errGeneralInPath = errors.New("general chats are not opened by path")

// switchReq moves the writer to another chat. The reader subscribes before
// it reads the chat's last seq, so nothing stored after lastSeq is missed.
type switchReq struct {
	chatID  string
	general bool
	sub     *chat.Subscriber
	lastSeq int64
	frame   chat.Frame
}

// enterGeneral switches the socket to the user's general chat (the one the
// client names if it is theirs, else their latest, else a new one).
func (c *conn) enterGeneral(ctx context.Context, preferred string, fresh bool) {
	sess, err := c.h.chats.OpenGeneral(ctx, chat.GeneralRequest{AppID: c.p.AppID, UserID: c.p.UserID,
		Workflow: c.h.opts.GeneralWorkflow, ChatID: preferred, New: fresh})
	if err != nil {
		c.reply(storeErrorFrame(err))
		return
	}
	kind := "mode_changed"
	if fresh {
		kind = "general_session_created"
	}
	data := map[string]any{"mode": "general", "general_chat_id": sess.ChatID, "general_chat_label": GeneralLabel(sess),
		"general_chat_sequence": sess.LastSeq, "chat_id": sess.ChatID, "workflow_chat_id": c.p.ChatID,
		"workflow_name": sess.Workflow, "last_updated_at": sess.UpdatedAt.UTC().Format(time.RFC3339Nano)}
	if c.moveTo(ctx, sess.ChatID, true, chat.Simple(kind, data)) {
		c.active = activeChat{chatID: sess.ChatID, general: true}
	}
}

// switchWorkflow switches the socket back to a workflow chat of the user:
// the socket's own by default, or another one they own in this app.
func (c *conn) switchWorkflow(ctx context.Context, chatID string) {
	if chatID == "" {
		chatID = c.p.ChatID
	}
	sess, err := c.h.chats.Get(ctx, c.p.AppID, chatID, chat.SameUser(c.p.UserID))
	if err == nil && chat.IsGeneral(chatID) {
		err = chat.ErrNotYours // general chats are entered with chat.enter_general_mode
	}
	if err != nil {
		if errors.Is(err, chat.ErrNotYours) {
			c.reply(chat.ErrorFrame("SESSION_NOT_FOUND", "no workflow chat "+chatID+" for this user", false))
			return
		}
		c.reply(storeErrorFrame(err))
		return
	}
	data := map[string]any{"mode": "workflow", "from_chat_id": c.active.chatID, "to_chat_id": sess.ChatID,
		"chat_id": sess.ChatID, "workflow_name": sess.Workflow, "app_id": sess.AppID}
	if c.moveTo(ctx, sess.ChatID, false, chat.Simple("context_switched", data)) {
		c.active = activeChat{chatID: sess.ChatID}
	}
}

// moveTo subscribes to chatID and hands the subscription to the writer,
// which sends frame and then the chat's live events.
func (c *conn) moveTo(ctx context.Context, chatID string, general bool, frame chat.Frame) bool {
	sub := c.h.chats.SubscribeNotify(c.p.AppID, chatID, c.h.opts.SendBuffer, c.notify)
	sess, err := c.h.chats.Get(ctx, c.p.AppID, chatID, chat.SameUser(c.p.UserID))
	if err != nil {
		c.h.chats.Unsubscribe(sub)
		c.reply(storeErrorFrame(err))
		return false
	}
	if !c.enqueue(task{sw: &switchReq{chatID: chatID, general: general, sub: sub, lastSeq: sess.LastSeq, frame: frame}}) {
		c.h.chats.Unsubscribe(sub)
		return false
	}
	return true
}

// GeneralLabel is how a general chat is listed: ChatUI shows it in its Ask
// history (ChatUI/src/pages/ChatPage.js AskHistorySidebar: session.label).
func GeneralLabel(s store.Session) string {
	return "Ask · " + s.CreatedAt.UTC().Format("Jan 2 15:04")
}

// refusal says, for the log only, why a socket was refused.
func (c *conn) refusal(ctx context.Context, err error) string {
	if errors.Is(err, errGeneralInPath) {
		return "the path names a general chat; general chats are entered with chat.enter_general_mode"
	}
	return c.h.chats.Refusal(ctx, chat.OpenRequest{Workflow: c.p.Workflow, AppID: c.p.AppID, ChatID: c.p.ChatID, UserID: c.p.UserID})
}

// CacheSeed is the per-chat seed ChatUI keeps for its caches
// (ChatUI/src/pages/ChatPage.js chat_meta: data.cache_seed).
func CacheSeed(chatID string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(chatID))
	return h.Sum32()
}

// metaFrame is the first frame after connect. ChatUI reads its fields at the
// frame's top level (ChatUI/src/pages/ChatPage.js handleIncoming, chat_meta:
// data.cache_seed, data.chat_exists, data.last_artifact.ui_tool_id where
// data is the whole frame), other clients under "data": both are sent.
// exists is false when this connect created the chat.
func metaFrame(s store.Session, exists bool) chat.Frame {
	artifact := ChatUIArtifact(s)
	data := map[string]any{"kind": "chat_meta", "chat_id": s.ChatID, "workflow_name": s.Workflow, "app_id": s.AppID,
		"user_id": s.UserID, "status": s.Status, "last_seq": s.LastSeq, "last_sequence": s.LastSeq,
		"created_at": s.CreatedAt.Format(time.RFC3339Nano), "chat_exists": exists, "last_artifact": artifact,
		"cache_seed": CacheSeed(s.ChatID)}
	if artifact == nil {
		data["last_artifact"] = nil
	}
	// At the top level only what ChatUI reads there.
	top := map[string]any{"chat_id": s.ChatID, "chat_exists": exists, "cache_seed": data["cache_seed"],
		"last_artifact": data["last_artifact"]}
	top["type"] = "chat_meta"
	top["timestamp"] = time.Now().UTC().Format("2006-01-02T15:04:05.000Z07:00")
	top["data"] = data
	b, err := json.Marshal(top)
	if err != nil {
		return chat.Encode("chat_meta", 0, time.Now(), data, false)
	}
	return chat.Frame{Type: "chat_meta", Bytes: b}
}

// askFrame is a general chat's frame as sent in Ask mode. It carries no
// top-level seq: ChatUI keeps one position per socket
// (ChatUI/src/adapters/api.js onmessage: lastSequence, saved under
// ws_idx_<workflow chat id>) and treats a lower seq as a gap, dropping the
// frame and sending client.resume; a general chat's seqs are its own, lower
// than the workflow chat's (the client reads the general transcript over
// REST instead). Texts get the metadata ChatUI reads for Ask mode
// (ChatUI/src/pages/ChatPage.js case 'text': metadata.source ===
// 'general_agent', metadata.general_chat_id).
func askFrame(f chat.Frame, generalID string) chat.Frame {
	var m map[string]json.RawMessage
	if json.Unmarshal(f.Bytes, &m) != nil {
		return f
	}
	delete(m, "seq")
	if f.Type == "chat.text" {
		if meta, err := json.Marshal(map[string]string{"source": "general_agent", "general_chat_id": generalID}); err == nil {
			m["metadata"] = meta
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return f
	}
	return chat.Frame{Type: f.Type, Bytes: b}
}

// ChatUIArtifact is the chat's last artifact-mode UI tool as ChatUI restores
// it (ChatUI/src/pages/ChatPage.js chat_meta: last_artifact.ui_tool_id,
// event_id, workflow_name, payload, display), with the stored names kept
// beside them; nil when there is none.
func ChatUIArtifact(s store.Session) map[string]any {
	var artifact map[string]any
	if len(s.LastArtifact) == 0 || json.Unmarshal(s.LastArtifact, &artifact) != nil || artifact == nil {
		return nil
	}
	if _, ok := artifact["ui_tool_id"]; !ok {
		artifact["ui_tool_id"] = artifact["tool_name"]
	}
	if _, ok := artifact["event_id"]; !ok {
		artifact["event_id"] = artifact["eventId"]
	}
	artifact["workflow_name"] = s.Workflow
	artifact["display"] = "artifact"
	return artifact
}
