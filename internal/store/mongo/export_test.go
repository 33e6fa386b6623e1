package mongo

import (
	"context"

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
