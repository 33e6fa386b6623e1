package ws

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/mozaiks/mozaiks/internal/chat"
	"github.com/mozaiks/mozaiks/internal/store"
)

// conn is one chat socket. The writer goroutine owns every write; the reader
// (the handler goroutine) parses frames and hands replies to the writer.
type conn struct {
	h  *Handler
	ws *websocket.Conn
	p  Params

	out     chan chat.Frame // direct frames for this socket (acks, errors)
	resume  chan resumeReq  // client.resume requests
	switchc chan switchReq  // Ask mode / workflow switches: the writer's chat changes
	quit    chan closeReq   // asks the writer to close with a code
	done    chan struct{}   // closed when the writer has exited

	// active is the chat this socket's input goes to: the chat of its path,
	// or the user's general chat after chat.enter_general_mode. Only the
	// reader goroutine touches it; the writer learns of changes through switchc.
	active activeChat
}

type activeChat struct {
	chatID  string
	general bool
}

type resumeReq struct {
	chatID string
	after  int64
}

type closeReq struct {
	code int
	text string
}

func newConn(h *Handler, ws *websocket.Conn, p Params) *conn {
	return &conn{h: h, ws: ws, p: p, out: make(chan chat.Frame, 16), resume: make(chan resumeReq, 4),
		switchc: make(chan switchReq, 1), quit: make(chan closeReq, 1), done: make(chan struct{}),
		active: activeChat{chatID: p.ChatID}}
}

// shutdown asks the writer to send a close frame and stop.
func (c *conn) shutdown(code int, text string) {
	select {
	case c.quit <- closeReq{code, text}:
	default:
	}
}

func (c *conn) closeNow(code int, text string) {
	deadline := time.Now().Add(time.Second)
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), deadline)
	_ = c.ws.Close()
}

func (c *conn) run(reqCtx context.Context) {
	// The socket outlives nothing of the request but its values: the
	// hijacked connection is ours until the read loop ends.
	ctx, cancel := context.WithCancel(context.WithoutCancel(reqCtx))
	defer cancel()
	chats := c.h.chats
	var sess store.Session
	var created bool
	err := errGeneralInPath
	if !chat.IsGeneral(c.p.ChatID) {
		sess, created, err = chats.Open(ctx, chat.OpenRequest{Workflow: c.p.Workflow, AppID: c.p.AppID, ChatID: c.p.ChatID, UserID: c.p.UserID})
	}
	switch {
	case errors.Is(err, chat.ErrNotYours) || errors.Is(err, errGeneralInPath):
		// The client learns only "chat not found"; the log says why.
		c.h.opts.Logger.Info("chat socket refused", "app_id", c.p.AppID, "chat_id", c.p.ChatID, "user_id", c.p.UserID,
			"path_workflow", c.p.Workflow, "reason", c.refusal(ctx, err))
		c.closeNow(websocket.ClosePolicyViolation, "chat not found")
		return
	case errors.Is(err, store.ErrUnavailable):
		c.writeDirect(chat.ErrorFrame("STORE_UNAVAILABLE", "the database is unavailable; reconnect shortly", true))
		c.closeNow(websocket.CloseTryAgainLater, "store unavailable")
		return
	case err != nil:
		c.closeNow(websocket.CloseInternalServerErr, "internal error")
		return
	}
	// Subscribe before reading the store: live frames at or below the last
	// replayed seq are then skipped, so nothing is missed or sent twice.
	sub := chats.Subscribe(c.p.AppID, c.p.ChatID, c.h.opts.SendBuffer)
	defer chats.Unsubscribe(sub)

	if !c.writeDirect(metaFrame(sess, !created)) {
		return
	}
	last, _, err := c.replay(ctx, sess, c.p.AfterSeq, !c.p.HasAfterSeq, true)
	if err != nil {
		c.closeNow(websocket.CloseTryAgainLater, "replay failed")
		return
	}
	chats.StartIfNeeded(sess)

	go c.writeLoop(ctx, view{chatID: c.p.ChatID, sub: sub, lastSent: last})
	defer c.expireAt(reqCtx)()
	c.readLoop(ctx)
	c.shutdown(websocket.CloseNormalClosure, "")
	<-c.done
}

