package sqlite

import (
	"context"

	"github.com/mozaiks/mozaiks/internal/store"
)

// RecentSessions lists the app's most recently updated sessions of every
// user, newest first. Only the operator view (auth off, or an admin token)
// calls it: every other read is scoped to one user.
func (s *Store) RecentSessions(ctx context.Context, appID string, limit int) ([]store.Session, error) {
	if limit <= 0 || limit > store.MaxListLimit {
		limit = store.MaxListLimit
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+sessionCols+` FROM sessions WHERE app_id = ?`+
		` ORDER BY updated_at DESC, chat_id DESC LIMIT ?`, appID, limit)
	if err != nil {
		return nil, wrap(err)
	}
	return scanSessions(rows)
}
