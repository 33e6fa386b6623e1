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
	"time"

	"github.com/mozaiks/mozaiks/internal/store"
)

// Backup side of the embedded store: a consistent snapshot of a live
// database (taken without the data directory's lock, which a running serve
// holds), and the store.Exporter / store.Importer implementations.

var (
	_ store.Exporter = (*Store)(nil)
	_ store.Importer = (*Store)(nil)
	_ store.Exporter = (*SnapshotDB)(nil)
)

// ErrNoDatabase: the data directory holds no embedded store.
var ErrNoDatabase = errors.New("no embedded store")

// Snapshot copies the database in dir into the new file dst with VACUUM INTO,
// through a read-only connection of its own: it needs no lock on dir, so it
// works while `mozaiks serve` runs, and it copies one read transaction, so
// the copy is never torn by concurrent writes. dst must not exist.
func Snapshot(ctx context.Context, dir, dst string) error {
	path := filepath.Join(dir, FileName)
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w in %s", ErrNoDatabase, dir)
		}
		return fmt.Errorf("snapshot %s: %w", path, err)
	}
	db, err := sql.Open("sqlite", readOnlyDSN(path))
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, dst); err != nil {
		_ = os.Remove(dst)
		return fmt.Errorf("snapshot %s: %w", path, err)
	}
	return nil
}

func readOnlyDSN(path string) string {
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?mode=ro&_pragma=busy_timeout(10000)"
}

// SnapshotDB is a database file opened read-only for export, such as a copy
// made by Snapshot. It takes no lock: nothing else writes to a snapshot.
type SnapshotDB struct{ db *sql.DB }

// OpenSnapshot opens the database file at path read-only.
func OpenSnapshot(path string) (*SnapshotDB, error) {
	db, err := sql.Open("sqlite", readOnlyDSN(path))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	return &SnapshotDB{db: db}, nil
}

// Close closes the file.
func (s *SnapshotDB) Close() error { return s.db.Close() }

// Count implements store.Exporter.
func (s *SnapshotDB) Count(ctx context.Context) (store.Counts, error) { return count(ctx, s.db) }

// Export implements store.Exporter.
func (s *SnapshotDB) Export(ctx context.Context, sink store.ExportSink) error {
	return export(ctx, s.db, sink)
}

// Count implements store.Exporter and store.Importer.
func (s *Store) Count(ctx context.Context) (store.Counts, error) { return count(ctx, s.r) }

// Export implements store.Exporter from one read transaction (WAL gives it a
// snapshot that writers do not disturb).
func (s *Store) Export(ctx context.Context, sink store.ExportSink) error {
	return export(ctx, s.r, sink)
}

func count(ctx context.Context, db *sql.DB) (store.Counts, error) {
	var c store.Counts
	err := db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM events),
		(SELECT count(*) FROM usage_events)`).Scan(&c.Sessions, &c.Events, &c.Usage)
	return c, wrap(err)
}

// export streams the three tables inside one read transaction on one
// connection. The transaction is opened with a plain BEGIN (deferred): the
// readers' DSN asks for immediate transactions, which would take the write lock.
func export(ctx context.Context, db *sql.DB, sink store.ExportSink) (err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return wrap(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN DEFERRED`); err != nil {
		return wrap(err)
	}
	defer func() { _, _ = conn.ExecContext(context.Background(), `ROLLBACK`) }()

	rows, err := conn.QueryContext(ctx, `SELECT `+sessionCols+` FROM sessions ORDER BY chat_id`)
	if err != nil {
		return wrap(err)
	}
	if err := eachRow(rows, func() error {
		x, err := scanSession(rows)
		if err != nil {
			return err
		}
		return sink.Session(x)
	}); err != nil {
		return err
	}

	rows, err = conn.QueryContext(ctx, `SELECT s.app_id, e.chat_id, e.seq, e.type, e.agent, e.data, e.ts
		FROM events e JOIN sessions s ON s.chat_id = e.chat_id ORDER BY e.chat_id, e.seq`)
	if err != nil {
		return wrap(err)
	}
	if err := eachRow(rows, func() error {
		var ev store.AppEvent
		var data string
		var ts int64
		if err := rows.Scan(&ev.AppID, &ev.ChatID, &ev.Seq, &ev.Type, &ev.Agent, &data, &ts); err != nil {
			return err
		}
		ev.Data = json.RawMessage(data)
		ev.Timestamp = time.UnixMilli(ts).UTC()
		return sink.Event(ev)
	}); err != nil {
		return err
	}

	rows, err = conn.QueryContext(ctx, `SELECT app_id, user_id, chat_id, workflow, agent, model, prompt_tokens,
		completion_tokens, total_tokens, cost_usd, duration_ms, ts FROM usage_events ORDER BY id`)
	if err != nil {
		return wrap(err)
	}
	return eachRow(rows, func() error {
		var u store.UsageRecord
		var ms, ts int64
		if err := rows.Scan(&u.AppID, &u.UserID, &u.ChatID, &u.Workflow, &u.Agent, &u.Model, &u.PromptTokens,
			&u.CompletionTokens, &u.TotalTokens, &u.CostUSD, &ms, &ts); err != nil {
			return err
		}
		u.Duration = time.Duration(ms) * time.Millisecond
		u.Timestamp = time.UnixMilli(ts).UTC()
		return sink.Usage(u)
	})
}