// replay sends stored frames after afterSeq (only the transcript on a first
// connect, plus what the chat is waiting for), then chat.resume_boundary
// unless boundary is false and nothing was replayed. It runs before the
// writer starts or inside it, so writes never interleave.
func (c *conn) replay(ctx context.Context, sess store.Session, afterSeq int64, textsOnly, boundary bool) (int64, int, error) {
	pending := ""
	if textsOnly {
		pending = sess.PendingID
	}
	last, n, err := c.h.chats.Replay(ctx, sess.AppID, sess.ChatID, afterSeq, textsOnly, pending, func(f chat.Frame) error {
		if !c.writeDirect(f) {
			return errClosed
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	if !boundary && n == 0 {
		return last, 0, nil
	}
	b := chat.Encode("chat.resume_boundary", 0, time.Now(), map[string]any{"kind": "resume_boundary", "chat_id": sess.ChatID,
		"last_seq": last, "replayed": n, "replayed_events": n}, false)
	if !c.writeDirect(b) {
		return 0, 0, errClosed
	}
	return last, n, nil
}

// writeDirect writes one frame now; only the goroutine owning writes calls it.
func (c *conn) writeDirect(f chat.Frame) bool {
	_ = c.ws.SetWriteDeadline(time.Now().Add(c.h.opts.WriteTimeout))
	return c.ws.WriteMessage(websocket.TextMessage, f.Bytes) == nil
}

// view is the chat the writer currently sends: the socket's own, or the
// one chat.enter_general_mode / chat.switch_workflow moved it to.
type view struct {
	chatID   string
	general  bool // a general (Ask mode) chat: frames go out without seq (see withoutSeq)
	sub      *chat.Subscriber
	lastSent int64 // highest stored seq this socket has sent of this chat
}

// writeLoop owns the socket's writes: live frames (skipping what replay
// already sent), direct replies, resume requests, chat switches, heartbeats
// and closes.
func (c *conn) writeLoop(ctx context.Context, v view) {
	defer close(c.done)
	defer c.ws.Close()
	defer func() { c.h.chats.Unsubscribe(v.sub) }()
	ping := time.NewTicker(c.h.opts.PingInterval)
	defer ping.Stop()
	pingFrame := []byte(`{"type":"ping"}`)
	// ChatUI sends client.resume with its stored position as soon as the
	// socket opens (ChatUI/src/adapters/api.js socket.onopen -> sendResume),
	// after the connect replay has already sent the transcript and its
	// boundary. Answering that first resume by replaying again would show the
	// transcript twice and a second "Session replay complete" bubble
	// (ChatUI/src/pages/ChatPage.js case 'resume_boundary'). So the first
	// resume that asks for nothing past what the connect replay covered only
	// sends what this socket has not sent yet, and no boundary when that is
	// nothing. Later resumes replay exactly what they ask for.
	connectLast, resumed := v.lastSent, false
	var batch []chat.Frame
	for {
		select {
		case <-v.sub.Ready:
			batch = v.sub.Take(batch)
			for _, f := range batch {
				if f.Seq > 0 && f.Seq <= v.lastSent {
					continue
				}
				seq := f.Seq
				if v.general && f.Seq > 0 { // stored frames only: streamed chunks carry no seq
					f = askFrame(f, v.chatID)
				}
				if !c.writeDirect(f) {
					return
				}
				v.lastSent = max(v.lastSent, seq)
			}
		case f := <-c.out:
			if !c.writeDirect(f) {
				return
			}
		case rq := <-c.resume:
			if rq.chatID != v.chatID {
				continue // asked for the chat this socket showed before a switch
			}
			after, boundary := rq.after, true
			if !resumed && after <= connectLast {
				after, boundary = max(after, v.lastSent), false
			}
			resumed = true
			sess, err := c.h.chats.Get(ctx, c.p.AppID, v.chatID, chat.SameUser(c.p.UserID))
			if err != nil {
				c.writeDirect(chat.ErrorFrame("STORE_UNAVAILABLE", "could not read the chat to resume; retry", true))
				continue
			}
			last, _, err := c.replay(ctx, sess, after, false, boundary)
			if err != nil {
				return
			}
			v.lastSent = max(v.lastSent, last)
		case sw := <-c.switchc:
			c.h.chats.Unsubscribe(v.sub)
			v = view{chatID: sw.chatID, general: sw.general, sub: sw.sub, lastSent: sw.lastSeq}
			resumed = true
			if !c.writeDirect(sw.frame) {
				return
			}
		case <-ping.C:
			_ = c.ws.SetWriteDeadline(time.Now().Add(c.h.opts.WriteTimeout))
			if c.ws.WriteMessage(websocket.TextMessage, pingFrame) != nil {
				return
			}
			if c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.h.opts.WriteTimeout)) != nil {
				return
			}
		case <-v.sub.Dropped:
			c.closeNow(websocket.CloseTryAgainLater, "too slow: resume from your last seq")
			return
		case q := <-c.quit:
			c.closeNow(q.code, q.text)
			return
		}
	}
}

// send queues a direct frame for the writer; false when the socket is gone.
func (c *conn) send(f chat.Frame) bool {
	select {
	case c.out <- f:
		return true
	case <-c.done:
		return false
	}
}

// inbound is every field any client frame may carry.
type inbound struct {
	Type            string          `json:"type"`
	ChatID          string          `json:"chat_id"`
	Text            *string         `json:"text"`
	InputRequestID  string          `json:"input_request_id"`
	Context         map[string]any  `json:"context"`
	EventID         string          `json:"eventId"`
	UIToolID        string          `json:"ui_tool_id"`
	Response        json.RawMessage `json:"response"`
	LastClientIndex *json.Number    `json:"lastClientIndex"`
	GeneralChatID   string          `json:"general_chat_id"`
}

// MaxTextBytes bounds one user message.
const MaxTextBytes = 256 << 10

func (c *conn) readLoop(ctx context.Context) {
	pong := c.h.opts.PongTimeout
	_ = c.ws.SetReadDeadline(time.Now().Add(pong))
	c.ws.SetPongHandler(func(string) error { return c.ws.SetReadDeadline(time.Now().Add(pong)) })
	for {
		typ, msg, err := c.ws.ReadMessage()
		if err != nil {
			return // closed, timed out, or over the read limit (gorilla sent 1009)
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(pong))
		if typ != websocket.TextMessage {
			c.reply(chat.ErrorFrame("SCHEMA_VALIDATION_FAILED", "send JSON text frames", false))
			continue
		}
		if !utf8.Valid(msg) {
			c.reply(chat.ErrorFrame("INVALID_UTF8", "frame is not valid UTF-8", false))
			continue
		}
		c.handle(ctx, msg)
	}
}

func (c *conn) reply(f chat.Frame) { c.send(f) }

func (c *conn) handle(ctx context.Context, msg []byte) {
	var in inbound
	dec := json.NewDecoder(bytes.NewReader(msg))
	dec.UseNumber()
	if err := dec.Decode(&in); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			c.reply(chat.ErrorFrame("INVALID_JSON", "frame is not a JSON object", false))
		} else if c.known(msg) {
			c.reply(chat.ErrorFrame("SCHEMA_VALIDATION_FAILED", "frame fields have the wrong types: "+err.Error(), false))
		}
		return
	}
	switch in.Type {
	case "chat.enter_general_mode", "chat.start_general_chat":
		c.enterGeneral(ctx, in.GeneralChatID, in.Type == "chat.start_general_chat")
		return
	case "chat.switch_workflow":
		c.switchWorkflow(ctx, in.ChatID)
		return
	case "ping", "pong":
		// Client heartbeats only refresh the read deadline.
		return
	case "":
		c.reply(chat.ErrorFrame("SCHEMA_VALIDATION_FAILED", "frame has no type", false))
		return
	}
	if !knownTypes[in.Type] {
		// Ignored, as the original runtime did, so newer clients keep working.
		c.h.opts.OnUnknownFrame()
		c.h.opts.Logger.Debug("ignored inbound frame of unknown type", "type", in.Type, "chat_id", c.p.ChatID)
		return
	}
	// In Ask mode ChatUI names the general chat (or still the socket's own
	// chat) in chat_id: both mean the chat this socket's input goes to.
	if in.ChatID != "" && in.ChatID != c.active.chatID && in.ChatID != c.p.ChatID {
		c.reply(chat.ErrorFrame("SCHEMA_VALIDATION_FAILED", "chat_id does not match this socket's chat", false))
		return
	}
	target := c.active.chatID
	switch in.Type {
	case "user.input.submit":
		if in.Text == nil {
			c.reply(chat.ErrorFrame("SCHEMA_VALIDATION_FAILED", "user.input.submit needs text", false))
			return
		}
		if refusal, ok := c.admit(*in.Text); !ok {
			c.reply(refusal)
			return
		}
		ack, err := c.h.chats.Submit(ctx, chat.Submission{AppID: c.p.AppID, ChatID: target, UserID: c.p.UserID,
			Text: *in.Text, InputRequestID: in.InputRequestID, Context: in.Context})
		if err != nil {
			c.reply(storeErrorFrame(err))
			return
		}
		data := map[string]any{"message_id": ack.MessageID, "seq_of_message": ack.Seq}
		if ack.RequestID != "" {
			data["request_id"] = ack.RequestID
		}
		c.reply(chat.Simple("input_ack", data))
	case "ui_tool_response":
		id := in.EventID
		if id == "" {
			id = in.UIToolID
		}
		var resp map[string]any
		if id == "" || len(in.Response) == 0 || json.Unmarshal(in.Response, &resp) != nil || resp == nil {
			c.reply(chat.ErrorFrame("SCHEMA_VALIDATION_FAILED", "ui_tool_response needs eventId and a response object", false))
			return
		}
		if err := c.h.chats.RespondUITool(ctx, c.p.AppID, target, id, resp, chat.SameUser(c.p.UserID)); err != nil {
			if errors.Is(err, chat.ErrNoPending) {
				c.reply(chat.ErrorFrame("UI_TOOL_NOT_FOUND", "no UI tool waits for event "+id, false))
				return
			}
			c.reply(storeErrorFrame(err))
		}
	case "client.resume":
		if c.active.general {
			// ChatUI's positions are in the workflow chat's seq space; Ask
			// mode frames carry none, and its transcript comes over REST.
			return
		}
		var after int64
		if in.LastClientIndex != nil {
			n, err := in.LastClientIndex.Int64()
			if err != nil || n < 0 {
				c.reply(chat.ErrorFrame("SCHEMA_VALIDATION_FAILED", "lastClientIndex must be a non-negative integer", false))
				return
			}
			after = n
		}
		select {
		case c.resume <- resumeReq{chatID: target, after: after}:
		case <-c.done:
		}
	case "chat.cancel":
		c.h.chats.Cancel(c.p.AppID, target)
	}
}

