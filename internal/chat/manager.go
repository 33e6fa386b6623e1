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
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mozaiks/mozaiks/internal/engine"
	"github.com/mozaiks/mozaiks/internal/relay" // relay:
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
	// ErrBusy: too many messages already wait behind the chat's run; the
	// message was not stored.
	ErrBusy = errors.New("too many messages are waiting for this chat")
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
	// HistoryEvents bounds the events of an active chat kept in memory, and
	// so the history a run sees (default 2000).
	HistoryEvents int
	// HistoryMessages is the engine's bound on the model's history
	// (engine.Options.HistoryMessages): a run is handed the cached events
	// that history comes from, and the run it may continue, not all of them.
	// 0: engine.DefaultHistoryMessages; negative: every cached event.
	HistoryMessages int
	// MaxQueued bounds the messages waiting behind a chat's run; a message
	// beyond it is refused (ErrBusy) and not stored. 0: no limit.
	MaxQueued int
	// PrintEvery is the shortest time between two streamed chunks of a
	// message: chunks that come sooner are joined (stream.go). 0:
	// DefaultPrintEvery; negative: every chunk is sent as it comes.
	PrintEvery time.Duration
	Logger     *slog.Logger
	Relay      relay.Relay // relay: fans frames out to and from other replicas (nil: this process only)
}

// Manager runs chats.
type Manager struct {
	opts    Options
	log     *slog.Logger
	obs     atomic.Value // Observer
	base    context.Context
	stopAll context.CancelFunc
	closing atomic.Bool
	runs    group
	writers group
	active  atomic.Int64
	// retryBase is the first backoff of a chat's recovery after a failed
	// write (retryRecovery); tests shorten it.
	retryBase time.Duration
	openGrace time.Duration // how long Create keeps a new chat's room (openGrace)

	mu    sync.Mutex
	rooms map[string]*room
}

// room is the in-memory side of one chat: its watchers, its run queue, the
// queue of its writes (publish.go) and, while it is active, its transcript.
type room struct {
	appID, chatID string

	mu      sync.Mutex
	subs    map[*Subscriber]struct{}
	queue   []job
	runs    uint64 // runs begun, to tell a run's end from the next one's start
	backlog int    // recovered messages still to answer (recover.go)
	running bool
	cancel  context.CancelFunc
	// stopRenew stops the lease renewal of the current run, if it holds one.
	stopRenew func()

	out     []*op // writes waiting, in order
	writing bool  // a writer goroutine drains out
	// held: the run's opening bookkeeping (lazy ops) waits for its first
	// chunk, so it is not stored while the model is being asked (publish.go).
	held      bool
	heldTimer *time.Timer
	// fence: the owner of the run lease this process holds on the chat
	// ("" while it holds none, and always on the embedded store). The writes
	// of a run carry it (store.SessionUpdate.Fence): once another replica has
	// taken the lease, they fail and the run stops.
	fence string
	// fencedOff: a write under the current lease was refused (ErrFenced);
	// every later write under it is refused too, so a run that lost the
	// chat cannot store its end once its replica happens to take the lease
	// back. Cleared when a lease is taken.
	fencedOff bool
	// dead: forgotten (no longer the chat's room in Manager.rooms). Whoever
	// looked the room up before that takes the chat's live room instead
	// (lockRoom), or its subscriber, message or job would go to a room no
	// run or socket uses any more.
	dead bool

	// chain: the chain the chat's runs write in (runWrites), replaced by
	// each recovery. broken: a write in it failed, and the chat's work was
	// not all stored: the next job recovers the chat first. retries counts
	// the recoveries queued for it since a run last ended stored.
	chain   *runWrites
	broken  bool
	retries int

	tr   transcript
	last *lastRun   // how the last run here ended (run.go)
	rl   *roomRelay // relay: cross-replica state while the chat has subscribers

	// opening: Create keeps a new chat's room (what its greeting's run left:
	// the transcript, the last run's state) for openGrace, for the socket
	// that comes right after to find, so the chat's first message reads
	// nothing from the store.
	opening int
}

type job struct {
	// input is the user's message or UI tool answer; nil starts the workflow
	// (AgentDriven) if it has not started, or, with resume, continues the
	// run a crashed process left unfinished.
	input  *engine.Input
	msg    *op    // the stored user message this job answers, if any
	msgID  string // its message_id
	resume bool
	// sweep: a recovery found by another replica's sweep; it gives up at
	// once when a live process holds the chat's lease.
	sweep bool
}

