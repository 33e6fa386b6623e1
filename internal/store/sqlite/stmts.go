package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// SQLite parses a statement every time it is run from its text; in pure Go
// that parse was the biggest single cost of a write (about a third of the
// writer's time at 100 busy chats). The statements the runtime runs on every
// turn are therefore prepared once, when the store opens, and run from the
// cache: a write's statements are bound to its transaction
// (sql.Tx.StmtContext reuses the statement already prepared on the writer's
// one connection), a read's go through the reader pool's prepared statement.

// The statements prepared at open. Their text is the key they are found by.
const (
	qAppendEvent = `UPDATE sessions SET last_seq = last_seq + 1, message_count = message_count + ?, updated_at = ?,` + setUpdate +
		` WHERE chat_id = ? AND app_id = ?` + fence + ` RETURNING last_seq`
	qAppendEvents = `UPDATE sessions SET last_seq = last_seq + ?, message_count = message_count + ?, updated_at = ?,` + setUpdate +
		` WHERE chat_id = ? AND app_id = ?` + fence + ` RETURNING last_seq`
	// qAppendEventsUsage is qAppendEvents adding a batch's token usage to
	// the session's totals too, instead of one more UPDATE (qAddUsage) per
	// usage record.
	qAppendEventsUsage = `UPDATE sessions SET last_seq = last_seq + ?, message_count = message_count + ?, updated_at = ?,
		prompt_tokens = prompt_tokens + ?, completion_tokens = completion_tokens + ?, total_tokens = total_tokens + ?,
		cost_usd = cost_usd + ?,` + setUpdate + ` WHERE chat_id = ? AND app_id = ?` + fence + ` RETURNING last_seq`
	qUpdateSession = `UPDATE sessions SET updated_at = ?,` + setUpdate + ` WHERE chat_id = ? AND app_id = ?` + fence
	qInsertEvent   = `INSERT INTO events (chat_id, seq, type, agent, data, ts) VALUES (?,?,?,?,?,?)`
	qAddUsage      = `UPDATE sessions SET prompt_tokens = prompt_tokens + ?, completion_tokens = completion_tokens + ?,
		total_tokens = total_tokens + ?, cost_usd = cost_usd + ? WHERE chat_id = ? AND app_id = ?`
	qInsertUsage = `INSERT INTO usage_events (app_id, user_id, chat_id, workflow, agent, model,
		prompt_tokens, completion_tokens, total_tokens, cost_usd, duration_ms, ts) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`
	qAcquireLease = `UPDATE sessions SET lease_owner = ?, lease_until = ?, updated_at = ?
			WHERE chat_id = ? AND app_id = ? AND (lease_owner = '' OR lease_owner = ? OR lease_until < ?)`
	qRenewLease    = `UPDATE sessions SET lease_until = ?, updated_at = ? WHERE chat_id = ? AND app_id = ? AND lease_owner = ?`
	qReleaseLease  = `UPDATE sessions SET lease_owner = '', lease_until = 0 WHERE chat_id = ? AND app_id = ? AND lease_owner = ?`
	qSessionByID   = `SELECT ` + sessionCols + ` FROM sessions WHERE chat_id = ?`
	qInsertSession = `INSERT INTO sessions (chat_id, app_id, user_id, workflow, status, created_at, updated_at,
		client_request_id, state, pending_kind, pending_id, last_artifact) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`
	qSavepoint  = `SAVEPOINT w`
	qRollbackTo = `ROLLBACK TO w`
	qRelease    = `RELEASE w`

	qGetSession  = `SELECT ` + sessionCols + ` FROM sessions WHERE chat_id = ? AND app_id = ?`
	qFindPending = `SELECT ` + sessionCols + ` FROM sessions WHERE app_id = ? AND pending_id = ? LIMIT 1`
	qListEvents  = `SELECT e.seq, e.type, e.agent, e.data, e.ts FROM events e
		JOIN sessions s ON s.chat_id = e.chat_id AND s.app_id = ?
		WHERE e.chat_id = ? AND e.seq > ? ORDER BY e.seq LIMIT ?`
)

// fence holds a write to the run lease of SessionUpdate.Fence, when one is
// given (its two arguments: whereArgs).
const fence = ` AND (? = '' OR lease_owner = ?)`

