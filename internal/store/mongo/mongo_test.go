package mongo_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/mozaiks/mozaiks/internal/store"
	"github.com/mozaiks/mozaiks/internal/store/mongo"
	"github.com/mozaiks/mozaiks/internal/store/storetest"
	"github.com/mozaiks/mozaiks/internal/testutil/ferret"
)

func open(t *testing.T) store.Store {
	t.Helper()
	return openURI(t, ferret.DB(t), mongoOptions())
}

// mongoOptions silences the degraded-mode warnings tests provoke on purpose.
func mongoOptions() mongo.Options {
	return mongo.Options{Logger: slog.New(slog.DiscardHandler)}
}

func openURI(t testing.TB, uri string, opts mongo.Options) *mongo.Store {
	t.Helper()
	s, err := mongo.Open(context.Background(), uri, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, open)
}
