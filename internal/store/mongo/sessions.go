package mongo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mozaiks/mozaiks/internal/store"
)

// CreateSession implements store.Store.
//
// With a client_request_id, the session is guarded by a ClientRequests
// document inserted first (its _id is unique, so of two concurrent submits
// exactly one claims it); the loser waits for the winner's session to
// appear and returns it.
func (s *Store) CreateSession(ctx context.Context, in store.Session) (store.Session, bool, error) {
	if err := s.ensureIndexed(ctx); err != nil {
		return store.Session{}, false, err
	}
	now := store.Now()
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
	in.LastSeq, in.MessageCount, in.Usage = 0, 0, store.Usage{}

	var key string
	if in.ClientRequestID != "" {
		key = requestKey(in.AppID, in.UserID, in.Workflow, in.ClientRequestID)
		existing, err := s.claimRequest(ctx, key, in.AppID, in.ChatID, now)
		if err != nil || existing != nil {
			if err != nil {
				return store.Session{}, false, err
			}
			return *existing, false, nil
		}
	}
	release := func() {
		if key != "" {
			// Best effort: a leftover claim expires with the window anyway.
			_, _ = s.requests.DeleteOne(context.WithoutCancel(ctx), bson.D{{Key: "_id", Value: key}, {Key: "chat_id", Value: in.ChatID}})
		}
	}

	_, err := s.sessions.InsertOne(ctx, toSessionDoc(in))
	if err == nil {
		return in, true, nil
	}
	if !mongo.IsDuplicateKeyError(err) {
		release()
		return store.Session{}, false, wrap("create session", err)
	}
	var d sessionDoc
	if err := s.sessions.FindOne(ctx, bson.D{{Key: "_id", Value: in.ChatID}}).Decode(&d); err != nil {
		release()
		return store.Session{}, false, wrap("read existing session", err)
	}
	if d.AppID != in.AppID {
		release()
		return store.Session{}, false, fmt.Errorf("session %s: %w", in.ChatID, store.ErrConflict)
	}
	return d.session(), false, nil
}

// requestKey is the ClientRequests _id: JSON keeps the parts apart
// whatever characters they hold. The workflow is part of it, so a request
// id reused for another workflow never returns the first one's session.
func requestKey(app, user, workflow, req string) string {
	b, _ := json.Marshal([4]string{app, user, workflow, req})
	return string(b)
}

// claimRequest makes chatID the session of the client request key. It
// returns nil when the caller now owns the key (and must create the
// session), or the session another call created for it within the window.
func (s *Store) claimRequest(ctx context.Context, key, appID, chatID string, now time.Time) (*store.Session, error) {
	const poll = 20 * time.Millisecond
	// How long a claim may point at a session that does not exist before we
	// assume its claimant died between its two writes and take it over.
	const orphanAfter = 2 * time.Second
	var waitingFor string
	var waitStart time.Time
	for {
		_, err := s.requests.InsertOne(ctx, requestDoc{Key: key, ChatID: chatID, CreatedAt: now})
		if err == nil {
			return nil, nil
		}
		if !mongo.IsDuplicateKeyError(err) {
			return nil, wrap("claim client request", err)
		}
		var r requestDoc
		err = s.requests.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&r)
		if errors.Is(err, mongo.ErrNoDocuments) {
			continue // released by a failed claimant: try again
		}
		if err != nil {
			return nil, wrap("read client request", err)
		}
		expired := !r.CreatedAt.After(now.Add(-store.IdempotencyWindow))
		if !expired {
			got, err := s.GetSession(ctx, appID, r.ChatID)
			if err == nil {
				return &got, nil
			}
			if !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
			if r.ChatID != waitingFor {
				waitingFor, waitStart = r.ChatID, time.Now()
			}
		}
		if expired || time.Since(waitStart) > orphanAfter {
			// Compare-and-swap on the claim we read, so two takers cannot both win.
			res, err := s.requests.UpdateOne(ctx,
				bson.D{{Key: "_id", Value: key}, {Key: "chat_id", Value: r.ChatID}, {Key: "created_at", Value: r.CreatedAt}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "chat_id", Value: chatID}, {Key: "created_at", Value: now}}}})
			if err != nil {
				return nil, wrap("take over client request", err)
			}
			if res.MatchedCount == 1 {
				return nil, nil
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for session %s of client request: %w", r.ChatID, ctx.Err())
		case <-time.After(poll):
		}
	}
}

