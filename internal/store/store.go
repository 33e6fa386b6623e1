// Package store is the runtime's persistence: sessions, their events with a
// per-chat sequence, usage records, run leases and pending requests. Two
// implementations hold to one contract (and one conformance suite in
// storetest): MongoDB (store/mongo) for production and SQLite (store/sqlite),
// embedded, for a bare machine.
//
// Every call is scoped by app_id; callers check user ownership themselves so
// that another user's chat looks exactly like a missing one.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

var (
	// ErrNotFound: no such session (or not in this app).
	ErrNotFound = errors.New("not found")
	// ErrUnavailable wraps failures to reach the database.
	ErrUnavailable = errors.New("store unavailable")
	// ErrLocked: the embedded data directory is in use by another process.
	ErrLocked = errors.New("data directory in use")
	// ErrConflict: the chat id is taken by a session of another app.
	ErrConflict = errors.New("chat id taken")
	// ErrFenced: a write fenced by a run lease (SessionUpdate.Fence) found
	// the lease held by another owner; nothing was written.
	ErrFenced = errors.New("the chat's run lease is held by another owner")
)

// Session statuses.
const (
	StatusInProgress    = "in_progress"
	StatusAwaitingInput = "awaiting_input"
	StatusCompleted     = "completed"
	StatusFailed        = "failed"
)

// Usage is a token/cost total.
type Usage struct {
	PromptTokens     int64   `json:"prompt_tokens"`
	CompletionTokens int64   `json:"completion_tokens"`
	TotalTokens      int64   `json:"total_tokens"`
	CostUSD          float64 `json:"cost_usd"`
}

// Session is one chat.
type Session struct {
	ChatID          string
	AppID           string
	UserID          string
	Workflow        string
	Status          string
	CreatedAt       time.Time
	UpdatedAt       time.Time
	LastSeq         int64
	MessageCount    int64
	Usage           Usage
	ClientRequestID string
	// State is the engine's opaque state (JSON), stored and handed back as is.
	State json.RawMessage
	// PendingKind/PendingID name what the chat waits for ("input" with an
	// input request id, "ui_tool" with a UI tool event id); empty when nothing.
	PendingKind string
	PendingID   string
	// LastArtifact is the last artifact-mode UI tool payload (JSON), if any.
	LastArtifact json.RawMessage
}

// Event is one stored event of a chat. Seq is assigned by AppendEvent.
type Event struct {
	ChatID    string
	Seq       int64
	Type      string // frame type, e.g. "chat.text"
	Agent     string
	Data      json.RawMessage // the frame's data object
	Timestamp time.Time
}

// UsageRecord is one LLM call's token usage.
type UsageRecord struct {
	AppID            string
	UserID           string
	ChatID           string
	Workflow         string
	Agent            string
	Model            string
	PromptTokens     int64
	CompletionTokens int64
	TotalTokens      int64
	CostUSD          float64
	Duration         time.Duration
	Timestamp        time.Time
}

// ListQuery selects a user's sessions, newest first.
type ListQuery struct {
	AppID    string
	UserID   string
	Status   string // optional
	Workflow string // optional
	Limit    int    // 1..100
	Cursor   string // opaque, from a previous page's next cursor
}

// SessionUpdate changes some fields of a session; nil fields stay as they are.
type SessionUpdate struct {
	Status       *string
	State        json.RawMessage // nil: unchanged
	PendingKind  *string
	PendingID    *string
	LastArtifact json.RawMessage // nil: unchanged
	// Fence, when set, makes the write (an event appended with the update,
	// or the update alone) happen only while this owner holds the chat's
	// run lease; else it fails with ErrFenced and writes nothing. A run that
	// lost its lease to another replica (it stalled past the lease) cannot
	// write into the chat the new owner runs.
	Fence string
	// StatusUnlessAfter, when set, makes Status apply only if no event was
	// stored after this seq: the session's last_seq before this write (in a
	// WriteBatch: before the batch, whose own events never count) is at most
	// *StatusUnlessAfter. Else the status stays as it is and the rest of the
	// update applies all the same. A run's end that read the chat up to a
	// seq (plus the events it stored itself) cannot then mark the chat idle
	// over a user message another replica stored meanwhile (which set it
	// in progress).
	StatusUnlessAfter *int64
}

