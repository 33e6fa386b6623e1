// Package mongo is the production store: the store contract on MongoDB 5.0+
// through the official driver, using only what FerretDB v1 also supports
// (no transactions, change streams, TTL or partial indexes, arrayFilters,
// positional $, $lookup, $facet), so the same code runs against FerretDB in
// tests.
//
// Collections: ChatSessions (_id = chat_id), ChatEvents (one document per
// event, unique (chat_id, seq), so a transcript is not bounded by the 16 MB
// document limit), UsageEvents (one document per LLM call) and
// ClientRequests (one document per (app, user, client_request_id), the
// double-submit guard).
//
// Without transactions, every write is a single-document atomic operation:
// the seq counter is a $inc on the session (findOneAndUpdate, returning the
// new value), then the event is inserted with that seq.
//
// FerretDB v1 (SQLite) is weaker than that: it runs every update and
// findAndModify as a read followed by a whole-document write back by _id, so
// concurrent updates of one document lose each other's changes there. The
// store copes: updates of one session are serialised in-process (chatLocks),
// the unique (chat_id, seq) index rejects a duplicate seq (AppendEvent then
// takes another), and client_request_id claims are inserts with a unique
// _id. What remains FerretDB-unsafe is two processes updating one session at
// once: there, lease exclusivity, usage totals and message counts hold on
// MongoDB only.
//
// JSON payloads (engine state, event data, last artifact) are stored as
// BSON strings holding the JSON text, not as BSON documents: that is the only
// encoding that hands back exactly what was stored (integers beyond int64,
// 1.0 versus 1, key order, keys starting with "$" or containing "." that
// MongoDB or FerretDB refuse as field names).
//
// The driver connects lazily, so Open succeeds with the database down; the
// store then answers store.ErrUnavailable until the database is back and
// creates its indexes on the first call that reaches it.
package mongo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/mozaiks/mozaiks/internal/store"
)

// Collection names.
const (
	SessionsCollection = "ChatSessions"
	EventsCollection   = "ChatEvents"
	UsageCollection    = "UsageEvents"
	RequestsCollection = "ClientRequests"
)

// DefaultServerSelectionTimeout bounds how long a call waits for an
// unreachable database before failing with store.ErrUnavailable.
const DefaultServerSelectionTimeout = 3 * time.Second

// Options tunes Open; the zero value is fine.
type Options struct {
	// Database overrides the database named in the URI path (default MozaiksAI).
	Database string
	// ServerSelectionTimeout: see DefaultServerSelectionTimeout.
	ServerSelectionTimeout time.Duration
	// Logger receives degraded-mode warnings (nil: slog.Default()).
	Logger *slog.Logger
}

// Store is the MongoDB store.
type Store struct {
	client   *mongo.Client
	db       *mongo.Database
	sessions *mongo.Collection
	events   *mongo.Collection
	usage    *mongo.Collection
	requests *mongo.Collection
	log      *slog.Logger

	indexed  atomic.Bool
	indexing sync.Mutex
}

var _ store.Store = (*Store)(nil)

// Open connects to uri. It fails only on a malformed URI or options; an
// unreachable server leaves the store degraded (calls fail with
// store.ErrUnavailable) until it answers. When the server answers now, the
// indexes are created before Open returns.
func Open(ctx context.Context, uri string, opts Options) (*Store, error) {
	if opts.ServerSelectionTimeout <= 0 {
		opts.ServerSelectionTimeout = DefaultServerSelectionTimeout
	}
	if opts.Database == "" {
		opts.Database = DatabaseName(uri)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	co := options.Client().ApplyURI(uri).
		SetAppName("mozaiks").
		SetServerSelectionTimeout(opts.ServerSelectionTimeout).
		SetConnectTimeout(opts.ServerSelectionTimeout)
	if err := co.Validate(); err != nil {
		return nil, connectError(uri, fmt.Errorf("mongodb uri: %w", err))
	}
	client, err := mongo.Connect(co)
	if err != nil {
		return nil, connectError(uri, fmt.Errorf("mongodb uri: %w", err))
	}
	db := client.Database(opts.Database)
	s := &Store{
		client:   client,
		db:       db,
		sessions: db.Collection(SessionsCollection),
		events:   db.Collection(EventsCollection),
		usage:    db.Collection(UsageCollection),
		requests: db.Collection(RequestsCollection),
		log:      opts.Logger,
	}
	if err := s.EnsureIndexes(ctx); err != nil {
		if !errors.Is(err, store.ErrUnavailable) {
			_ = client.Disconnect(context.Background())
			return nil, connectError(uri, err)
		}
		s.log.Warn("mongodb unreachable at start; running degraded until it answers",
			"uri", RedactURI(uri), "cause", ClassifyURI(err, uri).Msg, "err", err)
	}
	return s, nil
}

// Database is the database name in use.
func (s *Store) Database() string { return s.db.Name() }

// Client is the driver client, for diagnostics.
func (s *Store) Client() *mongo.Client { return s.client }

// Backend implements store.Store.
func (s *Store) Backend() string { return "mongodb" }

// Ping implements store.Store with a real ping command to the primary; on
// success it also finishes start-up work skipped while the server was down.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx, readpref.Primary()); err != nil {
		return wrap("ping mongodb", err)
	}
	return s.ensureIndexed(ctx)
}