// NewManager builds a Manager.
func NewManager(o Options) *Manager {
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 15 * time.Second
	}
	if o.HistoryMessages == 0 {
		o.HistoryMessages = engine.DefaultHistoryMessages
	}
	if o.HistoryEvents <= 0 {
		o.HistoryEvents = 2000
	}
	if o.PrintEvery == 0 {
		o.PrintEvery = DefaultPrintEvery
	}
	if o.Owner == "" {
		o.Owner = "mozaiks-" + randomID(6)
	}
	m := &Manager{opts: o, log: o.Logger, rooms: map[string]*room{}, retryBase: time.Second, openGrace: openGrace}
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
	defer r.mu.Unlock()
	key := r.appID + "\x00" + r.chatID
	// A broken room (a run's write failed) stays until its recovery: the
	// next job must find it broken, or its run would store over the work
	// the broken one left.
	if len(r.subs) == 0 && !r.running && len(r.queue) == 0 && !r.writing && len(r.out) == 0 && !r.held && !r.broken &&
		r.opening == 0 && m.rooms[key] == r {
		delete(m.rooms, key)
		r.dead = true
	}
}

// lockRoom returns the chat's live room with its lock held: a room looked up
// just before it was forgotten is looked up again.
func (m *Manager) lockRoom(appID, chatID string) *room {
	for {
		r := m.room(appID, chatID)
		r.mu.Lock()
		if !r.dead {
			return r
		}
		r.mu.Unlock()
	}
}

// OpenRequest names a chat as a socket URL does.
type OpenRequest struct {
	Workflow, AppID, ChatID, UserID string
	ClientRequestID                 string // Create only: double-click safety
}

// Open returns the chat, creating it when it does not exist (ChatUI connects
// to fresh chat ids). A chat of another user, app or workflow is ErrNotYours.
func (m *Manager) Open(ctx context.Context, req OpenRequest) (store.Session, bool, error) {
	sess, created, err := m.Create(ctx, req)
	if err != nil {
		return store.Session{}, false, err
	}
	if sess.UserID != req.UserID || sess.Workflow != req.Workflow {
		return store.Session{}, false, ErrNotYours
	}
	return sess, created, nil
}

// Create stores a new chat (or returns the one that exists under that id or
// client request id; callers check ownership). A UserDriven workflow's
// greeting is stored here, so it comes before anything the user says.
func (m *Manager) Create(ctx context.Context, req OpenRequest) (store.Session, bool, error) {
	sess, created, err := m.opts.Store.CreateSession(ctx, store.Session{ChatID: req.ChatID, AppID: req.AppID,
		UserID: req.UserID, Workflow: req.Workflow, Status: store.StatusAwaitingInput, ClientRequestID: req.ClientRequestID})
	if errors.Is(err, store.ErrConflict) {
		return store.Session{}, false, ErrNotYours
	}
	if err != nil || !created {
		return sess, created, err
	}
	if wf, ok := m.opts.Workflows.Get(req.Workflow); ok && wf.Orchestrator.StartupMode == workflow.StartupUserDriven {
		// Greeting and input request, no model call: run the start now.
		r := m.lockRoom(sess.AppID, sess.ChatID)
		r.opening++
		r.mu.Unlock()
		time.AfterFunc(m.openGrace, func() {
			r.mu.Lock()
			r.opening--
			r.mu.Unlock()
			m.forget(r)
		})
		m.runLeased(ctx, r, job{}, m.log.With("app_id", sess.AppID, "chat_id", sess.ChatID))
		m.flush(ctx, r)
		if got, gerr := m.opts.Store.GetSession(ctx, sess.AppID, sess.ChatID); gerr == nil {
			sess = got
		}
	}
	return sess, true, nil
}

// openGrace is how long Create keeps a new chat's room for the socket that
// follows (ChatUI creates a chat, then connects to it).
const openGrace = 10 * time.Second