// GetSession implements store.Store.
func (s *Store) GetSession(ctx context.Context, appID, chatID string) (store.Session, error) {
	if err := s.ensureIndexed(ctx); err != nil {
		return store.Session{}, err
	}
	// Filter on _id alone and check the app here: the same single index
	// lookup on MongoDB, and the only filter FerretDB v1 pushes down to
	// SQLite instead of scanning the collection. A session's app never
	// changes, so this is as tight as filtering on it.
	var d sessionDoc
	err := s.sessions.FindOne(ctx, bson.D{{Key: "_id", Value: chatID}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) || (err == nil && d.AppID != appID) {
		return store.Session{}, store.ErrNotFound
	}
	if err != nil {
		return store.Session{}, wrap("get session", err)
	}
	return d.session(), nil
}

// ListSessions implements store.Store.
func (s *Store) ListSessions(ctx context.Context, q store.ListQuery) ([]store.Session, string, error) {
	limit := q.Limit
	if limit <= 0 || limit > store.MaxListLimit {
		limit = store.MaxListLimit
	}
	filter := bson.D{{Key: fApp, Value: q.AppID}, {Key: fUser, Value: q.UserID}}
	if q.Status != "" {
		filter = append(filter, bson.E{Key: fStatus, Value: q.Status})
	}
	if q.Workflow != "" {
		filter = append(filter, bson.E{Key: fWorkflow, Value: q.Workflow})
	}
	if q.Cursor != "" {
		at, id, err := store.DecodeCursor(q.Cursor)
		if err != nil {
			return nil, "", err
		}
		filter = append(filter, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: fCreated, Value: bson.D{{Key: "$lt", Value: at}}}},
			bson.D{{Key: fCreated, Value: at}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: id}}}},
		}})
	}
	if err := s.ensureIndexed(ctx); err != nil {
		return nil, "", err
	}
	cur, err := s.sessions.Find(ctx, filter, options.Find().
		SetSort(bson.D{{Key: fCreated, Value: -1}, {Key: "_id", Value: -1}}).
		SetLimit(int64(limit+1)))
	if err != nil {
		return nil, "", wrap("list sessions", err)
	}
	var docs []sessionDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, "", wrap("list sessions", err)
	}
	out := make([]store.Session, 0, len(docs))
	for _, d := range docs {
		out = append(out, d.session())
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
	now := store.Now()
	if err := s.ensureIndexed(ctx); err != nil {
		return err
	}
	filter := fenced(bson.D{{Key: "_id", Value: chatID}, {Key: fApp, Value: appID}}, u)
	if cond, rest, ok := statusIf(filter, u); ok {
		res, err := s.sessions.UpdateOne(ctx, cond, bson.D{{Key: "$set", Value: updateSet(bson.D{{Key: fUpdated, Value: now}}, u)}})
		if err != nil {
			return wrap("update session", err)
		}
		if res.MatchedCount == 1 {
			return nil
		}
		u = rest
	}
	res, err := s.sessions.UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: updateSet(bson.D{{Key: fUpdated, Value: now}}, u)}})
	if err != nil {
		return wrap("update session", err)
	}
	if res.MatchedCount == 0 {
		return s.missed(ctx, appID, chatID, u)
	}
	return nil
}

// statusIf carries out u's status condition (SessionUpdate.StatusUnlessAfter)
// in two steps, each one atomic write: the update with its status where the
// filter and the condition match (cond), else the update without its status
// (rest) where the filter alone does. A failed condition stays failed:
// last_seq only grows. ok is false when u has no condition.
func statusIf(filter bson.D, u store.SessionUpdate) (cond bson.D, rest store.SessionUpdate, ok bool) {
	if u.Status == nil || u.StatusUnlessAfter == nil {
		return filter, u, false
	}
	rest = u
	rest.Status, rest.StatusUnlessAfter = nil, nil
	cond = append(slices.Clip(filter), bson.E{Key: fLastSeq, Value: bson.D{{Key: "$lte", Value: *u.StatusUnlessAfter}}})
	return cond, rest, true
}

// fenced adds u's lease fence to a session filter.
func fenced(filter bson.D, u store.SessionUpdate) bson.D {
	if u.Fence != "" {
		filter = append(filter, bson.E{Key: fLeaseOwn, Value: u.Fence})
	}
	return filter
}

// missed says why a session filter matched nothing: ErrFenced when the
// session exists and u was fenced, else ErrNotFound.
func (s *Store) missed(ctx context.Context, appID, chatID string, u store.SessionUpdate) error {
	if u.Fence == "" {
		return store.ErrNotFound
	}
	if _, err := s.GetSession(ctx, appID, chatID); err != nil {
		return err
	}
	return store.ErrFenced
}

// updateSet adds u's fields to a $set document.
func updateSet(set bson.D, u store.SessionUpdate) bson.D {
	if u.Status != nil {
		set = append(set, bson.E{Key: fStatus, Value: *u.Status})
	}
	if u.State != nil {
		set = append(set, bson.E{Key: fState, Value: string(u.State)})
	}
	if u.PendingKind != nil {
		set = append(set, bson.E{Key: fPendKind, Value: *u.PendingKind})
	}
	if u.PendingID != nil {
		set = append(set, bson.E{Key: fPendID, Value: *u.PendingID})
	}
	if u.LastArtifact != nil {
		set = append(set, bson.E{Key: fArtifact, Value: string(u.LastArtifact)})
	}
	return set
}

// ListUnfinished implements store.Store.
func (s *Store) ListUnfinished(ctx context.Context, limit int) ([]store.Session, error) {
	if limit <= 0 {
		limit = 1000
	}
	if err := s.ensureIndexed(ctx); err != nil {
		return nil, err
	}
	cur, err := s.sessions.Find(ctx, bson.D{{Key: fStatus, Value: store.StatusInProgress}},
		options.Find().SetSort(bson.D{{Key: fUpdated, Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, wrap("list unfinished sessions", err)
	}
	var docs []sessionDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, wrap("list unfinished sessions", err)
	}
	out := make([]store.Session, len(docs))
	for i, d := range docs {
		out[i] = d.session()
	}
	return out, nil
}

// FindPending implements store.Store.
func (s *Store) FindPending(ctx context.Context, appID, pendingID string) (store.Session, error) {
	if pendingID == "" {
		return store.Session{}, store.ErrNotFound
	}
	if err := s.ensureIndexed(ctx); err != nil {
		return store.Session{}, err
	}
	var d sessionDoc
	err := s.sessions.FindOne(ctx, bson.D{{Key: fApp, Value: appID}, {Key: fPendID, Value: pendingID}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return store.Session{}, store.ErrNotFound
	}
	if err != nil {
		return store.Session{}, wrap("find pending session", err)
	}
	return d.session(), nil
}
