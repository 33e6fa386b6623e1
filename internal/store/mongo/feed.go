package mongo

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mozaiks/mozaiks/internal/store"
)

// RelayCollection holds the transient frames (streamed chunks) replicas
// announce to each other. It is a plain collection, not capped and without a
// TTL index, because FerretDB has neither: every replica deletes old frames
// itself (PurgeTransients), and readers find new ones by (origin, n).
const RelayCollection = "ChatRelay"

var _ store.Feed = (*Store)(nil)

// transientDoc is a ChatRelay document: the frames one origin wrote for one
// chat in one batch (a streaming chat makes several between two writes, and
// fewer documents are fewer to scan and to purge). N is the last frame's
// number, Ns all of them. _id is origin/first number, so a retried insert
// cannot store frames twice.
type transientDoc struct {
	ID     string    `bson:"_id"`
	Origin string    `bson:"origin"`
	N      int64     `bson:"n"`
	Ns     []int64   `bson:"ns"`
	AppID  string    `bson:"app_id"`
	ChatID string    `bson:"chat_id"`
	At     time.Time `bson:"at"`
	Frames []string  `bson:"frames"`
}

// peerDoc is a ChatRelay document saying a replica is alive, and which
// chats it has sockets on (others write it chunks of those only); it has no
// chat_id, so no frame query finds it.
type peerDoc struct {
	ID       string    `bson:"_id"`
	Kind     string    `bson:"kind"`
	Origin   string    `bson:"origin"`
	At       time.Time `bson:"at"`
	Watching []string  `bson:"watching"`
}

func (s *Store) relay() *mongo.Collection { return s.db.Collection(RelayCollection) }

// EnsureFeedIndexes creates the relay collection's indexes (idempotent).
func (s *Store) EnsureFeedIndexes(ctx context.Context) error {
	for _, m := range []mongo.IndexModel{
		{Keys: bson.D{{Key: "origin", Value: 1}, {Key: "n", Value: 1}}, Options: options.Index().SetName("origin_n")},
		{Keys: bson.D{{Key: "at", Value: 1}}, Options: options.Index().SetName("at")},
	} {
		if _, err := s.relay().Indexes().CreateOne(ctx, m); err != nil {
			return wrap("create indexes on "+RelayCollection, err)
		}
	}
	return nil
}

// ChangeStreams says whether the server supports change streams: a replica
// set member or a mongos (Atlas is either). A standalone server, and
// FerretDB, do not.
func (s *Store) ChangeStreams(ctx context.Context) (bool, error) {
	var hello struct {
		SetName string `bson:"setName"`
		Msg     string `bson:"msg"`
	}
	if err := s.client.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello); err != nil {
		return false, wrap("hello", err)
	}
	return hello.SetName != "" || hello.Msg == "isdbgrid", nil
}