// StartIfNeeded queues the workflow's start for a chat whose engine state
// says it has not started (the engine decides what starting means:
// AgentDriven speaks first, UserDriven waits).
func (m *Manager) StartIfNeeded(sess store.Session) {
	if engine.Started(sess.State) {
		return
	}
	r := m.lockRoom(sess.AppID, sess.ChatID)
	defer r.mu.Unlock()
	if !r.running && len(r.queue) == 0 {
		busy := store.StatusInProgress
		o := newOp()
		o.update, o.unfenced = &store.SessionUpdate{Status: &busy}, true
		m.postLocked(r, o)
		m.enqueueLocked(r, job{})
	}
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
// waits its turn. The run may call the model while the message is being
// stored; the ack waits for the store.
func (m *Manager) Submit(ctx context.Context, in Submission) (Ack, error) {
	if m.closing.Load() {
		return Ack{}, ErrClosing
	}
	msgID := "m_" + randomID(8)
	data := map[string]any{"kind": "text", "agent": "user", "role": "user", "content": in.Text, "message_id": msgID}
	if in.InputRequestID != "" {
		data["request_id"] = in.InputRequestID
	}
	// The message answers whatever the chat waited for, and the chat is busy
	// until a run has answered it: both are stored with the message, so a
	// crash right after the ack still finds the message to answer.
	busy, none := store.StatusInProgress, ""
	o := newOp()
	o.typ, o.agent, o.data, o.message = "chat.text", "user", data, true
	o.update = &store.SessionUpdate{Status: &busy, PendingKind: &none, PendingID: &none}
	o.unfenced = true // any replica stores a message, whoever runs the chat
	r := m.lockRoom(in.AppID, in.ChatID)
	if m.opts.MaxQueued > 0 && len(r.queue) >= m.opts.MaxQueued {
		r.mu.Unlock()
		return Ack{}, ErrBusy
	}
	m.postLocked(r, o)
	m.enqueueLocked(r, job{msg: o, msgID: msgID,
		input: &engine.Input{Kind: engine.InputMessage, Text: in.Text, RequestID: in.InputRequestID, Context: in.Context}})
	r.mu.Unlock()
	ev, err := o.wait(ctx)
	if err != nil {
		return Ack{}, err
	}
	return Ack{MessageID: msgID, Seq: ev.Seq, RequestID: in.InputRequestID}, nil
}

// AnswerInput answers a pending input request by id (the REST route), if
// the caller may answer for the chat's user.
func (m *Manager) AnswerInput(ctx context.Context, appID, requestID, text string, allow Allow) (store.Session, Ack, error) {
	sess, err := m.pendingFor(ctx, appID, requestID, "input", "", allow)
	if err != nil {
		return store.Session{}, Ack{}, err
	}
	ack, err := m.Submit(ctx, Submission{AppID: appID, ChatID: sess.ChatID, UserID: sess.UserID, Text: text, InputRequestID: requestID})
	return sess, ack, err
}

// RespondUITool answers the UI tool waiting under eventID, if the caller
// may answer for the chat's user. chatID may be "" (the REST route does not
// know it).
func (m *Manager) RespondUITool(ctx context.Context, appID, chatID, eventID string, response map[string]any, allow Allow) error {
	sess, err := m.pendingFor(ctx, appID, eventID, "ui_tool", chatID, allow)
	if err != nil {
		return err
	}
	// Clear the pending id first so a second answer to the same event is
	// refused; the chat is busy until the run has used the answer.
	empty, busy := "", store.StatusInProgress
	if err := m.opts.Store.UpdateSession(ctx, appID, sess.ChatID, store.SessionUpdate{Status: &busy, PendingKind: &empty, PendingID: &empty}); err != nil {
		return err
	}
	m.enqueueChat(appID, sess.ChatID, job{input: &engine.Input{Kind: engine.InputUIToolResponse, RequestID: eventID, Response: response}})
	return nil
}

// Cancel stops the chat's current run; the chat stays usable.
func (m *Manager) Cancel(appID, chatID string) bool {
	r := m.lockRoom(appID, chatID)
	defer r.mu.Unlock()
	if r.cancel != nil {
		r.cancel()
		return true
	}
	return false
}

// Shutdown stops taking work, cancels runs (the engine stops at a safe
// point and its state is persisted) and waits for them and their writes
// until ctx ends.
func (m *Manager) Shutdown(ctx context.Context) {
	m.closing.Store(true)
	m.stopAll()
	if m.runs.wait(ctx) != nil || m.writers.wait(ctx) != nil {
		m.log.Warn("runs still going at the end of the drain", "active", m.ActiveRuns())
	}
}

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
