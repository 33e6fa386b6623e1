package ferret_test

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mozaiks/mozaiks/internal/testutil/ferret"
)

func connect(t *testing.T, uri string) *mongo.Client {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(3 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Disconnect(context.Background()) })
	return c
}

func dbOf(uri string) string { return uri[strings.LastIndex(uri, "/")+1:] }

func TestDBIsolated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u1, u2 := ferret.DB(t), ferret.DB(t)
	if u1 == u2 || dbOf(u1) == "" {
		t.Fatalf("DB gave %q and %q", u1, u2)
	}
	c := connect(t, u1)
	if _, err := c.Database(dbOf(u1)).Collection("x").InsertOne(ctx, bson.D{{Key: "a", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	n, err := c.Database(dbOf(u2)).Collection("x").CountDocuments(ctx, bson.D{})
	if err != nil || n != 0 {
		t.Fatalf("second database sees %d docs (%v)", n, err)
	}
	n, err = c.Database(dbOf(u1)).Collection("x").CountDocuments(ctx, bson.D{})
	if err != nil || n != 1 {
		t.Fatalf("first database has %d docs (%v)", n, err)
	}
}

func TestDBNameLimits(t *testing.T) {
	t.Parallel()
	t.Run(strings.Repeat("very long name with spaces/and slashes ", 4), func(t *testing.T) {
		name := dbOf(ferret.DB(t))
		if len(name) > 63 || strings.ContainsAny(name, " /") {
			t.Fatalf("database name %q breaks FerretDB's rules", name)
		}
		// FerretDB rejects a bad name on first write, so write.
		c := connect(t, ferret.Start(t))
		if _, err := c.Database(name).Collection("x").InsertOne(context.Background(), bson.D{{Key: "a", Value: 1}}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestServerRestartKeepsData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := ferret.NewServer(t)
	uri := s.DB(t)
	c := connect(t, uri)
	coll := c.Database(dbOf(uri)).Collection("x")
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "k"}}); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := c.Ping(short, nil); err == nil {
		t.Fatal("ping succeeded with the server stopped")
	}
	s.Start(t)
	n, err := coll.CountDocuments(ctx, bson.D{})
	if err != nil || n != 1 {
		t.Fatalf("after restart: %d docs, %v", n, err)
	}
}

// Serve is what a process (the fake-mongo image) runs: it stops with its
// context, and stop may still be called after.
func TestServeStopsWithContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	uri, stop, err := ferret.Serve(ctx, "127.0.0.1:0", filepath.Join(t.TempDir(), "nested", "data"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(uri, "mongodb://127.0.0.1:") {
		t.Fatalf("uri = %q", uri)
	}
	c := connect(t, uri+"probe")
	if err := c.Ping(context.Background(), nil); err != nil {
		t.Fatalf("ping: %v", err)
	}
	c.Disconnect(context.Background())
	cancel()
	stop() // waits for the server to finish; must not hang or panic after ctx ended
	stop()
	addr := strings.TrimSuffix(strings.TrimPrefix(uri, "mongodb://"), "/")
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Fatalf("%s still accepts connections after stop", addr)
	}
}

func TestServeBadAddress(t *testing.T) {
	t.Parallel()
	if _, _, err := ferret.Serve(context.Background(), "256.0.0.1:bad", t.TempDir()); err == nil {
		t.Fatal("Serve on a bad address succeeded")
	}
}
