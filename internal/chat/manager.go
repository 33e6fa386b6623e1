// Package chat is the chat runtime between the transport and the engine: it
// stores every event before anyone sees it (the store assigns seq), fans
// frames out to the sockets watching a chat, queues user input, and runs the
// engine for a chat at most once at a time (a lease in the store, so it holds
// across replicas). It knows nothing of HTTP or WebSockets.
package chat

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mozaiks/mozaiks/internal/engine"
	"github.com/mozaiks/mozaiks/internal/store"
	"github.com/mozaiks/mozaiks/internal/workflow"
)

// Errors callers map to client answers.
var (
	// ErrNotYours: the chat exists but belongs to another user, app or
	// workflow. Callers answer exactly as for a missing chat.
	ErrNotYours = errors.New("chat not found")
	// ErrNoPending: nothing waits for that request / UI tool event.
	ErrNoPending = errors.New("no pending request with that id")
	// ErrClosing: the manager is shutting down.
	ErrClosing = errors.New("server is shutting down")
)

// Observer receives run and LLM measurements (metrics).
type Observer interface {
	RunStarted()
	RunFinished(status string)
	LLMCall(model string, d time.Duration, promptTokens, completionTokens int64)
}

type nopObserver struct{}

func (nopObserver) RunStarted()                                 {}
func (nopObserver) RunFinished(string)                          {}
func (nopObserver) LLMCall(string, time.Duration, int64, int64) {}

// Options configure a Manager.
type Options struct {
	Store     store.Store
	Runner    engine.Runner
	Workflows *workflow.Set
	// Owner identifies this process in run leases. The embedded store is
	// single-process (its directory is locked), so it can use a fixed owner
	// and take its own leases back at once after a crash.
	Owner    string
	LeaseTTL time.Duration // default 15s, renewed every TTL/3
	// SingleProcess says no other process can run this store's chats (the
	// embedded store's directory is locked): runs then take no lease, which
	// saves the store writes of taking, renewing and releasing one per turn.
	SingleProcess bool
	Logger        *slog.Logger
}

// Manager runs chats.
type Manager struct {
	opts    Options
	log     *slog.Logger
	obs     atomic.Value // Observer
	base    context.Context
	stopAll context.CancelFunc
	closing atomic.Bool
	runs    sync.WaitGroup
	active  atomic.Int64

	mu    sync.Mutex
	rooms map[string]*room
}

// room is the in-memory side of one chat: its watchers and its run queue.
type room struct {
	appID, chatID string

	// pubMu serialises an append with its fan-out, so frames reach sockets
	// in seq order.
	pubMu sync.Mutex

	mu       sync.Mutex
	answered map[string]bool // pending ids answered while the run that asked was still finishing
	subs     map[*Subscriber]struct{}
	queue    []job
	running  bool
	cancel   context.CancelFunc
	// stopRenew stops the lease renewal of the current run, if it holds one.
	stopRenew func()
}

type job struct {
	input *engine.Input // nil: start the workflow (AgentDriven) if it has not started
	seq   int64         // the stored user message this job answers, 0 if none
}

// NewManager builds a Manager.
func NewManager(o Options) *Manager {
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 15 * time.Second
	}
	if o.Owner == "" {
		o.Owner = "mozaiks-" + randomID(6)
	}
	m := &Manager{opts: o, log: o.Logger, rooms: map[string]*room{}}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	m.obs.Store(obsBox{nopObserver{}})
	m.base, m.stopAll = context.WithCancel(context.Background())
	return m
}

// SetObserver installs the metrics observer.
func (m *Manager) SetObserver(o Observer) { m.obs.Store(obsBox{o}) }

func (m *Manager) observer() Observer { return m.obs.Load().(obsBox).Observer }

// obsBox gives atomic.Value one concrete type whatever the Observer.
type obsBox struct{ Observer }

// ActiveRuns is the number of runs in progress in this process.
func (m *Manager) ActiveRuns() int { return int(m.active.Load()) }

func (m *Manager) room(appID, chatID string) *room {
	key := appID + "\x00" + chatID
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.rooms[key]
	if !ok {
		r = &room{appID: appID, chatID: chatID, subs: map[*Subscriber]struct{}{}}
		m.rooms[key] = r
	}
	return r
}

// forget drops an idle room so memory follows live chats only.
func (m *Manager) forget(r *room) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r.mu.Lock()
	idle := len(r.subs) == 0 && !r.running && len(r.queue) == 0
	r.mu.Unlock()
	if idle {
		delete(m.rooms, r.appID+"\x00"+r.chatID)
	}
}

// OpenRequest names a chat as a socket URL does.
type OpenRequest struct {
	Workflow, AppID, ChatID, UserID string
}

// Open returns the chat, creating it when it does not exist (ChatUI connects
// to fresh chat ids). A chat of another user, app or workflow is ErrNotYours.
func (m *Manager) Open(ctx context.Context, req OpenRequest) (store.Session, bool, error) {
	sess, created, err := m.opts.Store.CreateSession(ctx, store.Session{ChatID: req.ChatID, AppID: req.AppID,
		UserID: req.UserID, Workflow: req.Workflow, Status: store.StatusInProgress})
	if errors.Is(err, store.ErrConflict) {
		return store.Session{}, false, ErrNotYours
	}
	if err != nil {
		return store.Session{}, false, err
	}
	if sess.UserID != req.UserID || sess.Workflow != req.Workflow {
		return store.Session{}, false, ErrNotYours
	}
	return sess, created, nil
}

