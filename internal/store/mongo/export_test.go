package mongo

import (
	"context"
	"time"

	"github.com/mozaiks/mozaiks/internal/store"
)

// MarkLost exposes markLost to the tests: the events it found landed.
func (s *Store) MarkLost(ctx context.Context, appID, chatID string, first, last int64) ([]store.Event, error) {
	_, docs, err := s.markLost(ctx, appID, chatID, first, last)
	out := make([]store.Event, len(docs))
	for i, d := range docs {
		out[i] = d.event()
	}
	return out, err
}

// InsertAt stores an event at seq without taking it from the chat's counter:
// another writer handed the same seq (as a server whose counter update is
// not atomic may do).
func (s *Store) InsertAt(ctx context.Context, appID, chatID string, seq int64, typ string) error {
	_, err := s.events.InsertOne(ctx, eventDoc{ChatID: chatID, AppID: appID, Seq: seq, Type: typ, Data: "{}",
		Timestamp: store.Now().UTC().Truncate(time.Millisecond)})
	return err
}
