package ws

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strconv"
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

	out    chan chat.Frame // direct frames for this socket (acks, errors)
	resume chan int64      // client.resume requests
	quit   chan closeReq   // asks the writer to close with a code
	done   chan struct{}   // closed when the writer has exited
}

type closeReq struct {
	code int
	text string
}

func newConn(h *Handler, ws *websocket.Conn, p Params) *conn {
	return &conn{h: h, ws: ws, p: p, out: make(chan chat.Frame, 16), resume: make(chan int64, 4),
		quit: make(chan closeReq, 1), done: make(chan struct{})}
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
	sess, _, err := chats.Open(ctx, chat.OpenRequest{Workflow: c.p.Workflow, AppID: c.p.AppID, ChatID: c.p.ChatID, UserID: c.p.UserID})
	switch {
	case errors.Is(err, chat.ErrNotYours):
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

	if !c.writeDirect(metaFrame(sess)) {
		return
	}
	last, err := c.replay(ctx, sess, c.p.AfterSeq, !c.p.HasAfterSeq)
	if err != nil {
		c.closeNow(websocket.CloseTryAgainLater, "replay failed")
		return
	}
	chats.StartIfNeeded(sess)

	go c.writeLoop(ctx, sub, last)
	defer c.expireAt(reqCtx)()
	c.readLoop(ctx)
	c.shutdown(websocket.CloseNormalClosure, "")
	<-c.done
}

func metaFrame(s store.Session) chat.Frame {
	status := s.Status
	var artifact any
	if len(s.LastArtifact) > 0 {
		_ = json.Unmarshal(s.LastArtifact, &artifact)
	}
	return chat.Encode("chat_meta", 0, time.Now(), map[string]any{"kind": "chat_meta", "chat_id": s.ChatID,
		"workflow_name": s.Workflow, "app_id": s.AppID, "user_id": s.UserID, "status": status, "last_seq": s.LastSeq,
		"created_at": s.CreatedAt.Format(time.RFC3339Nano), "chat_exists": s.LastSeq > 0, "last_artifact": artifact}, false)
}

// replay sends stored frames after afterSeq (only the transcript on a first
// connect, plus what the chat is waiting for), then chat.resume_boundary. It
// runs before the writer starts or inside it, so writes never interleave.
func (c *conn) replay(ctx context.Context, sess store.Session, afterSeq int64, textsOnly bool) (int64, error) {
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
		return 0, err
	}
	b := chat.Encode("chat.resume_boundary", 0, time.Now(), map[string]any{"kind": "resume_boundary", "chat_id": sess.ChatID,
		"last_seq": last, "replayed": n}, false)
	if !c.writeDirect(b) {
		return 0, errClosed
	}
	return last, nil
}

// writeDirect writes one frame now; only the goroutine owning writes calls it.
func (c *conn) writeDirect(f chat.Frame) bool {
	_ = c.ws.SetWriteDeadline(time.Now().Add(c.h.opts.WriteTimeout))
	return c.ws.WriteMessage(websocket.TextMessage, f.Bytes) == nil
}

// writeLoop owns the socket's writes: live frames (skipping what replay
// already sent), direct replies, resume requests, heartbeats and closes.
func (c *conn) writeLoop(ctx context.Context, sub *chat.Subscriber, lastSent int64) {
	defer close(c.done)
	defer c.ws.Close()
	ping := time.NewTicker(c.h.opts.PingInterval)
	defer ping.Stop()
	pingFrame := []byte(`{"type":"ping"}`)
	var batch []chat.Frame
	for {
		select {
		case <-sub.Ready:
			batch = sub.Take(batch)
			for _, f := range batch {
				if f.Seq > 0 && f.Seq <= lastSent {
					continue
				}
				if !c.writeDirect(f) {
					return
				}
				lastSent = max(lastSent, f.Seq)
			}
		case f := <-c.out:
			if !c.writeDirect(f) {
				return
			}
		case after := <-c.resume:
			sess, err := c.h.chats.Get(ctx, c.p.AppID, c.p.ChatID, chat.SameUser(c.p.UserID))
			if err != nil {
				c.writeDirect(chat.ErrorFrame("STORE_UNAVAILABLE", "could not read the chat to resume; retry", true))
				continue
			}
			last, err := c.replay(ctx, sess, after, false)
			if err != nil {
				return
			}
			lastSent = max(lastSent, last)
		case <-ping.C:
			_ = c.ws.SetWriteDeadline(time.Now().Add(c.h.opts.WriteTimeout))
			if c.ws.WriteMessage(websocket.TextMessage, pingFrame) != nil {
				return
			}
			if c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.h.opts.WriteTimeout)) != nil {
				return
			}
		case <-sub.Dropped:
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
		} else {
			c.reply(chat.ErrorFrame("SCHEMA_VALIDATION_FAILED", "frame fields have the wrong types: "+err.Error(), false))
		}
		return
	}
	if in.ChatID != "" && in.ChatID != c.p.ChatID {
		c.reply(chat.ErrorFrame("SCHEMA_VALIDATION_FAILED", "chat_id does not match this socket's chat", false))
		return
	}
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
		ack, err := c.h.chats.Submit(ctx, chat.Submission{AppID: c.p.AppID, ChatID: c.p.ChatID, UserID: c.p.UserID,
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
		if err := c.h.chats.RespondUITool(ctx, c.p.AppID, c.p.ChatID, id, resp, chat.SameUser(c.p.UserID)); err != nil {
			if errors.Is(err, chat.ErrNoPending) {
				c.reply(chat.ErrorFrame("UI_TOOL_NOT_FOUND", "no UI tool waits for event "+id, false))
				return
			}
			c.reply(storeErrorFrame(err))
		}
	case "client.resume":
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
		case c.resume <- after:
		case <-c.done:
		}
	case "chat.cancel":
		c.h.chats.Cancel(c.p.AppID, c.p.ChatID)
	case "ping", "pong":
		// Client heartbeats only refresh the read deadline.
	case "":
		c.reply(chat.ErrorFrame("SCHEMA_VALIDATION_FAILED", "frame has no type", false))
	default:
		c.reply(chat.ErrorFrame("SCHEMA_VALIDATION_FAILED", "unknown frame type "+strconv.Quote(in.Type), false))
	}
}

func storeErrorFrame(err error) chat.Frame {
	switch {
	case errors.Is(err, store.ErrUnavailable):
		return chat.ErrorFrame("STORE_UNAVAILABLE", "the database is unavailable; your message was not stored, send it again", true)
	case errors.Is(err, chat.ErrClosing):
		return chat.ErrorFrame("SERVER_SHUTTING_DOWN", "the server is restarting; reconnect and send again", true)
	default:
		return chat.ErrorFrame("INTERNAL", "internal error", true)
	}
}
