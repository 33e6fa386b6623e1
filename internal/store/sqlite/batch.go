package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/mozaiks/mozaiks/internal/store"
)

var _ store.Batcher = (*Store)(nil)

// WriteBatch implements store.Batcher in one transaction: the batch's
// session updates are folded into one UPDATE that takes all its seqs at once
// (inside a transaction that is what applying them one by one leaves), then
// each event is inserted and each usage record added.
func (s *Store) WriteBatch(ctx context.Context, appID, chatID string, ws []store.Write) ([]store.Event, error) {
	now := store.Now().UTC().Truncate(time.Millisecond)
	var u store.SessionUpdate
	var usage store.UsageRecord // the batch's usage records, summed
	events, messages, usages := 0, 0, 0
	for i := range ws {
		w := &ws[i]
		u.Fold(w.Update)
		if w.Usage != nil {
			usages++
			usage.PromptTokens += w.Usage.PromptTokens
			usage.CompletionTokens += w.Usage.CompletionTokens
			usage.TotalTokens += w.Usage.TotalTokens
			usage.CostUSD += w.Usage.CostUSD
		}
		if w.Event == nil {
			continue
		}
		events++
		if w.Message {
			messages++
		}
		if w.Event.Timestamp.IsZero() {
			w.Event.Timestamp = now
		}
		w.Event.Timestamp = w.Event.Timestamp.UTC().Truncate(time.Millisecond)
		if len(w.Event.Data) == 0 {
			w.Event.Data = json.RawMessage(`{}`)
		}
	}
	out := make([]store.Event, 0, events)
	err := s.write(ctx, func(tx wtx) error {
		out = out[:0]
		var last int64
		// With events, the session's one UPDATE adds the usage totals too.
		folded := events > 0 && usages > 0
		if events > 0 {
			q, args := qAppendEvents, []any{events, messages, now.UnixMilli()}
			if folded {
				q, args = qAppendEventsUsage, append(args, usage.PromptTokens, usage.CompletionTokens, usage.TotalTokens, usage.CostUSD)
			}
			err := tx.QueryRowContext(ctx, q, whereArgs(updateArgs(args, u), chatID, appID, u)...).Scan(&last)
			if errors.Is(err, sql.ErrNoRows) {
				return missed(ctx, tx, chatID, appID, u)
			}
			if err != nil {
				return wrap(err)
			}
		} else {
			res, err := tx.ExecContext(ctx, qUpdateSession, whereArgs(updateArgs([]any{now.UnixMilli()}, u), chatID, appID, u)...)
			if err := affected(res, err); errors.Is(err, store.ErrNotFound) {
				return missed(ctx, tx, chatID, appID, u)
			} else if err != nil {
				return err
			}
		}
		seq := last - int64(events)
		for _, w := range ws {
			if w.Event != nil {
				seq++
				ev := *w.Event
				ev.ChatID, ev.Seq = chatID, seq
				if _, err := tx.ExecContext(ctx, qInsertEvent, chatID, ev.Seq, ev.Type, ev.Agent, string(ev.Data),
					ev.Timestamp.UnixMilli()); err != nil {
					return wrap(err)
				}
				out = append(out, ev)
			}
			if w.Usage != nil {
				rec := *w.Usage
				rec.AppID, rec.ChatID = appID, chatID
				if rec.Timestamp.IsZero() {
					rec.Timestamp = now
				}
				record := recordUsage
				if folded {
					record = insertUsage
				}
				if err := record(ctx, tx, rec); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
