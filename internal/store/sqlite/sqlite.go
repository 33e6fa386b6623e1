// Package sqlite is the embedded store: the store contract on one SQLite file
// (pure Go, modernc.org/sqlite) in WAL mode, with a lock on the data
// directory so two processes cannot open it at once.
//
// Writes go through a single connection (SQLite allows one writer anyway, and
// serialising them in-process avoids SQLITE_BUSY upgrades); reads use a small
// pool that WAL lets run beside the writer.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/mozaiks/mozaiks/internal/store"
)

// FileName is the database file inside the data directory.
const FileName = "mozaiks.db"

// Store is the embedded store.
type Store struct {
	dir    string
	w      *sql.DB // one connection: all writes, through the writer goroutine
	r      *sql.DB // readers
	unlock func()
	ws, rs map[string]*sql.Stmt // prepared statements of the writer and the readers (stmts.go)

	closeOnce sync.Once
	closeErr  error

	ops     chan writeOp // to the writer goroutine (unbuffered)
	quit    chan struct{}
	done    chan struct{}
	commits atomic.Int64 // transactions the writer has run
	bound   []boundStmt  // the writer's transaction's statements (wtx)
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the store in dir. It fails with an error
// wrapping store.ErrLocked when another process has dir open.
func Open(ctx context.Context, dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, FileName)
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_txlock=immediate"
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		unlock()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", dsn+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		unlock()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	s := &Store{dir: dir, w: w, r: r, unlock: unlock, ops: make(chan writeOp), quit: make(chan struct{}), done: make(chan struct{})}
	go s.writer()
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.prepare(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Dir is the data directory.
func (s *Store) Dir() string { return s.dir }

// Path is the database file.
func (s *Store) Path() string { return filepath.Join(s.dir, FileName) }

const schema = `
CREATE TABLE IF NOT EXISTS sessions (
	chat_id           TEXT PRIMARY KEY,
	app_id            TEXT NOT NULL,
	user_id           TEXT NOT NULL,
	workflow          TEXT NOT NULL,
	status            TEXT NOT NULL,
	created_at        INTEGER NOT NULL,
	updated_at        INTEGER NOT NULL,
	last_seq          INTEGER NOT NULL DEFAULT 0,
	message_count     INTEGER NOT NULL DEFAULT 0,
	prompt_tokens     INTEGER NOT NULL DEFAULT 0,
	completion_tokens INTEGER NOT NULL DEFAULT 0,
	total_tokens      INTEGER NOT NULL DEFAULT 0,
	cost_usd          REAL    NOT NULL DEFAULT 0,
	client_request_id TEXT    NOT NULL DEFAULT '',
	state             TEXT,
	pending_kind      TEXT    NOT NULL DEFAULT '',
	pending_id        TEXT    NOT NULL DEFAULT '',
	last_artifact     TEXT,
	lease_owner       TEXT    NOT NULL DEFAULT '',
	lease_until       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (app_id, user_id, created_at DESC, chat_id DESC);
CREATE INDEX IF NOT EXISTS sessions_by_request ON sessions (app_id, user_id, client_request_id, created_at);
CREATE INDEX IF NOT EXISTS sessions_by_pending ON sessions (app_id, pending_id);
CREATE INDEX IF NOT EXISTS sessions_by_status ON sessions (status, updated_at);

CREATE TABLE IF NOT EXISTS events (
	chat_id TEXT    NOT NULL,
	seq     INTEGER NOT NULL,
	type    TEXT    NOT NULL,
	agent   TEXT    NOT NULL DEFAULT '',
	data    TEXT    NOT NULL,
	ts      INTEGER NOT NULL,
	PRIMARY KEY (chat_id, seq)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS usage_events (
	id                INTEGER PRIMARY KEY,
	app_id            TEXT NOT NULL,
	user_id           TEXT NOT NULL,
	chat_id           TEXT NOT NULL,
	workflow          TEXT NOT NULL,
	agent             TEXT NOT NULL,
	model             TEXT NOT NULL,
	prompt_tokens     INTEGER NOT NULL,
	completion_tokens INTEGER NOT NULL,
	total_tokens      INTEGER NOT NULL,
	cost_usd          REAL    NOT NULL,
	duration_ms       INTEGER NOT NULL,
	ts                INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_by_chat ON usage_events (app_id, user_id, chat_id);
`

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	return nil
}

// Backend implements store.Store.
func (s *Store) Backend() string { return "embedded" }

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("%w: %v", store.ErrUnavailable, err)
	}
	return nil
}

