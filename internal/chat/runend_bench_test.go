package chat

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/engine"
	"github.com/mozaiks/mozaiks/internal/llm"
	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
	"github.com/mozaiks/mozaiks/internal/store"
	"github.com/mozaiks/mozaiks/internal/store/mongo"
	"github.com/mozaiks/mozaiks/internal/store/sqlite"
	"github.com/mozaiks/mozaiks/internal/testutil/ferret"
	"github.com/mozaiks/mozaiks/internal/workflow"
	"github.com/mozaiks/mozaiks/workflows"
)

// writeCounter counts the store writes a chat's turns make.
type writeCounter struct {
	store.Store
	n atomic.Int64
}

func (c *writeCounter) AppendEventUpdate(ctx context.Context, appID, chatID string, ev store.Event, message bool, u store.SessionUpdate) (store.Event, error) {
	c.n.Add(1)
	return c.Store.AppendEventUpdate(ctx, appID, chatID, ev, message, u)
}

func (c *writeCounter) UpdateSession(ctx context.Context, appID, chatID string, u store.SessionUpdate) error {
	c.n.Add(1)
	return c.Store.UpdateSession(ctx, appID, chatID, u)
}

func (c *writeCounter) RecordUsage(ctx context.Context, u store.UsageRecord) error {
	c.n.Add(1)
	return c.Store.RecordUsage(ctx, u)
}

func (c *writeCounter) AcquireLease(ctx context.Context, appID, chatID, owner string, ttl time.Duration) (bool, error) {
	c.n.Add(1)
	return c.Store.AcquireLease(ctx, appID, chatID, owner, ttl)
}

func (c *writeCounter) RenewLease(ctx context.Context, appID, chatID, owner string, ttl time.Duration) (bool, error) {
	c.n.Add(1)
	return c.Store.RenewLease(ctx, appID, chatID, owner, ttl)
}

func (c *writeCounter) ReleaseLease(ctx context.Context, appID, chatID, owner string) error {
	c.n.Add(1)
	return c.Store.ReleaseLease(ctx, appID, chatID, owner)
}

// batchCounter is a writeCounter on a store that takes batches (one write each).
type batchCounter struct{ *writeCounter }

func (c batchCounter) WriteBatch(ctx context.Context, appID, chatID string, ws []store.Write) ([]store.Event, error) {
	c.n.Add(1)
	return c.Store.(store.Batcher).WriteBatch(ctx, appID, chatID, ws)
}

// BenchmarkRunEnd times whole turns (message submitted to the run's end
// stored, its lease released and its room idle) of one process alone
// (SingleProcess: no lease, baseline) and of a replica among several
// (lease taken, renewed, released; writes fenced; the run's end flushed and
// its status conditional, endUpdate), turns interleaved, on the embedded
// store and on the Mongo store (FerretDB v1). It reports both, their ratio
// and the store writes per turn.
//
//	go test -run '^$' -bench RunEnd -benchtime 200x ./internal/chat/
func BenchmarkRunEnd(b *testing.B) {
	set, _ := workflow.LoadSet("", workflows.FS)
	srv := llmtest.New(b, llmtest.WithRecordLimit(1), llmtest.WithResponder(func(llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Text: "short answer", Chunks: 2}
	}))
	for _, backend := range []string{"embedded", "ferretdb"} {
		b.Run("store="+backend, func(b *testing.B) {
			var st store.Store
			switch backend {
			case "embedded":
				s, err := sqlite.Open(context.Background(), b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { s.Close() })
				st = s
			default:
				s, err := mongo.Open(context.Background(), ferret.DB(b), mongo.Options{})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { s.Close() })
				st = s
			}
			mk := func(single bool, chat string) *benchSide {
				c := &writeCounter{Store: st}
				var s store.Store = c
				if _, ok := st.(store.Batcher); ok {
					s = batchCounter{c}
				}
				model := llm.NewOpenAI(llm.Options{APIKey: "sk-test", BaseURL: srv.URL(), MaxRetries: -1})
				eng := engine.New(engine.Options{Workflows: set, LLM: model, DefaultModel: "m"})
				m := NewManager(Options{Store: s, Runner: eng, Workflows: set, SingleProcess: single, Owner: "bench-" + chat})
				b.Cleanup(func() {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					m.Shutdown(ctx)
				})
				if _, _, err := m.Open(context.Background(), OpenRequest{Workflow: "assistant", AppID: "app", ChatID: chat, UserID: "u1"}); err != nil {
					b.Fatal(err)
				}
				sd := &benchSide{m: m, c: c, chat: chat}
				sd.turn(b, "warm up")
				sd.took, sd.writes = 0, 0
				return sd
			}
			alone, replica := mk(true, "alone"), mk(false, "replica")
			n := 0
			for b.Loop() {
				n++
				for _, sd := range []*benchSide{alone, replica} {
					sd.turn(b, fmt.Sprint("question ", n))
				}
			}
			f := float64(n)
			b.ReportMetric(float64(alone.took.Microseconds())/f/1000, "alone-ms/turn")
			b.ReportMetric(float64(replica.took.Microseconds())/f/1000, "replica-ms/turn")
			b.ReportMetric(float64(replica.took)/float64(alone.took), "ratio")
			b.ReportMetric(float64(alone.writes)/f, "alone-writes/turn")
			b.ReportMetric(float64(replica.writes)/f, "replica-writes/turn")
		})
	}
}

// benchSide is one of BenchmarkRunEnd's two managers, with its chat.
type benchSide struct {
	m      *Manager
	c      *writeCounter
	chat   string
	took   time.Duration
	writes int64
}

// turn submits a message and waits until the chat's room is idle: the run's
// end stored and, on several replicas, its lease released.
func (sd *benchSide) turn(b *testing.B, text string) {
	b.Helper()
	w0 := sd.c.n.Load()
	start := time.Now()
	if _, err := sd.m.Submit(context.Background(), Submission{AppID: "app", ChatID: sd.chat, UserID: "u1", Text: text}); err != nil {
		b.Fatal(err)
	}
	deadline := start.Add(30 * time.Second)
	for {
		sd.m.mu.Lock()
		n := len(sd.m.rooms)
		sd.m.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("turn not done after 30s")
		}
		time.Sleep(100 * time.Microsecond)
	}
	sd.took += time.Since(start)
	sd.writes += sd.c.n.Load() - w0
}