// eachRow calls fn for every row and closes rows. Errors from fn (the sink's
// included) come back as they are; database errors are wrapped.
func eachRow(rows *sql.Rows, fn func() error) error {
	defer rows.Close()
	for rows.Next() {
		if err := fn(); err != nil {
			return err
		}
	}
	return wrap(rows.Err())
}

// Clear implements store.Importer.
func (s *Store) Clear(ctx context.Context) error {
	return s.write(ctx, func(tx wtx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM events; DELETE FROM usage_events; DELETE FROM sessions;`)
		return wrap(err)
	})
}

// ImportSessions implements store.Importer: the sessions are inserted with
// their counters and totals; their leases are free.
func (s *Store) ImportSessions(ctx context.Context, in []store.Session) error {
	if len(in) == 0 {
		return nil
	}
	return s.write(ctx, func(tx wtx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO sessions (`+sessionCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`)
		if err != nil {
			return wrap(err)
		}
		defer st.Close()
		for _, x := range in {
			if _, err := st.ExecContext(ctx, x.ChatID, x.AppID, x.UserID, x.Workflow, x.Status, x.CreatedAt.UnixMilli(),
				x.UpdatedAt.UnixMilli(), x.LastSeq, x.MessageCount, x.Usage.PromptTokens, x.Usage.CompletionTokens,
				x.Usage.TotalTokens, x.Usage.CostUSD, x.ClientRequestID, nullJSON(x.State), x.PendingKind, x.PendingID,
				nullJSON(x.LastArtifact)); err != nil {
				return fmt.Errorf("import session %s: %w", x.ChatID, wrap(err))
			}
		}
		return nil
	})
}

// ImportEvents implements store.Importer. The app id is not stored: the
// embedded store scopes events through their session.
func (s *Store) ImportEvents(ctx context.Context, in []store.AppEvent) error {
	if len(in) == 0 {
		return nil
	}
	return s.write(ctx, func(tx wtx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO events (chat_id, seq, type, agent, data, ts) VALUES (?,?,?,?,?,?)`)
		if err != nil {
			return wrap(err)
		}
		defer st.Close()
		for _, e := range in {
			data := string(e.Data)
			if data == "" {
				data = "{}"
			}
			if _, err := st.ExecContext(ctx, e.ChatID, e.Seq, e.Type, e.Agent, data, e.Timestamp.UnixMilli()); err != nil {
				return fmt.Errorf("import event %s/%d: %w", e.ChatID, e.Seq, wrap(err))
			}
		}
		return nil
	})
}

// ImportUsage implements store.Importer: records only; the sessions'
// totals came with the sessions.
func (s *Store) ImportUsage(ctx context.Context, in []store.UsageRecord) error {
	if len(in) == 0 {
		return nil
	}
	return s.write(ctx, func(tx wtx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO usage_events (app_id, user_id, chat_id, workflow, agent, model,
			prompt_tokens, completion_tokens, total_tokens, cost_usd, duration_ms, ts) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`)
		if err != nil {
			return wrap(err)
		}
		defer st.Close()
		for _, u := range in {
			if _, err := st.ExecContext(ctx, u.AppID, u.UserID, u.ChatID, u.Workflow, u.Agent, u.Model, u.PromptTokens,
				u.CompletionTokens, u.TotalTokens, u.CostUSD, u.Duration.Milliseconds(), u.Timestamp.UnixMilli()); err != nil {
				return fmt.Errorf("import usage of %s: %w", u.ChatID, wrap(err))
			}
		}
		return nil
	})
}
