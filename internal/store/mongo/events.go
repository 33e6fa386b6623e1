package mongo

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mozaiks/mozaiks/internal/store"
)

// gapGrace is how long ListEvents treats a missing seq as an append still in
// flight (its seq taken, its insert not yet landed) before it marks it lost.
const gapGrace = 5 * time.Second

// AppendEvent implements store.Store: one atomic $inc on the session takes
// the seq, then the event is inserted under it. If the insert fails the seq
// stays used (a gap), which readers mark lost once the event after it is
// gapGrace old; an insert that finds its seq marked takes another.
//
// The unique (chat_id, seq) index is the final arbiter: FerretDB v1 runs
// findAndModify as a read and a separate write, so two concurrent $inc can
// hand out the same seq (and the counter can even step back). The loser's
// insert fails with a duplicate key and it takes another seq. On MongoDB the
// $inc is atomic and the retry only heals a counter behind its events.
func (s *Store) AppendEvent(ctx context.Context, appID, chatID string, ev store.Event, message bool) (store.Event, error) {
	return s.AppendEventUpdate(ctx, appID, chatID, ev, message, store.SessionUpdate{})
}

// AppendEventUpdate implements store.Store: u is applied by the same
// findAndModify that takes the seq.
func (s *Store) AppendEventUpdate(ctx context.Context, appID, chatID string, ev store.Event, message bool, u store.SessionUpdate) (store.Event, error) {
	if ev.Timestamp.IsZero() {
		ev.Timestamp = store.Now()
	}
	ev.Timestamp = ev.Timestamp.UTC().Truncate(time.Millisecond)
	if len(ev.Data) == 0 {
		ev.Data = json.RawMessage(`{}`)
	}
	if err := s.ensureIndexed(ctx); err != nil {
		return store.Event{}, err
	}
	ev.ChatID = chatID
	for attempt := 1; ; attempt++ {
		seq, err := s.nextSeq(ctx, appID, chatID, message && attempt == 1, ev.Timestamp, u)
		if err != nil {
			return store.Event{}, err
		}
		ev.Seq = seq
		doc := eventDoc{ChatID: chatID, AppID: appID, Seq: ev.Seq, Type: ev.Type,
			Agent: ev.Agent, Data: string(ev.Data), Timestamp: ev.Timestamp}
		_, err = s.events.InsertOne(ctx, doc)
		if err == nil {
			return ev, nil
		}
		taken := mongo.IsDuplicateKeyError(err)
		if unavailable(err) {
			switch s.landed(ctx, doc) {
			case settledOurs:
				return ev, nil
			case settledTaken:
				// Another event holds the seq: ours is not stored anywhere,
				// so it takes another, in a time of its own (the caller's
				// ran out waiting on the insert).
				taken = true
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
				defer cancel()
				ctx = sctx
			}
		}
		if !taken || attempt == maxSeqAttempts {
			return store.Event{}, wrap("insert event", err)
		}
		// Spread the losers out so they stop colliding with each other.
		select {
		case <-ctx.Done():
			return store.Event{}, ctx.Err()
		case <-time.After(time.Duration(rand.Int64N(int64(attempt)*int64(time.Millisecond)) + 1)):
		}
	}
}

// landed settles an insert whose outcome is unknown (it timed out, or the
// connection dropped, after the request may have reached the server): it
// marks the seq lost, so an insert still in flight can no longer land, and
// reports whether the event (ours) was there first. Without it, a message the
// database took after the client gave up was reported "not stored" (and
// sent again by its user) while it was stored and answered. If the mark
// fails too, the outcome stays unknown and the insert is reported failed.
//
// The event found at the seq must be ours: a server whose counter update
// is not atomic (FerretDB v1 under load was seen to hand a seq out twice)
// may have stored another writer's event there, and taking it for ours lost
// ours (a run_start "stored" at a seq that held another run's usage_delta,
// its reply then stored without it and answered twice). Then the seq is
// settledTaken and the caller takes another.
func (s *Store) landed(ctx context.Context, doc eventDoc) settled {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	_, docs, err := s.markLost(ctx, doc.AppID, doc.ChatID, doc.Seq, doc.Seq)
	switch {
	case err != nil || len(docs) != 1:
		return settledLost
	case docs[0].Type == doc.Type && docs[0].Agent == doc.Agent && docs[0].Data == doc.Data &&
		docs[0].Timestamp.Equal(doc.Timestamp):
		return settledOurs
	default:
		return settledTaken
	}
}

// settled is what landed found at an insert's seq.
type settled int

const (
	settledLost  settled = iota // marked lost (or unknown): the insert failed
	settledOurs                 // the insert landed
	settledTaken                // another event holds the seq
)

// settleTimeout bounds landed's mark.
const settleTimeout = 5 * time.Second

// maxSeqAttempts bounds AppendEvent's retries on a taken seq; each failure
// means another append succeeded, so only extreme contention reaches it.
const maxSeqAttempts = 200