// setUpdate sets the optional fields of a store.SessionUpdate: a NULL
// argument (a field not given) leaves the column as it is. One statement for
// every combination of fields, so it can be prepared.
//
// The status is set only if its condition (SessionUpdate.StatusUnlessAfter;
// two arguments, NULL when there is none) holds: SET expressions see the
// row as it was before the update, so last_seq is the one before this
// write's own events.
const setUpdate = ` status = CASE WHEN ? IS NULL OR last_seq <= ? THEN COALESCE(?, status) ELSE status END, state = COALESCE(?, state), pending_kind = COALESCE(?, pending_kind),
	pending_id = COALESCE(?, pending_id), last_artifact = COALESCE(?, last_artifact)`

var (
	writeStmts = []string{qAppendEvent, qAppendEvents, qAppendEventsUsage, qUpdateSession, qInsertEvent, qAddUsage, qInsertUsage, qAcquireLease,
		qRenewLease, qReleaseLease, qSessionByID, qInsertSession, qSavepoint, qRollbackTo, qRelease}
	readStmts = []string{qGetSession, qFindPending, qListEvents}
)

// prepare fills the statement caches; the schema must exist.
func (s *Store) prepare(ctx context.Context) error {
	s.ws, s.rs = make(map[string]*sql.Stmt, len(writeStmts)), make(map[string]*sql.Stmt, len(readStmts))
	for _, set := range []struct {
		db    *sql.DB
		qs    []string
		cache map[string]*sql.Stmt
	}{{s.w, writeStmts, s.ws}, {s.r, readStmts, s.rs}} {
		for _, q := range set.qs {
			st, err := set.db.PrepareContext(ctx, q)
			if err != nil {
				return fmt.Errorf("prepare %.40q: %w", q, err)
			}
			set.cache[q] = st
		}
	}
	return nil
}

func (s *Store) closeStmts() {
	for _, c := range []map[string]*sql.Stmt{s.ws, s.rs} {
		for _, st := range c {
			_ = st.Close()
		}
	}
}

// wtx is the writer's transaction: statements prepared at open run from the
// cache, any other text is parsed as usual.
//
// Its statements run without their caller's deadline or cancel: the writer
// checks an op's context before it starts the op (commit), and once started
// an op's statements (one row each, microseconds) run to the end. A
// cancellable context would cost each statement a goroutine in the driver
// (modernc.org/sqlite watches it to interrupt the statement) and a progress
// handler set and cleared, about ten statements a chat turn.
//
// A prepared statement is bound to the transaction once (sql.Tx.StmtContext
// makes a new one at every call) and reused by the transaction's other
// writes: a burst's transaction runs the same few statements for each of its
// writes.
type wtx struct {
	*sql.Tx
	s     *Store
	bound *[]boundStmt // this transaction's: the writer's, reset at each commit
}

// boundStmt is a prepared statement bound to the writer's transaction.
type boundStmt struct{ prepared, tx *sql.Stmt }

// stmt is the cached statement for q bound to the transaction, or nil when
// q is not one of the prepared ones.
func (t wtx) stmt(ctx context.Context, q string) *sql.Stmt {
	st := t.s.ws[q]
	if st == nil {
		return nil
	}
	for _, b := range *t.bound {
		if b.prepared == st {
			return b.tx
		}
	}
	b := boundStmt{prepared: st, tx: t.Tx.StmtContext(ctx, st)}
	*t.bound = append(*t.bound, b)
	return b.tx
}

func (t wtx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	ctx = context.WithoutCancel(ctx)
	if st := t.stmt(ctx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return t.Tx.ExecContext(ctx, q, args...)
}

func (t wtx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	ctx = context.WithoutCancel(ctx)
	if st := t.stmt(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return t.Tx.QueryRowContext(ctx, q, args...)
}

// queryRow and query read through the reader pool's prepared statements.
func (s *Store) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	if st := s.rs[q]; st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return s.r.QueryRowContext(ctx, q, args...)
}

func (s *Store) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := s.rs[q]; st != nil {
		return st.QueryContext(ctx, args...)
	}
	return s.r.QueryContext(ctx, q, args...)
}