// Get returns a chat the user owns.
func (m *Manager) Get(ctx context.Context, appID, chatID, userID string) (store.Session, error) {
	sess, err := m.opts.Store.GetSession(ctx, appID, chatID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Session{}, ErrNotYours
	}
	if err != nil {
		return store.Session{}, err
	}
	if userID != "" && sess.UserID != userID {
		return store.Session{}, ErrNotYours
	}
	return sess, nil
}

// StartIfNeeded queues the workflow's start for a chat whose engine state
// says it has not started (the engine decides what starting means:
// AgentDriven speaks first, UserDriven waits).
func (m *Manager) StartIfNeeded(sess store.Session) {
	if started(sess) {
		return
	}
	r := m.room(sess.AppID, sess.ChatID)
	r.mu.Lock()
	busy := r.running || len(r.queue) > 0
	r.mu.Unlock()
	if !busy {
		m.enqueue(r, job{})
	}
}

func started(sess store.Session) bool {
	if len(sess.State) == 0 {
		return false
	}
	var st engine.State
	return json.Unmarshal(sess.State, &st) == nil && st.Started
}

// Submission is a user message.
type Submission struct {
	AppID, ChatID, UserID string
	Text                  string
	InputRequestID        string
	Context               map[string]any
}

// Ack says a user message is stored.
type Ack struct {
	MessageID string
	Seq       int64
	RequestID string
}

// Submit stores the user's message (so it is never lost once acknowledged),
// shows it to every socket, and queues it for the workflow: it answers the
// pending input request or starts the next run. A message sent during a run
// waits its turn.
func (m *Manager) Submit(ctx context.Context, in Submission) (Ack, error) {
	if m.closing.Load() {
		return Ack{}, ErrClosing
	}
	r := m.room(in.AppID, in.ChatID)
	msgID := "m_" + randomID(8)
	data := map[string]any{"kind": "text", "agent": "user", "role": "user", "content": in.Text, "message_id": msgID}
	if in.InputRequestID != "" {
		data["request_id"] = in.InputRequestID
	}
	ev, err := m.publish(ctx, r, "chat.text", "user", data, true)
	if err != nil {
		return Ack{}, err
	}
	m.enqueue(r, job{seq: ev.Seq, input: &engine.Input{Kind: engine.InputMessage, Text: in.Text, RequestID: in.InputRequestID, Context: in.Context}})
	return Ack{MessageID: msgID, Seq: ev.Seq, RequestID: in.InputRequestID}, nil
}

// AnswerInput answers a pending input request by id (the REST route).
func (m *Manager) AnswerInput(ctx context.Context, appID, requestID, text string) (store.Session, Ack, error) {
	sess, err := m.opts.Store.FindPending(ctx, appID, requestID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && sess.PendingKind != "input") {
		return store.Session{}, Ack{}, ErrNoPending
	}
	if err != nil {
		return store.Session{}, Ack{}, err
	}
	ack, err := m.Submit(ctx, Submission{AppID: appID, ChatID: sess.ChatID, UserID: sess.UserID, Text: text, InputRequestID: requestID})
	return sess, ack, err
}

// RespondUITool answers the UI tool waiting under eventID. chatID may be ""
// (the REST route does not know it).
func (m *Manager) RespondUITool(ctx context.Context, appID, chatID, eventID string, response map[string]any) error {
	sess, err := m.opts.Store.FindPending(ctx, appID, eventID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (sess.PendingKind != "ui_tool" || (chatID != "" && sess.ChatID != chatID))) {
		return ErrNoPending
	}
	if err != nil {
		return err
	}
	r := m.room(appID, sess.ChatID)
	// Clear the pending id first so a second answer to the same event is refused.
	empty := ""
	if err := m.opts.Store.UpdateSession(ctx, appID, sess.ChatID, store.SessionUpdate{PendingKind: &empty, PendingID: &empty}); err != nil {
		return err
	}
	r.mu.Lock()
	if r.answered == nil {
		r.answered = map[string]bool{}
	}
	r.answered[eventID] = true
	r.mu.Unlock()
	m.enqueue(r, job{input: &engine.Input{Kind: engine.InputUIToolResponse, RequestID: eventID, Response: response}})
	return nil
}

// Cancel stops the chat's current run; the chat stays usable.
func (m *Manager) Cancel(appID, chatID string) bool {
	r := m.room(appID, chatID)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancel != nil {
		r.cancel()
		return true
	}
	return false
}

// Shutdown stops taking work, cancels runs (the engine stops at a safe
// point and its state is persisted) and waits for them until ctx ends.
func (m *Manager) Shutdown(ctx context.Context) {
	m.closing.Store(true)
	m.stopAll()
	done := make(chan struct{})
	go func() { m.runs.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		m.log.Warn("runs still going at the end of the drain", "active", m.ActiveRuns())
	}
}

// publish stores an event and fans its frame out, in seq order per chat.
func (m *Manager) publish(ctx context.Context, r *room, typ, agent string, data map[string]any, message bool) (store.Event, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return store.Event{}, fmt.Errorf("encode event: %w", err)
	}
	// Persist even when the caller's context was cancelled (a run being
	// stopped still records how it ended), but never wait forever.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	r.pubMu.Lock()
	defer r.pubMu.Unlock()
	ev, err := m.opts.Store.AppendEvent(sctx, r.appID, r.chatID, store.Event{Type: typ, Agent: agent, Data: raw}, message)
	if err != nil {
		return store.Event{}, err
	}
	m.fanout(r, Encode(typ, ev.Seq, ev.Timestamp, data, false))
	return ev, nil
}

// broadcast sends an unstored frame (a streamed chunk) to every socket.
func (m *Manager) broadcast(r *room, f Frame) {
	r.pubMu.Lock()
	defer r.pubMu.Unlock()
	m.fanout(r, f)
}

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