// Close implements store.Store. It checkpoints the WAL so the file is whole.
// A write racing with it fails with ErrUnavailable; a second Close is a no-op.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Store) close() error {
	var errs []error
	if s.quit != nil {
		close(s.quit)
		<-s.done
	}
	s.closeStmts()
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	if s.w != nil {
		_, _ = s.w.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
		errs = append(errs, s.w.Close())
	}
	if s.unlock != nil {
		s.unlock()
		s.unlock = nil
	}
	return errors.Join(errs...)
}

const sessionCols = `chat_id, app_id, user_id, workflow, status, created_at, updated_at, last_seq, message_count,
	prompt_tokens, completion_tokens, total_tokens, cost_usd, client_request_id, state, pending_kind, pending_id, last_artifact`

type scanner interface{ Scan(dest ...any) error }

func scanSession(row scanner) (store.Session, error) {
	var x store.Session
	var created, updated int64
	var state, artifact sql.NullString
	err := row.Scan(&x.ChatID, &x.AppID, &x.UserID, &x.Workflow, &x.Status, &created, &updated, &x.LastSeq, &x.MessageCount,
		&x.Usage.PromptTokens, &x.Usage.CompletionTokens, &x.Usage.TotalTokens, &x.Usage.CostUSD, &x.ClientRequestID,
		&state, &x.PendingKind, &x.PendingID, &artifact)
	if err != nil {
		return store.Session{}, err
	}
	x.CreatedAt = time.UnixMilli(created).UTC()
	x.UpdatedAt = time.UnixMilli(updated).UTC()
	if state.Valid {
		x.State = json.RawMessage(state.String)
	}
	if artifact.Valid {
		x.LastArtifact = json.RawMessage(artifact.String)
	}
	return x, nil
}

func nullJSON(b json.RawMessage) any {
	if b == nil {
		return nil
	}
	return string(b)
}

// CreateSession implements store.Store.
func (s *Store) CreateSession(ctx context.Context, in store.Session) (out store.Session, created bool, err error) {
	err = s.write(ctx, func(tx wtx) error {
		out, created, err = s.createSession(ctx, tx, in)
		return err
	})
	return out, created, err
}

func (s *Store) createSession(ctx context.Context, tx wtx, in store.Session) (store.Session, bool, error) {
	now := store.Now()
	if in.ClientRequestID != "" {
		row := tx.QueryRowContext(ctx, `SELECT `+sessionCols+` FROM sessions
			WHERE app_id = ? AND user_id = ? AND client_request_id = ? AND workflow = ? AND created_at >= ?
			ORDER BY created_at DESC LIMIT 1`,
			in.AppID, in.UserID, in.ClientRequestID, in.Workflow, now.Add(-store.IdempotencyWindow).UnixMilli())
		if got, err := scanSession(row); err == nil {
			return got, false, nil
		} else if !errors.Is(err, sql.ErrNoRows) {
			return store.Session{}, false, wrap(err)
		}
	}
	existing, err := scanSession(tx.QueryRowContext(ctx, qSessionByID, in.ChatID))
	switch {
	case err == nil && existing.AppID != in.AppID:
		return store.Session{}, false, store.ErrConflict
	case err == nil:
		return existing, false, nil
	case !errors.Is(err, sql.ErrNoRows):
		return store.Session{}, false, wrap(err)
	}
	if in.CreatedAt.IsZero() {
		in.CreatedAt = now
	}
	if in.UpdatedAt.IsZero() {
		in.UpdatedAt = in.CreatedAt
	}
	in.CreatedAt, in.UpdatedAt = in.CreatedAt.UTC().Truncate(time.Millisecond), in.UpdatedAt.UTC().Truncate(time.Millisecond)
	if in.Status == "" {
		in.Status = store.StatusInProgress
	}
	_, err = tx.ExecContext(ctx, qInsertSession,
		in.ChatID, in.AppID, in.UserID, in.Workflow, in.Status, in.CreatedAt.UnixMilli(), in.UpdatedAt.UnixMilli(),
		in.ClientRequestID, nullJSON(in.State), in.PendingKind, in.PendingID, nullJSON(in.LastArtifact))
	if err != nil {
		return store.Session{}, false, wrap(err)
	}
	in.LastSeq, in.MessageCount, in.Usage = 0, 0, store.Usage{}
	return in, true, nil
}

