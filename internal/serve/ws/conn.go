package ws

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/mozaiks/mozaiks/internal/chat"
	"github.com/mozaiks/mozaiks/internal/store"
)

// conn is one chat socket. Its reader goroutine (readLoop) parses frames
// and queues replies; writes are owned by one goroutine at a time: the
// connect setup, then a writer started on demand when something is queued
// (a direct frame, a live frame of the chat, a resume, a switch, a ping, a
// close) and gone as soon as nothing is left. An idle socket so holds one
// goroutine, blocked reading, and a timer for its pings.
type conn struct {
	h  *Handler
	ws *websocket.Conn
	p  Params

	ctx    context.Context // the socket's lifetime: store calls of reader and writer
	cancel context.CancelFunc

	mu      sync.Mutex
	cond    sync.Cond // on mu: the task queue shrank, or the socket closed
	tasks   []task    // direct frames, resumes and switches, in the order queued
	quit    *closeReq // close with this code at the writer's next turn
	live    bool      // the subscription has frames (or was dropped)
	ping    bool      // a heartbeat is due
	writing bool      // a goroutine owns the writes
	closed  bool      // the socket is closed; no writer will run again
	pingT   *time.Timer

	// Writer state, touched only by the goroutine owning the writes.
	out         *[]byte // frames queued for the next flush (frames.go)
	v           view
	connectLast int64 // last seq of the connect replay (see resume)
	resumed     bool

	// active is the chat this socket's input goes to: the chat of its path,
	// or the user's general chat after chat.enter_general_mode. Only the
	// reader goroutine touches it; the writer learns of changes by a switch task.
	active activeChat
}

// maxTasks bounds the direct frames queued by the reader: past it the
// reader waits for the writer (it stops reading the client meanwhile).
const maxTasks = 16

// task is one queued job of the writer: a frame, a resume or a switch.
type task struct {
	frame  chat.Frame
	resume *resumeReq
	sw     *switchReq
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
	// The goroutine that upgraded owns the writes until start hands them over.
	c := &conn{h: h, ws: ws, p: p, active: activeChat{chatID: p.ChatID}, writing: true}
	c.cond.L = &c.mu
	return c
}

// shutdown asks the writer to send a close frame and stop; the first code
// asked for wins.
func (c *conn) shutdown(code int, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.quit == nil {
		c.quit = &closeReq{code, text}
		c.kickLocked()
	}
}

// notify is the subscription's callback: live frames wait (or it was dropped).
func (c *conn) notify() {
	c.mu.Lock()
	c.live = true
	c.kickLocked()
	c.mu.Unlock()
}

// pingDue is the heartbeat timer's callback.
func (c *conn) pingDue() {
	c.mu.Lock()
	c.ping = true
	c.kickLocked()
	c.mu.Unlock()
}

// kickLocked starts a writer unless a goroutine owns the writes already (it
// sees the new work before it lets go). c.mu is held.
func (c *conn) kickLocked() {
	if c.writing || c.closed {
		return
	}
	c.writing = true
	go c.writer()
}

// enqueue queues a task for the writer, waiting while maxTasks are queued;
// false when the socket is closed.
func (c *conn) enqueue(t task) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for !c.closed && len(c.tasks) >= maxTasks {
		c.cond.Wait()
	}
	if c.closed {
		return false
	}
	c.tasks = append(c.tasks, t)
	c.kickLocked()
	return true
}

func (c *conn) closeNow(code int, text string) {
	c.flush()
	deadline := time.Now().Add(time.Second)
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), deadline)
	_ = c.ws.Close()
}

