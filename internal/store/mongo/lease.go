package mongo

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// AcquireLease implements store.Store with one conditional update: the
// filter admits a free, expired or own lease, so two runners racing for it
// cannot both match.
func (s *Store) AcquireLease(ctx context.Context, appID, chatID, owner string, ttl time.Duration) (bool, error) {
	if err := s.ensureIndexed(ctx); err != nil {
		return false, err
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	res, err := s.sessions.UpdateOne(ctx,
		bson.D{
			{Key: "_id", Value: chatID}, {Key: fApp, Value: appID},
			{Key: "$or", Value: bson.A{
				bson.D{{Key: fLeaseOwn, Value: ""}},
				bson.D{{Key: fLeaseOwn, Value: owner}},
				bson.D{{Key: fLeaseTill, Value: bson.D{{Key: "$lt", Value: now}}}},
			}},
		},
		bson.D{{Key: "$set", Value: bson.D{{Key: fLeaseOwn, Value: owner}, {Key: fLeaseTill, Value: now.Add(ttl)}, {Key: fUpdated, Value: now}}}})
	if err != nil {
		return false, wrap("acquire lease", err)
	}
	if res.MatchedCount == 1 {
		return true, nil
	}
	if _, err := s.GetSession(ctx, appID, chatID); err != nil {
		return false, err
	}
	return false, nil
}

// RenewLease implements store.Store with one conditional update: the
// filter admits only owner's lease, expired or not.
func (s *Store) RenewLease(ctx context.Context, appID, chatID, owner string, ttl time.Duration) (bool, error) {
	if err := s.ensureIndexed(ctx); err != nil {
		return false, err
	}
	if owner != "" {
		now := time.Now().UTC().Truncate(time.Millisecond)
		res, err := s.sessions.UpdateOne(ctx,
			bson.D{{Key: "_id", Value: chatID}, {Key: fApp, Value: appID}, {Key: fLeaseOwn, Value: owner}},
			bson.D{{Key: "$set", Value: bson.D{{Key: fLeaseTill, Value: now.Add(ttl)}, {Key: fUpdated, Value: now}}}})
		if err != nil {
			return false, wrap("renew lease", err)
		}
		if res.MatchedCount == 1 {
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
	if err := s.ensureIndexed(ctx); err != nil {
		return err
	}
	_, err := s.sessions.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: chatID}, {Key: fApp, Value: appID}, {Key: fLeaseOwn, Value: owner}},
		bson.D{{Key: "$set", Value: bson.D{{Key: fLeaseOwn, Value: ""}, {Key: fLeaseTill, Value: noLease}}}})
	return wrap("release lease", err)
}
