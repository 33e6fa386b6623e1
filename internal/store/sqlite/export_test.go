package sqlite

import "context"

// SeedEvents fills a chat with n events inside SQLite in one statement, as
// if they had been appended: large-chat tests then need not pay n appends
// (25x slower under the race detector).
func (s *Store) SeedEvents(ctx context.Context, appID, chatID string, n int) error {
	_, err := s.w.ExecContext(ctx, `
		WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?)
		INSERT INTO events (chat_id, seq, type, agent, data, ts)
		SELECT ?, i, 'chat.text', 'A', '{"content":"message"}', 0 FROM seq`, n, chatID)
	if err != nil {
		return err
	}
	_, err = s.w.ExecContext(ctx, `UPDATE sessions SET last_seq = ?, message_count = ? WHERE chat_id = ? AND app_id = ?`, n, n, chatID, appID)
	return err
}

// Commits is the number of transactions the writer has run.
func (s *Store) Commits() int64 { return s.commits.Load() }