// known reports whether a frame whose fields did not decode is of a type the
// server handles (it is then answered with chat.error) rather than one it
// ignores.
func (c *conn) known(msg []byte) bool {
	var t struct {
		Type any `json:"type"`
	}
	_ = json.Unmarshal(msg, &t)
	typ, ok := t.Type.(string)
	if ok && !knownTypes[typ] && !modeTypes[typ] {
		c.h.opts.OnUnknownFrame()
		c.h.opts.Logger.Debug("ignored inbound frame of unknown type", "type", typ, "chat_id", c.p.ChatID)
		return false
	}
	return true
}

// knownTypes are the inbound frame types validated and acted on by handle
// (besides the mode switches and heartbeats it handles first).
var knownTypes = map[string]bool{"user.input.submit": true, "ui_tool_response": true, "client.resume": true, "chat.cancel": true}

// modeTypes are handled before the chat_id check (they name other chats).
var modeTypes = map[string]bool{"chat.enter_general_mode": true, "chat.start_general_chat": true, "chat.switch_workflow": true,
	"ping": true, "pong": true}

func storeErrorFrame(err error) chat.Frame {
	switch {
	case errors.Is(err, store.ErrUnavailable):
		return chat.ErrorFrame("STORE_UNAVAILABLE", "the database is unavailable; your message was not stored, send it again", true)
	case errors.Is(err, chat.ErrClosing):
		return chat.ErrorFrame("SERVER_SHUTTING_DOWN", "the server is restarting; reconnect and send again", true)
	case errors.Is(err, chat.ErrBusy):
		return chat.ErrorFrame("RATE_LIMITED", "too many messages are waiting for this chat; this one was not stored, send it again when the answers come", true)
	default:
		return chat.ErrorFrame("INTERNAL", "internal error", true)
	}
}
