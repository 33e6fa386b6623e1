// Command fakemongo stands in for the mongo image in tests that run a compose
// stack on a real Docker engine, where no image can be pulled: it is FerretDB
// (a real MongoDB wire-protocol server) on SQLite files under /data, built
// static so it runs FROM scratch. `fakemongo ping` is its health check, so
// the image needs no shell.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mozaiks/mozaiks/internal/testutil/ferret"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if len(os.Args) > 1 && os.Args[1] == "ping" {
		err = ping(ctx, "mongodb://127.0.0.1:27017/")
	} else {
		err = serve(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakemongo:", err)
		os.Exit(1)
	}
}

func serve(ctx context.Context) error {
	dir := env("FAKEMONGO_DATA", "/data")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	// ferret.ServeLogger puts the front before FerretDB that makes its
	// single-document updates atomic, as on MongoDB.
	listen := env("FAKEMONGO_LISTEN", "0.0.0.0:27017")
	_, stop, err := ferret.ServeLogger(ctx, listen, dir, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	if err != nil {
		return err
	}
	fmt.Println("fakemongo: waiting for connections on", listen)
	<-ctx.Done()
	stop()
	return nil
}

func ping(ctx context.Context, uri string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(2 * time.Second))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() { _ = c.Disconnect(context.Background()) }()
	return c.Database("admin").RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err()
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
