package mongo

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mozaiks/mozaiks/internal/store"
)

// Backup side of the Mongo store: everything streamed through the driver
// with cursors (no mongodump), and verbatim inserts for restore.

var (
	_ store.Exporter = (*Store)(nil)
	_ store.Importer = (*Store)(nil)
)

// exportBatch is the cursor batch size of Export.
const exportBatch = 1000

// Count implements store.Exporter and store.Importer.
func (s *Store) Count(ctx context.Context) (store.Counts, error) {
	var c store.Counts
	for _, x := range []struct {
		coll *mongo.Collection
		n    *int64
	}{{s.sessions, &c.Sessions}, {s.events, &c.Events}, {s.usage, &c.Usage}} {
		n, err := x.coll.CountDocuments(ctx, bson.D{})
		if err != nil {
			return store.Counts{}, wrap("count "+x.coll.Name(), err)
		}
		*x.n = n
	}
	return c, nil
}

// Export implements store.Exporter. MongoDB without a replica set, and
// FerretDB, offer no snapshot across collections, so the sessions are read
// first and fix the cut: an event is exported only if its seq is within its
// session's last_sequence as read, so a chat appended to during the backup
// comes back as it was when its session was read, not with events its
// counter does not know of. What stays loose while writers run: an append
// in flight at the cut (its seq taken, its insert not landed) is missing,
// a gap that ListEvents skips once it is old; and a usage record written
// during the backup may or may not be in it, whatever the session's totals
// say. A backup taken with the runtime stopped (or idle) is exact.
func (s *Store) Export(ctx context.Context, sink store.ExportSink) error {
	if err := s.ensureIndexed(ctx); err != nil {
		return err
	}
	lastSeq := map[string]int64{}
	cur, err := s.sessions.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetBatchSize(exportBatch))
	if err != nil {
		return wrap("export sessions", err)
	}
	if err := each(ctx, cur, "export sessions", func(d *sessionDoc) error {
		lastSeq[d.ChatID] = d.LastSeq
		return sink.Session(d.session())
	}); err != nil {
		return err
	}

	cur, err = s.events.Find(ctx, bson.D{},
		options.Find().SetSort(bson.D{{Key: "chat_id", Value: 1}, {Key: "seq", Value: 1}}).SetBatchSize(exportBatch))
	if err != nil {
		return wrap("export events", err)
	}
	if err := each(ctx, cur, "export events", func(d *eventDoc) error {
		if last, ok := lastSeq[d.ChatID]; !ok || d.Seq > last {
			return nil
		}
		return sink.Event(store.AppEvent{AppID: d.AppID, Event: d.event()})
	}); err != nil {
		return err
	}

	cur, err = s.usage.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetBatchSize(exportBatch))
	if err != nil {
		return wrap("export usage", err)
	}
	return each(ctx, cur, "export usage", func(d *usageEventDoc) error {
		if _, ok := lastSeq[d.ChatID]; !ok {
			return nil
		}
		return sink.Usage(store.UsageRecord{
			AppID: d.AppID, UserID: d.UserID, ChatID: d.ChatID, Workflow: d.Workflow, Agent: d.Agent, Model: d.Model,
			PromptTokens: d.PromptTokens, CompletionTokens: d.CompletionTokens, TotalTokens: d.TotalTokens,
			CostUSD: d.CostUSD, Duration: time.Duration(d.DurationMS) * time.Millisecond, Timestamp: d.Timestamp.UTC(),
		})
	})
}

// each decodes every document of cur into a fresh T and calls fn; it closes cur.
func each[T any](ctx context.Context, cur *mongo.Cursor, op string, fn func(*T) error) error {
	defer cur.Close(context.WithoutCancel(ctx))
	for cur.Next(ctx) {
		var d T
		if err := cur.Decode(&d); err != nil {
			return fmt.Errorf("%s: decode: %w", op, err)
		}
		if err := fn(&d); err != nil {
			return err
		}
	}
	return wrap(op, cur.Err())
}

// Clear implements store.Importer.
func (s *Store) Clear(ctx context.Context) error {
	for _, c := range []*mongo.Collection{s.events, s.usage, s.requests, s.sessions} {
		if _, err := c.DeleteMany(ctx, bson.D{}); err != nil {
			return wrap("clear "+c.Name(), err)
		}
	}
	return nil
}

// ImportSessions implements store.Importer.
func (s *Store) ImportSessions(ctx context.Context, in []store.Session) error {
	docs := make([]any, len(in))
	for i, x := range in {
		d := toSessionDoc(x)
		d.LastSeq, d.MessageCount = x.LastSeq, x.MessageCount
		docs[i] = d
	}
	return s.insert(ctx, s.sessions, docs)
}

// ImportEvents implements store.Importer.
func (s *Store) ImportEvents(ctx context.Context, in []store.AppEvent) error {
	docs := make([]any, len(in))
	for i, e := range in {
		data := string(e.Data)
		if data == "" {
			data = "{}"
		}
		docs[i] = eventDoc{ChatID: e.ChatID, AppID: e.AppID, Seq: e.Seq, Type: e.Type, Agent: e.Agent, Data: data,
			Timestamp: e.Timestamp.UTC()}
	}
	return s.insert(ctx, s.events, docs)
}

// ImportUsage implements store.Importer.
func (s *Store) ImportUsage(ctx context.Context, in []store.UsageRecord) error {
	docs := make([]any, len(in))
	for i, u := range in {
		docs[i] = usageEventDoc{
			AppID: u.AppID, UserID: u.UserID, ChatID: u.ChatID, Workflow: u.Workflow, Agent: u.Agent, Model: u.Model,
			PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens,
			CostUSD: u.CostUSD, DurationMS: u.Duration.Milliseconds(), Timestamp: u.Timestamp.UTC(),
		}
	}
	return s.insert(ctx, s.usage, docs)
}

func (s *Store) insert(ctx context.Context, c *mongo.Collection, docs []any) error {
	if len(docs) == 0 {
		return nil
	}
	if err := s.ensureIndexed(ctx); err != nil {
		return err
	}
	if _, err := c.InsertMany(ctx, docs); err != nil {
		return wrap("import into "+c.Name(), err)
	}
	return nil
}