// TailEvents implements store.Feed: one find with a clause per chat, which
// MongoDB answers from the (chat_id, seq) index.
func (s *Store) TailEvents(ctx context.Context, chats []store.ChatCursor, limit int) ([]store.Event, error) {
	if len(chats) == 0 {
		return nil, nil
	}
	or := make(bson.A, 0, len(chats))
	for _, c := range chats {
		or = append(or, bson.D{{Key: "chat_id", Value: c.ChatID}, {Key: fApp, Value: c.AppID},
			{Key: "seq", Value: bson.D{{Key: "$gt", Value: c.After}}}})
	}
	filter := bson.D{{Key: "$or", Value: or}}
	if len(or) == 1 {
		filter = or[0].(bson.D)
	}
	cur, err := s.events.Find(ctx, filter,
		options.Find().SetSort(bson.D{{Key: "chat_id", Value: 1}, {Key: "seq", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, wrap("tail events", err)
	}
	var docs []eventDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, wrap("tail events", err)
	}
	out := make([]store.Event, len(docs))
	for i, d := range docs {
		out[i] = d.event()
	}
	return out, nil
}

// PutTransients implements store.Feed with one ordered insert: each run of
// consecutive frames of one chat becomes one document (callers group a
// batch by chat), so a streaming chat costs a document per write, not per
// chunk. A batch already stored (a retry) is not an error.
func (s *Store) PutTransients(ctx context.Context, frames []store.Transient) error {
	if len(frames) == 0 {
		return nil
	}
	var docs []any
	var d *transientDoc
	for _, f := range frames {
		if d == nil || d.ChatID != f.ChatID || d.Origin != f.Origin {
			d = &transientDoc{ID: f.Origin + "/" + strconv.FormatInt(f.N, 10), Origin: f.Origin, AppID: f.AppID,
				ChatID: f.ChatID, At: f.At.UTC().Truncate(time.Millisecond)}
			docs = append(docs, d)
		}
		d.N = f.N
		d.Ns = append(d.Ns, f.N)
		d.Frames = append(d.Frames, string(f.Frame))
	}
	_, err := s.relay().InsertMany(ctx, docs, options.InsertMany().SetOrdered(true))
	if err != nil && !mongo.IsDuplicateKeyError(err) {
		return wrap("put transient frames", err)
	}
	return nil
}

// TailTransients implements store.Feed.
func (s *Store) TailTransients(ctx context.Context, q store.TransientQuery) ([]store.Transient, error) {
	if len(q.Chats) == 0 {
		return nil, nil
	}
	ids := make(bson.A, 0, len(q.Chats))
	for _, c := range q.Chats {
		ids = append(ids, c.ChatID)
	}
	// Each branch of the $or is planned on its own: (origin, n > seen) is a
	// seek in the origin_n index and the catch-all for new origins one in
	// the at index, so a poll reads only frames it has not seen.
	known := slices.Sorted(maps.Keys(q.Seen))
	inChats := bson.E{Key: "chat_id", Value: bson.D{{Key: "$in", Value: ids}}}
	or := make(bson.A, 0, len(known)+1)
	for _, o := range known {
		or = append(or, bson.D{{Key: "origin", Value: o}, {Key: "n", Value: bson.D{{Key: "$gt", Value: q.Seen[o]}}}, inChats})
	}
	or = append(or, bson.D{{Key: "at", Value: bson.D{{Key: "$gt", Value: q.Since.UTC()}}},
		{Key: "origin", Value: bson.D{{Key: "$nin", Value: append(bson.A{q.Exclude}, toA(known)...)}}}, inChats})
	filter := bson.D{{Key: "$or", Value: or}}
	fo := options.Find().SetSort(bson.D{{Key: "origin", Value: 1}, {Key: "n", Value: 1}})
	if q.Limit > 0 {
		fo.SetLimit(int64(q.Limit))
	}
	cur, err := s.relay().Find(ctx, filter, fo)
	if err != nil {
		return nil, wrap("tail transient frames", err)
	}
	var docs []transientDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, wrap("tail transient frames", err)
	}
	var out []store.Transient
	for _, d := range docs {
		if d.Origin == q.Exclude || len(d.Ns) != len(d.Frames) {
			continue
		}
		for i, f := range d.Frames {
			out = append(out, store.Transient{Origin: d.Origin, N: d.Ns[i], AppID: d.AppID, ChatID: d.ChatID,
				At: d.At.UTC(), Frame: []byte(f)})
		}
	}
	// Readers want each origin's frames in the order they were numbered.
	slices.SortStableFunc(out, func(a, b store.Transient) int {
		return cmp.Or(strings.Compare(a.Origin, b.Origin), cmp.Compare(a.N, b.N))
	})
	return out, nil
}

// PurgeTransients implements store.Feed.
func (s *Store) PurgeTransients(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.relay().DeleteMany(ctx, bson.D{{Key: "at", Value: bson.D{{Key: "$lt", Value: cutoff.UTC()}}}})
	if err != nil {
		return 0, wrap("purge transient frames", err)
	}
	return res.DeletedCount, nil
}

// Announce implements store.Feed.
func (s *Store) Announce(ctx context.Context, origin string, watching []string, now, since time.Time) ([]store.Peer, error) {
	_, err := s.relay().ReplaceOne(ctx, bson.D{{Key: "_id", Value: "peer/" + origin}},
		peerDoc{ID: "peer/" + origin, Kind: "peer", Origin: origin, At: now.UTC().Truncate(time.Millisecond), Watching: watching},
		options.Replace().SetUpsert(true))
	if err != nil {
		return nil, wrap("announce replica", err)
	}
	return s.Peers(ctx, origin, since)
}

// Peers implements store.Feed.
func (s *Store) Peers(ctx context.Context, origin string, since time.Time) ([]store.Peer, error) {
	cur, err := s.relay().Find(ctx, bson.D{{Key: "kind", Value: "peer"}, {Key: "origin", Value: bson.D{{Key: "$ne", Value: origin}}},
		{Key: "at", Value: bson.D{{Key: "$gt", Value: since.UTC()}}}},
		options.Find().SetProjection(bson.D{{Key: "origin", Value: 1}, {Key: "watching", Value: 1}}))
	if err != nil {
		return nil, wrap("read replicas", err)
	}
	var docs []peerDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, wrap("read replicas", err)
	}
	out := make([]store.Peer, len(docs))
	for i, d := range docs {
		out[i] = store.Peer{Origin: d.Origin, Watching: d.Watching}
	}
	return out, nil
}

func toA(ss []string) bson.A {
	a := make(bson.A, len(ss))
	for i, s := range ss {
		a[i] = s
	}
	return a
}