// Store is the persistence contract.
type Store interface {
	// Backend is "mongodb" or "embedded".
	Backend() string
	// Ping checks the database answers.
	Ping(ctx context.Context) error
	Close() error

	// CreateSession stores s (CreatedAt/UpdatedAt set by the store when zero).
	// If s.ClientRequestID is set and the same app/user created a session
	// of the same workflow with it less than 60 s ago, that session is
	// returned with created=false (another workflow gets its own session).
	// If a session with s.ChatID exists in the app, it is returned with
	// created=false (whoever owns it: callers check ownership); if it exists
	// in another app, ErrConflict.
	CreateSession(ctx context.Context, s Session) (_ Session, created bool, _ error)
	// GetSession returns the app's session or ErrNotFound.
	GetSession(ctx context.Context, appID, chatID string) (Session, error)
	// ListSessions pages through a user's sessions, newest first; next is ""
	// on the last page.
	ListSessions(ctx context.Context, q ListQuery) (_ []Session, next string, _ error)
	// UpdateSession applies u and bumps UpdatedAt.
	UpdateSession(ctx context.Context, appID, chatID string, u SessionUpdate) error
	// FindPending finds the app's session waiting on the given request id
	// (input request or UI tool event).
	FindPending(ctx context.Context, appID, pendingID string) (Session, error)

	// AppendEvent stores ev as the chat's next event: it assigns Seq (the
	// session's last_seq + 1, atomically; no duplicates under concurrency),
	// sets Timestamp when zero, bumps UpdatedAt and, when message is true,
	// MessageCount. It returns the stored event.
	AppendEvent(ctx context.Context, appID, chatID string, ev Event, message bool) (Event, error)
	// AppendEventUpdate is AppendEvent that also applies u to the session in
	// the same step: a user message and the chat's in_progress status, or a
	// run's last event and the state it ended in, are stored together or not
	// at all (on MongoDB: with the seq counter, before the event's insert).
	AppendEventUpdate(ctx context.Context, appID, chatID string, ev Event, message bool, u SessionUpdate) (Event, error)
	// ListEvents returns up to limit events with Seq > afterSeq, in order.
	ListEvents(ctx context.Context, appID, chatID string, afterSeq int64, limit int) ([]Event, error)

	// RecordUsage stores one usage record and adds it to the session's totals.
	RecordUsage(ctx context.Context, u UsageRecord) error

	// AcquireLease makes owner the chat's only runner until ttl passes;
	// it succeeds when the lease is free, expired or already owner's. Taking
	// or renewing it bumps UpdatedAt: a chat whose run is alive somewhere is
	// never older than its lease (what other replicas' sweeps look at).
	AcquireLease(ctx context.Context, appID, chatID, owner string, ttl time.Duration) (bool, error)
	// RenewLease extends owner's lease to ttl from now, only while owner
	// still holds it: lease_owner is owner, expired or not (if nobody took it
	// in between, nobody ran the chat). It returns false when another owner
	// took it, even if that one released it since: a run whose lease lapsed
	// never gets it back this way (AcquireLease would). It bumps UpdatedAt as
	// AcquireLease does. An unknown chat is ErrNotFound.
	RenewLease(ctx context.Context, appID, chatID, owner string, ttl time.Duration) (bool, error)
	// ReleaseLease frees the lease if owner holds it.
	ReleaseLease(ctx context.Context, appID, chatID, owner string) error

	// ListUnfinished returns up to limit sessions of any app whose status is
	// in_progress: chats with a run (or an acknowledged message) that a
	// crashed or stopped process did not finish, oldest update first.
	ListUnfinished(ctx context.Context, limit int) ([]Session, error)
}

// GapType marks a seq that a process took and never stored (it died
// between the two). The process that recovers the chat fills such seqs with
// a GapType event (GapFiller), so readers stop waiting for them; ListEvents
// never returns one.
const GapType = "chat.gap"

// GapFiller is implemented by stores whose seqs can be lost (MongoDB: the
// seq is taken before the event is inserted).
type GapFiller interface {
	// FillGaps stores a GapType event under every seq up to upTo that has
	// none; it returns how many it filled.
	FillGaps(ctx context.Context, appID, chatID string, upTo int64) (int, error)
}

// IdempotencyWindow is how long a client_request_id returns the same session.
const IdempotencyWindow = 60 * time.Second

// MaxListLimit bounds ListSessions.
const MaxListLimit = 100
