package ferret_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mozaiks/mozaiks/internal/testutil/ferret"
)

// Single-document updates are atomic, as on MongoDB: two clients (two
// connection pools, as two replicas would have) updating different fields
// of one document at once lose none of each other's writes, a conditional
// update admits one winner, and findAndModify $inc hands out each value
// once. FerretDB v1 alone reads, modifies and rewrites the whole document
// in separate steps, and fails all three.
func TestConcurrentUpdatesOfOneDocument(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	uri := ferret.DB(t)
	clients := []*mongo.Client{connect(t, uri), connect(t, uri)}
	coll := func(i int, name string) *mongo.Collection {
		return clients[i%2].Database(dbOf(uri)).Collection(name)
	}
	if _, err := coll(0, "doc").InsertOne(ctx, bson.D{{Key: "_id", Value: "one"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := coll(0, "lease").InsertOne(ctx, bson.D{{Key: "_id", Value: "chat"}, {Key: "owner", Value: ""}}); err != nil {
		t.Fatal(err)
	}
	const ops, workers = 1000, 16
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		won     []int
		counted = map[int64]int{}
	)
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range next {
				upd := bson.D{
					{Key: "$inc", Value: bson.D{{Key: fmt.Sprintf("n%d", i%2), Value: 1}}},
					{Key: "$set", Value: bson.D{{Key: fmt.Sprintf("f%d", i), Value: i}}},
				}
				if _, err := coll(i, "doc").UpdateOne(ctx, bson.D{{Key: "_id", Value: "one"}}, upd); err != nil {
					t.Errorf("update %d: %v", i, err)
				}
				if i%10 == 5 { // 100 updates by a filter that is not one _id
					_, err := coll(i, "doc").UpdateMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{"one"}}}}},
						bson.D{{Key: "$inc", Value: bson.D{{Key: "m", Value: 1}}}})
					if err != nil {
						t.Errorf("update many %d: %v", i, err)
					}
				}
				if i%5 != 0 { // 200 counter values
					continue
				}
				var c struct{ N int64 }
				err := coll(i, "counter").FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: "seq"}},
					bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}},
					options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After)).Decode(&c)
				if err != nil {
					t.Errorf("counter %d: %v", i, err)
				}
				if i%10 == 0 { // 100 claims of one free lease
					res, err := coll(i, "lease").UpdateOne(ctx, bson.D{{Key: "_id", Value: "chat"}, {Key: "owner", Value: ""}},
						bson.D{{Key: "$set", Value: bson.D{{Key: "owner", Value: fmt.Sprint(i)}}}})
					if err != nil {
						t.Errorf("claim %d: %v", i, err)
					}
					if res != nil && res.MatchedCount == 1 {
						mu.Lock()
						won = append(won, i)
						mu.Unlock()
					}
				}
				mu.Lock()
				counted[c.N]++
				mu.Unlock()
			}
		})
	}
	for i := range ops {
		next <- i
	}
	close(next)
	wg.Wait()

	var doc bson.M
	if err := coll(0, "doc").FindOne(ctx, bson.D{{Key: "_id", Value: "one"}}).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	for k := range 2 {
		if n := doc[fmt.Sprintf("n%d", k)]; fmt.Sprint(n) != fmt.Sprint(ops/2) {
			t.Errorf("n%d = %v after %d increments", k, n, ops/2)
		}
	}
	if m := doc["m"]; fmt.Sprint(m) != fmt.Sprint(ops/10) {
		t.Errorf("m = %v after %d increments by UpdateMany", m, ops/10)
	}
	missing := 0
	for i := range ops {
		if _, ok := doc[fmt.Sprintf("f%d", i)]; !ok {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d $set fields lost", missing, ops)
	}
	dups := 0
	for _, n := range counted {
		if n > 1 {
			dups += n - 1
		}
	}
	if dups > 0 || len(counted) != ops/5 {
		t.Errorf("findAndModify $inc: %d distinct values of %d, %d duplicates", len(counted), ops/5, dups)
	}
	if len(won) != 1 {
		t.Errorf("a free lease was claimed %d times: %v", len(won), won)
	}
}