// start opens the chat and sends what a connect sends (chat_meta, the
// replay, its boundary) on the caller's goroutine, which owns the writes
// until it returns. False when the socket was refused and closed.
func (c *conn) start(reqCtx context.Context) bool {
	// The socket outlives nothing of the request but its values: the
	// hijacked connection is ours until the read loop ends.
	c.ctx, c.cancel = context.WithCancel(context.WithoutCancel(reqCtx))
	ctx := c.ctx
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
		return c.abort()
	case errors.Is(err, store.ErrUnavailable):
		c.writeDirect(chat.ErrorFrame("STORE_UNAVAILABLE", "the database is unavailable; reconnect shortly", true))
		c.closeNow(websocket.CloseTryAgainLater, "store unavailable")
		return c.abort()
	case err != nil:
		c.closeNow(websocket.CloseInternalServerErr, "internal error")
		return c.abort()
	}
	// This goroutine owns the writes until the hand-over below (release):
	// frames published meanwhile wait in the subscription.
	//
	// Subscribe before reading the store: live frames at or below the last
	// replayed seq are then skipped, so nothing is missed or sent twice.
	sub := chats.SubscribeNotify(c.p.AppID, c.p.ChatID, c.h.opts.SendBuffer, c.notify)
	c.v = view{chatID: c.p.ChatID, sub: sub}
	if !c.writeDirect(metaFrame(sess, !created)) {
		return c.abort()
	}
	last, _, err := c.replay(ctx, sess, c.p.AfterSeq, !c.p.HasAfterSeq, true)
	if err != nil {
		if !errors.Is(err, errClosed) {
			c.closeNow(websocket.CloseTryAgainLater, "replay failed")
		}
		return c.abort()
	}
	chats.StartIfNeeded(sess)
	c.v.lastSent, c.connectLast = last, last
	c.pingT = time.AfterFunc(c.h.opts.PingInterval, c.pingDue)
	if !c.flush() {
		return c.abort()
	}
	c.release()
	return true
}

// abort ends a socket that never started: false, for start to return.
func (c *conn) abort() bool {
	c.finish()
	c.cancel()
	return false
}

// serve runs the socket's read loop until it ends, then closes the socket
// and waits for the last writer.
func (c *conn) serve(reqCtx context.Context) {
	defer c.cancel()
	defer c.expireAt(reqCtx)()
	c.readLoop(c.ctx)
	c.shutdown(websocket.CloseNormalClosure, "")
	c.mu.Lock()
	for !c.closed {
		c.cond.Wait()
	}
	c.mu.Unlock()
}

// release lets go of the writes: the goroutine owning them calls it when it
// has nothing left to do, or starts over if work came in meanwhile.
func (c *conn) release() {
	c.mu.Lock()
	c.writing = false
	if c.quit != nil || c.live || c.ping || len(c.tasks) > 0 {
		c.kickLocked()
	}
	c.mu.Unlock()
}

// writer owns the writes until nothing is queued: a close, a dropped
// subscription, the queued tasks in order, the chat's live frames (skipping
// what replay already sent) and heartbeats.
func (c *conn) writer() {
	var batch []chat.Frame
	for {
		c.mu.Lock()
		quit, tasks, live, ping := c.quit, c.tasks, c.live, c.ping
		if quit == nil && !live && !ping && len(tasks) == 0 {
			c.writing = false
			c.mu.Unlock()
			return
		}
		c.tasks, c.live, c.ping = nil, false, false
		if len(tasks) > 0 {
			c.cond.Broadcast()
		}
		c.mu.Unlock()

		if quit != nil {
			c.closeNow(quit.code, quit.text)
			c.dropSwitches(tasks)
			c.finish()
			return
		}
		if !c.run(tasks, live, ping, &batch) {
			c.finish()
			return
		}
	}
}

// run does one turn of the writer's work; false when the socket is done.
func (c *conn) run(tasks []task, live, ping bool, batch *[]chat.Frame) bool {
	select {
	case <-c.v.sub.Dropped:
		c.closeNow(websocket.CloseTryAgainLater, "too slow: resume from your last seq")
		c.dropSwitches(tasks)
		return false
	default:
	}
	for i, t := range tasks {
		var ok bool
		switch {
		case t.resume != nil:
			ok = c.resume(*t.resume)
		case t.sw != nil:
			c.h.chats.Unsubscribe(c.v.sub)
			c.v = view{chatID: t.sw.chatID, general: t.sw.general, sub: t.sw.sub, lastSent: t.sw.lastSeq}
			c.resumed = true
			ok = c.writeDirect(t.sw.frame)
		default:
			ok = c.writeDirect(t.frame)
		}
		if !ok {
			c.dropSwitches(tasks[i+1:])
			return false
		}
	}
	if live || len(tasks) > 0 {
		// A switch may have brought a subscription with frames waiting.
		if !c.writeLive(batch) {
			return false
		}
	}
	if ping && !c.writeDirect(chat.Frame{Bytes: pingFrame}) {
		return false
	}
	if !c.flush() {
		return false
	}
	if ping {
		if c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.h.opts.WriteTimeout)) != nil {
			return false
		}
		c.pingT.Reset(c.h.opts.PingInterval)
	}
	return true
}

