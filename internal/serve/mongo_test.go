package serve_test

import (
	"context"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/store"
	"github.com/mozaiks/mozaiks/internal/store/mongo"
	"github.com/mozaiks/mozaiks/internal/testutil/ferret"
)

// The runtime tests also run on the Mongo store, against FerretDB through
// the real driver, one database per test.
func init() {
	backends["mongodb"] = func(t *testing.T) store.Store {
		uri := ferret.DB(t)
		s, err := mongo.Open(context.Background(), uri, mongo.Options{ServerSelectionTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
}
