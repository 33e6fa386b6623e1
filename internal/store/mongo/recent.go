package mongo

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mozaiks/mozaiks/internal/store"
)

// RecentSessions lists the app's most recently updated sessions of every
// user, newest first. Only the operator view (auth off, or an admin token)
// calls it: every other read is scoped to one user.
func (s *Store) RecentSessions(ctx context.Context, appID string, limit int) ([]store.Session, error) {
	if limit <= 0 || limit > store.MaxListLimit {
		limit = store.MaxListLimit
	}
	if err := s.ensureIndexed(ctx); err != nil {
		return nil, err
	}
	cur, err := s.sessions.Find(ctx, bson.D{{Key: fApp, Value: appID}}, options.Find().
		SetSort(bson.D{{Key: fUpdated, Value: -1}, {Key: "_id", Value: -1}}).
		SetLimit(int64(limit)))
	if err != nil {
		return nil, wrap("list recent sessions", err)
	}
	var docs []sessionDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, wrap("list recent sessions", err)
	}
	out := make([]store.Session, 0, len(docs))
	for _, d := range docs {
		out = append(out, d.session())
	}
	return out, nil
}