// Close implements store.Store.
func (s *Store) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.client.Disconnect(ctx)
}

type index struct {
	coll   *mongo.Collection
	models []mongo.IndexModel
}

// EnsureIndexes creates the store's indexes; it is idempotent (creating an
// existing index with the same name, keys and options is a no-op on MongoDB
// and FerretDB) and cheap enough to call again after an outage.
func (s *Store) EnsureIndexes(ctx context.Context) error {
	all := []index{
		{s.sessions, []mongo.IndexModel{
			{Keys: bson.D{{Key: "app_id", Value: 1}, {Key: "user_id", Value: 1}, {Key: "created_at", Value: -1}, {Key: "_id", Value: -1}},
				Options: options.Index().SetName("by_user_newest")},
			{Keys: bson.D{{Key: "app_id", Value: 1}, {Key: "pending_id", Value: 1}},
				Options: options.Index().SetName("by_pending")},
			{Keys: bson.D{{Key: "status", Value: 1}, {Key: "last_updated_at", Value: 1}},
				Options: options.Index().SetName("by_status")},
		}},
		{s.events, []mongo.IndexModel{
			{Keys: bson.D{{Key: "chat_id", Value: 1}, {Key: "seq", Value: 1}},
				Options: options.Index().SetName("chat_seq").SetUnique(true)},
		}},
		{s.usage, []mongo.IndexModel{
			{Keys: bson.D{{Key: "app_id", Value: 1}, {Key: "user_id", Value: 1}, {Key: "chat_id", Value: 1}},
				Options: options.Index().SetName("by_chat")},
		}},
	}
	for _, ix := range all {
		// One index per command: FerretDB v1 panics (and drops the
		// connection) when one createIndexes names two existing indexes.
		for _, m := range ix.models {
			if _, err := ix.coll.Indexes().CreateOne(ctx, m); err != nil {
				return wrap("create indexes on "+ix.coll.Name(), err)
			}
		}
	}
	s.indexed.Store(true)
	return nil
}

// ensureIndexed runs EnsureIndexes until it has once succeeded. Callers that
// find another goroutine already at it go on without waiting: nothing the
// store does is wrong without the indexes, only slower or less guarded.
func (s *Store) ensureIndexed(ctx context.Context) error {
	if s.indexed.Load() || !s.indexing.TryLock() {
		return nil
	}
	defer s.indexing.Unlock()
	if s.indexed.Load() {
		return nil
	}
	if err := s.EnsureIndexes(ctx); err != nil {
		return err
	}
	s.log.Info("mongodb reachable; indexes ensured", "database", s.db.Name())
	return nil
}

// wrap names the failed operation and marks failures to reach the server
// (network errors, server selection, timeouts) as store.ErrUnavailable.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if unavailable(err) {
		return fmt.Errorf("%s: %w: %w", op, store.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func unavailable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	var sel topology.ServerSelectionError
	return errors.As(err, &sel) ||
		errors.Is(err, mongo.ErrClientDisconnected) ||
		mongo.IsNetworkError(err) ||
		mongo.IsTimeout(err)
}