// GetSession implements store.Store.
func (s *Store) GetSession(ctx context.Context, appID, chatID string) (store.Session, error) {
	got, err := scanSession(s.queryRow(ctx, qGetSession, chatID, appID))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Session{}, store.ErrNotFound
	}
	return got, wrap(err)
}

// ListSessions implements store.Store.
func (s *Store) ListSessions(ctx context.Context, q store.ListQuery) ([]store.Session, string, error) {
	limit := q.Limit
	if limit <= 0 || limit > store.MaxListLimit {
		limit = store.MaxListLimit
	}
	where := `app_id = ? AND user_id = ?`
	args := []any{q.AppID, q.UserID}
	if q.Status != "" {
		where += ` AND status = ?`
		args = append(args, q.Status)
	}
	if q.Workflow != "" {
		where += ` AND workflow = ?`
		args = append(args, q.Workflow)
	}
	if q.Cursor != "" {
		at, id, err := store.DecodeCursor(q.Cursor)
		if err != nil {
			return nil, "", err
		}
		where += ` AND (created_at < ? OR (created_at = ? AND chat_id < ?))`
		args = append(args, at.UnixMilli(), at.UnixMilli(), id)
	}
	args = append(args, limit+1)
	rows, err := s.r.QueryContext(ctx, `SELECT `+sessionCols+` FROM sessions WHERE `+where+
		` ORDER BY created_at DESC, chat_id DESC LIMIT ?`, args...)
	if err != nil {
		return nil, "", wrap(err)
	}
	defer rows.Close()
	var out []store.Session
	for rows.Next() {
		x, err := scanSession(rows)
		if err != nil {
			return nil, "", wrap(err)
		}
		out = append(out, x)
	}
	if err := rows.Err(); err != nil {
		return nil, "", wrap(err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		next = store.EncodeCursor(last.CreatedAt, last.ChatID)
	}
	return out, next, nil
}

// UpdateSession implements store.Store.
func (s *Store) UpdateSession(ctx context.Context, appID, chatID string, u store.SessionUpdate) error {
	args := whereArgs(updateArgs([]any{store.Now().UnixMilli()}, u), chatID, appID, u)
	return s.write(ctx, func(tx wtx) error {
		res, err := tx.ExecContext(ctx, qUpdateSession, args...)
		if err := affected(res, err); !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return missed(ctx, tx, chatID, appID, u)
	})
}

// whereArgs appends the arguments of a session update's WHERE clause: the
// chat, the app and the fence.
func whereArgs(args []any, chatID, appID string, u store.SessionUpdate) []any {
	return append(args, chatID, appID, u.Fence, u.Fence)
}

// missed says why a session update matched no row: ErrFenced when the
// session is there and the update was fenced, else ErrNotFound.
func missed(ctx context.Context, tx wtx, chatID, appID string, u store.SessionUpdate) error {
	if u.Fence == "" {
		return store.ErrNotFound
	}
	var one int
	switch err := tx.QueryRowContext(ctx, `SELECT 1 FROM sessions WHERE chat_id = ? AND app_id = ?`, chatID, appID).Scan(&one); {
	case errors.Is(err, sql.ErrNoRows):
		return store.ErrNotFound
	case err != nil:
		return wrap(err)
	}
	return store.ErrFenced
}

// updateArgs appends the arguments of setUpdate (stmts.go) for u: NULL for
// a field u leaves as it is.
func updateArgs(args []any, u store.SessionUpdate) []any {
	str := func(p *string) any {
		if p == nil {
			return nil
		}
		return *p
	}
	var unlessAfter any
	if u.StatusUnlessAfter != nil {
		unlessAfter = *u.StatusUnlessAfter
	}
	return append(args, unlessAfter, unlessAfter, str(u.Status), nullJSON(u.State), str(u.PendingKind), str(u.PendingID), nullJSON(u.LastArtifact))
}

// FindPending implements store.Store.
func (s *Store) FindPending(ctx context.Context, appID, pendingID string) (store.Session, error) {
	if pendingID == "" {
		return store.Session{}, store.ErrNotFound
	}
	got, err := scanSession(s.queryRow(ctx, qFindPending, appID, pendingID))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Session{}, store.ErrNotFound
	}
	return got, wrap(err)
}