// nextSeq bumps the chat's counter (and message count) and returns it.
func (s *Store) nextSeq(ctx context.Context, appID, chatID string, message bool, at time.Time, u store.SessionUpdate) (int64, error) {
	var inc int64
	if message {
		inc = 1
	}
	var d struct {
		LastSeq int64 `bson:"last_sequence"`
	}
	take := func(filter bson.D, u store.SessionUpdate) error {
		return s.sessions.FindOneAndUpdate(ctx, filter,
			bson.D{
				{Key: "$inc", Value: bson.D{{Key: fLastSeq, Value: int64(1)}, {Key: fMessages, Value: inc}}},
				{Key: "$set", Value: updateSet(bson.D{{Key: fUpdated, Value: at}}, u)},
			},
			// No projection: FerretDB v1 does not implement findAndModify's "fields".
			options.FindOneAndUpdate().SetReturnDocument(options.After),
		).Decode(&d)
	}
	filter := fenced(bson.D{{Key: "_id", Value: chatID}, {Key: fApp, Value: appID}}, u)
	var err error
	if cond, rest, ok := statusIf(filter, u); ok {
		// The status only if no event was stored after the given seq.
		if err = take(cond, u); errors.Is(err, mongo.ErrNoDocuments) {
			err = take(filter, rest)
		}
	} else {
		err = take(filter, u)
	}
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, s.missed(ctx, appID, chatID, u)
	}
	if err != nil {
		return 0, wrap("take event seq", err)
	}
	return d.LastSeq, nil
}

// ListEvents implements store.Store.
//
// Concurrent appends may land out of order (seq 5 stored before seq 4). A
// reader that got 5 and then asked for "after 5" would never see 4, so the
// page stops before a missing seq while the event after it is recent. Once
// that event is gapGrace old, the missing seq is marked lost (a GapType
// event) rather than skipped: the unique (chat_id, seq) index then decides
// between the reader and an insert still in flight (a writer stalled that
// long). If the insert won, its event is read; if the mark won, the insert
// fails and its writer takes another seq (a run whose lease another replica
// holds by then is fenced off). Skipping instead let a slow insert land
// behind a reader that had passed it: a recovery that never saw a reply
// already stored asked the model again (seen on FerretDB under load).
func (s *Store) ListEvents(ctx context.Context, appID, chatID string, afterSeq int64, limit int) ([]store.Event, error) {
	if limit <= 0 {
		limit = 1000
	}
	if err := s.ensureIndexed(ctx); err != nil {
		return nil, err
	}
	cur, err := s.events.Find(ctx,
		bson.D{{Key: "chat_id", Value: chatID}, {Key: fApp, Value: appID}, {Key: "seq", Value: bson.D{{Key: "$gt", Value: afterSeq}}}},
		options.Find().SetSort(bson.D{{Key: "seq", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, wrap("list events", err)
	}
	var docs []eventDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, wrap("list events", err)
	}
	out := make([]store.Event, 0, len(docs))
	want := afterSeq + 1
	for _, d := range docs {
		if d.Seq != want {
			if time.Since(d.Timestamp) < gapGrace {
				break
			}
			_, landed, err := s.markLost(ctx, appID, chatID, want, d.Seq-1)
			if err != nil {
				return out, err
			}
			for _, l := range landed {
				out = append(out, l.event())
			}
		}
		if d.Type != store.GapType {
			out = append(out, d.event())
		}
		want = d.Seq + 1
	}
	return out, nil
}

// markLost stores a GapType event under each seq from first to last, and
// returns how many it stored and the events that were stored under the
// others meanwhile (their inserts won).
func (s *Store) markLost(ctx context.Context, appID, chatID string, first, last int64) (marked int, landed []eventDoc, err error) {
	now := store.Now().UTC().Truncate(time.Millisecond)
	for seq := first; seq <= last; seq++ {
		_, err := s.events.InsertOne(ctx, eventDoc{ChatID: chatID, AppID: appID, Seq: seq, Type: store.GapType, Data: "{}", Timestamp: now})
		if err == nil {
			marked++
			continue
		}
		if !mongo.IsDuplicateKeyError(err) {
			return marked, landed, wrap("mark lost seq", err)
		}
		var d eventDoc
		if err := s.events.FindOne(ctx, bson.D{{Key: "chat_id", Value: chatID}, {Key: fApp, Value: appID}, {Key: "seq", Value: seq}}).Decode(&d); err != nil {
			return marked, landed, wrap("read landed event", err)
		}
		if d.Type != store.GapType {
			landed = append(landed, d)
		}
	}
	return marked, landed, nil
}

// FillGaps implements store.GapFiller.
func (s *Store) FillGaps(ctx context.Context, appID, chatID string, upTo int64) (int, error) {
	if err := s.ensureIndexed(ctx); err != nil {
		return 0, err
	}
	cur, err := s.events.Find(ctx, bson.D{{Key: "chat_id", Value: chatID}, {Key: fApp, Value: appID},
		{Key: "seq", Value: bson.D{{Key: "$lte", Value: upTo}}}})
	if err != nil {
		return 0, wrap("find gaps", err)
	}
	var docs []eventDoc
	if err := cur.All(ctx, &docs); err != nil {
		return 0, wrap("find gaps", err)
	}
	have := make(map[int64]bool, len(docs))
	for _, d := range docs {
		have[d.Seq] = true
	}
	filled := 0
	for seq := int64(1); seq <= upTo; seq++ {
		if have[seq] {
			continue
		}
		// One stored meanwhile (an append that was in flight) is kept.
		n, _, err := s.markLost(ctx, appID, chatID, seq, seq)
		filled += n
		if err != nil {
			return filled, err
		}
	}
	return filled, nil
}