var pingFrame = []byte(`{"type":"ping"}`)

// writeLive sends the subscription's waiting frames, streamed chunks of one
// message merged when several wait (coalesce.go).
func (c *conn) writeLive(batch *[]chat.Frame) bool {
	*batch = coalesce(c.v.sub.Take(*batch))
	for _, f := range *batch {
		if f.Seq > 0 && f.Seq <= c.v.lastSent {
			continue
		}
		seq := f.Seq
		if c.v.general && f.Seq > 0 { // stored frames only: streamed chunks carry no seq
			f = askFrame(f, c.v.chatID)
		}
		if !c.writeDirect(f) {
			return false
		}
		c.v.lastSent = max(c.v.lastSent, seq)
	}
	clear(*batch) // the frames' bytes are not held while idle
	return true
}

// resume answers client.resume. ChatUI sends client.resume with its stored
// position as soon as the socket opens (ChatUI/src/adapters/api.js
// socket.onopen -> sendResume), after the connect replay has already sent the
// transcript and its boundary. Answering that first resume by replaying again
// would show the transcript twice and a second "Session replay complete"
// bubble (ChatUI/src/pages/ChatPage.js case 'resume_boundary'). So the first
// resume that asks for nothing past what the connect replay covered only
// sends what this socket has not sent yet, and no boundary when that is
// nothing. Later resumes replay exactly what they ask for.
func (c *conn) resume(rq resumeReq) bool {
	if rq.chatID != c.v.chatID {
		return true // asked for the chat this socket showed before a switch
	}
	after, boundary := rq.after, true
	if !c.resumed && after <= c.connectLast {
		after, boundary = max(after, c.v.lastSent), false
	}
	c.resumed = true
	sess, err := c.h.chats.Get(c.ctx, c.p.AppID, c.v.chatID, chat.SameUser(c.p.UserID))
	if err != nil {
		return c.writeDirect(chat.ErrorFrame("STORE_UNAVAILABLE", "could not read the chat to resume; retry", true))
	}
	last, _, err := c.replay(c.ctx, sess, after, false, boundary)
	if err != nil {
		return false
	}
	c.v.lastSent = max(c.v.lastSent, last)
	return true
}

// finish closes the socket for good: the writer (or the setup) calls it
// when it stops owning the writes because the socket is done.
func (c *conn) finish() {
	_ = c.ws.Close()
	if c.out != nil {
		*c.out = (*c.out)[:0]
		outBufs.Put(c.out)
		c.out = nil
	}
	if c.v.sub != nil {
		c.h.chats.Unsubscribe(c.v.sub)
	}
	c.mu.Lock()
	c.closed, c.writing = true, false
	tasks := c.tasks
	c.tasks = nil
	if c.pingT != nil {
		c.pingT.Stop()
	}
	c.cond.Broadcast()
	c.mu.Unlock()
	c.dropSwitches(tasks)
}

// dropSwitches unsubscribes the subscriptions of switches never carried out.
func (c *conn) dropSwitches(tasks []task) {
	for _, t := range tasks {
		if t.sw != nil {
			c.h.chats.Unsubscribe(t.sw.sub)
		}
	}
}

// replay sends stored frames after afterSeq (only the transcript on a first
// connect, plus what the chat is waiting for), then chat.resume_boundary
// unless boundary is false and nothing was replayed. Only the goroutine
// owning the writes calls it.
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

// view is the chat the writer currently sends: the socket's own, or the
// one chat.enter_general_mode / chat.switch_workflow moved it to.
type view struct {
	chatID   string
	general  bool // a general (Ask mode) chat: frames go out without seq (see withoutSeq)
	sub      *chat.Subscriber
	lastSent int64 // highest stored seq this socket has sent of this chat
}

// send queues a direct frame for the writer; false when the socket is gone.
func (c *conn) send(f chat.Frame) bool { return c.enqueue(task{frame: f}) }

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
		c.enqueue(task{resume: &resumeReq{chatID: target, after: after}})
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