// AppendEvent implements store.Store.
func (s *Store) AppendEvent(ctx context.Context, appID, chatID string, ev store.Event, message bool) (store.Event, error) {
	return s.AppendEventUpdate(ctx, appID, chatID, ev, message, store.SessionUpdate{})
}

// AppendEventUpdate implements store.Store.
func (s *Store) AppendEventUpdate(ctx context.Context, appID, chatID string, ev store.Event, message bool, u store.SessionUpdate) (store.Event, error) {
	if ev.Timestamp.IsZero() {
		ev.Timestamp = store.Now()
	}
	ev.Timestamp = ev.Timestamp.UTC().Truncate(time.Millisecond)
	if len(ev.Data) == 0 {
		ev.Data = json.RawMessage(`{}`)
	}
	inc := 0
	if message {
		inc = 1
	}
	args := whereArgs(updateArgs([]any{inc, ev.Timestamp.UnixMilli()}, u), chatID, appID, u)
	err := s.write(ctx, func(tx wtx) error {
		err := tx.QueryRowContext(ctx, qAppendEvent, args...).Scan(&ev.Seq)
		if errors.Is(err, sql.ErrNoRows) {
			return missed(ctx, tx, chatID, appID, u)
		}
		if err != nil {
			return wrap(err)
		}
		_, err = tx.ExecContext(ctx, qInsertEvent,
			chatID, ev.Seq, ev.Type, ev.Agent, string(ev.Data), ev.Timestamp.UnixMilli())
		return wrap(err)
	})
	if err != nil {
		return store.Event{}, err
	}
	ev.ChatID = chatID
	return ev, nil
}

// ListUnfinished implements store.Store.
func (s *Store) ListUnfinished(ctx context.Context, limit int) ([]store.Session, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+sessionCols+` FROM sessions WHERE status = ? ORDER BY updated_at LIMIT ?`,
		store.StatusInProgress, limit)
	if err != nil {
		return nil, wrap(err)
	}
	return scanSessions(rows)
}

// scanSessions reads every row of a sessions query and closes it.
func scanSessions(rows *sql.Rows) ([]store.Session, error) {
	defer rows.Close()
	var out []store.Session
	for rows.Next() {
		x, err := scanSession(rows)
		if err != nil {
			return nil, wrap(err)
		}
		out = append(out, x)
	}
	return out, wrap(rows.Err())
}

