package backup_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/backup"
	"github.com/mozaiks/mozaiks/internal/store"
	"github.com/mozaiks/mozaiks/internal/store/mongo"
	"github.com/mozaiks/mozaiks/internal/store/sqlite"
	"github.com/mozaiks/mozaiks/internal/testutil/ferret"
)

// Backup and restore throughput, in events/s, against same-run baselines:
// a plain copy of the database file (what a torn `cp` would cost) and
// VACUUM INTO alone (the snapshot step).
//
//	go test -run '^$' -bench . -benchtime 3x ./internal/backup/

const benchChats, benchEvents = 100, 500 // 50,000 events

// seedBench fills an embedded store in dir through the importer (fast) with
// benchChats chats of benchEvents events and a usage record every 5 events.
func seedBench(b *testing.B, dir string) {
	b.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, dir)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ts := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for c := range benchChats {
		chat := fmt.Sprintf("chat-%03d", c)
		if err := s.ImportSessions(ctx, []store.Session{{ChatID: chat, AppID: "app", UserID: "u", Workflow: "w",
			Status: store.StatusAwaitingInput, CreatedAt: ts, UpdatedAt: ts, LastSeq: benchEvents, MessageCount: benchEvents}}); err != nil {
			b.Fatal(err)
		}
		evs := make([]store.AppEvent, benchEvents)
		var usage []store.UsageRecord
		for i := range evs {
			evs[i] = store.AppEvent{AppID: "app", Event: store.Event{ChatID: chat, Seq: int64(i + 1), Type: "chat.text", Agent: "Assistant",
				Data:      json.RawMessage(fmt.Sprintf(`{"agent":"Assistant","role":"assistant","content":"This is reply number %d of the chat, a sentence or two long as most are.","message_id":"m-%d"}`, i, i)),
				Timestamp: ts.Add(time.Duration(i) * time.Second)}}
			if i%5 == 0 {
				usage = append(usage, store.UsageRecord{AppID: "app", UserID: "u", ChatID: chat, Workflow: "w", Agent: "Assistant",
					Model: "gpt-4o-mini", PromptTokens: 900, CompletionTokens: 80, TotalTokens: 980, CostUSD: 0.0002,
					Duration: 800 * time.Millisecond, Timestamp: ts})
			}
		}
		if err := s.ImportEvents(ctx, evs); err != nil {
			b.Fatal(err)
		}
		if err := s.ImportUsage(ctx, usage); err != nil {
			b.Fatal(err)
		}
	}
}

var benchData struct {
	dir     string
	archive string
}

func benchSetup(b *testing.B) {
	b.Helper()
	if benchData.dir != "" {
		return
	}
	root, err := os.MkdirTemp("", "mozaiks-backup-bench-")
	if err != nil {
		b.Fatal(err)
	}
	benchData.dir = filepath.Join(root, "data")
	seedBench(b, benchData.dir)
	benchData.archive = filepath.Join(root, "b.zip")
	src, cleanup, err := backup.EmbeddedSource(context.Background(), benchData.dir, root)
	if err != nil {
		b.Fatal(err)
	}
	defer cleanup()
	f, err := os.Create(benchData.archive)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := backup.Write(context.Background(), f, src, backup.WriteOptions{}); err != nil {
		b.Fatal(err)
	}
}

// reportEvents reports events/s of wall time, and the CPU time per op
// (cpu0 is cpuTime() before the loop).
func reportEvents(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(benchChats*benchEvents)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e6, "cpu-ms/op")
}

func BenchmarkBaselineFileCopy(b *testing.B) {
	benchSetup(b)
	cpu0 := cpuTime()
	for b.Loop() {
		in, err := os.Open(filepath.Join(benchData.dir, sqlite.FileName))
		if err != nil {
			b.Fatal(err)
		}
		out, err := os.Create(filepath.Join(b.TempDir(), "copy.db"))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			b.Fatal(err)
		}
		in.Close()
		out.Close()
	}
	reportEvents(b, cpu0)
}

func BenchmarkBaselineVacuumInto(b *testing.B) {
	benchSetup(b)
	cpu0 := cpuTime()
	for b.Loop() {
		if err := sqlite.Snapshot(context.Background(), benchData.dir, filepath.Join(b.TempDir(), "snap.db")); err != nil {
			b.Fatal(err)
		}
	}
	reportEvents(b, cpu0)
}

func BenchmarkBackupEmbedded(b *testing.B) {
	benchSetup(b)
	cpu0 := cpuTime()
	for b.Loop() {
		tmp := b.TempDir()
		src, cleanup, err := backup.EmbeddedSource(context.Background(), benchData.dir, tmp)
		if err != nil {
			b.Fatal(err)
		}
		f, err := os.Create(filepath.Join(tmp, "b.zip"))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := backup.Write(context.Background(), f, src, backup.WriteOptions{}); err != nil {
			b.Fatal(err)
		}
		f.Close()
		cleanup()
	}
	reportEvents(b, cpu0)
}

func BenchmarkVerify(b *testing.B) {
	benchSetup(b)
	cpu0 := cpuTime()
	for b.Loop() {
		a, err := backup.OpenFile(benchData.archive)
		if err != nil {
			b.Fatal(err)
		}
		if err := a.Verify(context.Background(), nil); err != nil {
			b.Fatal(err)
		}
		a.Close()
	}
	reportEvents(b, cpu0)
}

func BenchmarkRestoreEmbedded(b *testing.B) {
	benchSetup(b)
	cpu0 := cpuTime()
	for b.Loop() {
		s, err := sqlite.Open(context.Background(), b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		a, err := backup.OpenFile(benchData.archive)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := a.Restore(context.Background(), s, backup.RestoreOptions{}); err != nil {
			b.Fatal(err)
		}
		a.Close()
		s.Close()
	}
	reportEvents(b, cpu0)
}

// The Mongo store on FerretDB v1 (the test server; see the store benchmarks
// for how far it is from MongoDB).
func BenchmarkRestoreMongoFerret(b *testing.B) {
	benchSetup(b)
	cpu0 := cpuTime()
	for b.Loop() {
		s, err := mongo.Open(context.Background(), ferret.DB(b), mongo.Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		a, err := backup.OpenFile(benchData.archive)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := a.Restore(context.Background(), s, backup.RestoreOptions{}); err != nil {
			b.Fatal(err)
		}
		a.Close()
		s.Close()
	}
	reportEvents(b, cpu0)
}

func BenchmarkBackupMongoFerret(b *testing.B) {
	benchSetup(b)
	s, err := mongo.Open(context.Background(), ferret.DB(b), mongo.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	a, err := backup.OpenFile(benchData.archive)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := a.Restore(context.Background(), s, backup.RestoreOptions{}); err != nil {
		b.Fatal(err)
	}
	a.Close()
	cpu0 := cpuTime()
	for b.Loop() {
		f, err := os.Create(filepath.Join(b.TempDir(), "b.zip"))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := backup.Write(context.Background(), f, s, backup.WriteOptions{}); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
	reportEvents(b, cpu0)
}

// TestMain removes the benchmarks' shared data set.
func TestMain(m *testing.M) {
	code := m.Run()
	if benchData.dir != "" {
		os.RemoveAll(filepath.Dir(benchData.dir))
	}
	os.Exit(code)
}