// ListEvents implements store.Store.
func (s *Store) ListEvents(ctx context.Context, appID, chatID string, afterSeq int64, limit int) ([]store.Event, error) {
	if limit <= 0 {
		limit = 1000
	}
	// The join scopes the read by app without storing app_id on every event.
	rows, err := s.query(ctx, qListEvents, appID, chatID, afterSeq, limit)
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	var out []store.Event
	for rows.Next() {
		ev := store.Event{ChatID: chatID}
		var data string
		var ts int64
		if err := rows.Scan(&ev.Seq, &ev.Type, &ev.Agent, &data, &ts); err != nil {
			return nil, wrap(err)
		}
		ev.Data = json.RawMessage(data)
		ev.Timestamp = time.UnixMilli(ts).UTC()
		out = append(out, ev)
	}
	return out, wrap(rows.Err())
}

// RecordUsage implements store.Store.
func (s *Store) RecordUsage(ctx context.Context, u store.UsageRecord) error {
	if u.Timestamp.IsZero() {
		u.Timestamp = store.Now()
	}
	return s.write(ctx, func(tx wtx) error {
		return recordUsage(ctx, tx, u)
	})
}

func recordUsage(ctx context.Context, tx wtx, u store.UsageRecord) error {
	res, err := tx.ExecContext(ctx, qAddUsage,
		u.PromptTokens, u.CompletionTokens, u.TotalTokens, u.CostUSD, u.ChatID, u.AppID)
	if err := affected(res, err); err != nil {
		return err
	}
	return insertUsage(ctx, tx, u)
}

// insertUsage stores the usage record only (its totals are added elsewhere).
func insertUsage(ctx context.Context, tx wtx, u store.UsageRecord) error {
	if _, err := tx.ExecContext(ctx, qInsertUsage,
		u.AppID, u.UserID, u.ChatID, u.Workflow, u.Agent, u.Model, u.PromptTokens, u.CompletionTokens, u.TotalTokens,
		u.CostUSD, u.Duration.Milliseconds(), u.Timestamp.UnixMilli()); err != nil {
		return wrap(err)
	}
	return nil
}

// AcquireLease implements store.Store.
func (s *Store) AcquireLease(ctx context.Context, appID, chatID, owner string, ttl time.Duration) (bool, error) {
	now := time.Now()
	return s.lease(ctx, appID, chatID, qAcquireLease, owner, now.Add(ttl).UnixMilli(), now.UnixMilli(), chatID, appID, owner, now.UnixMilli())
}

// RenewLease implements store.Store.
func (s *Store) RenewLease(ctx context.Context, appID, chatID, owner string, ttl time.Duration) (bool, error) {
	if owner == "" {
		return s.lease(ctx, appID, chatID, "")
	}
	now := time.Now()
	return s.lease(ctx, appID, chatID, qRenewLease, now.Add(ttl).UnixMilli(), now.UnixMilli(), chatID, appID, owner)
}

// lease runs a lease statement q (none: "") and reports whether it took or
// kept the lease; ErrNotFound when the chat does not exist.
func (s *Store) lease(ctx context.Context, appID, chatID, q string, args ...any) (bool, error) {
	if q != "" {
		var n int64
		err := s.write(ctx, func(tx wtx) error {
			res, err := tx.ExecContext(ctx, q, args...)
			if err != nil {
				return wrap(err)
			}
			n, _ = res.RowsAffected()
			return nil
		})
		if err != nil {
			return false, err
		}
		if n == 1 {
			return true, nil
		}
	}
	if _, err := s.GetSession(ctx, appID, chatID); err != nil {
		return false, err
	}
	return false, nil
}

// ReleaseLease implements store.Store.
func (s *Store) ReleaseLease(ctx context.Context, appID, chatID, owner string) error {
	return s.write(ctx, func(tx wtx) error {
		_, err := tx.ExecContext(ctx, qReleaseLease,
			chatID, appID, owner)
		return wrap(err)
	})
}

func affected(res sql.Result, err error) error {
	if err != nil {
		return wrap(err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return wrap(err)
	} else if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// wrap marks database failures as store.ErrUnavailable, except context errors.
func wrap(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w: %v", store.ErrUnavailable, err)
}
