package ferret

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Against the real FerretDB: clients that send an update and hang up at
// once (as a driver does when its operation times out) interleave with
// clients that wait for their answers, all on one document and one
// counter. Every update a client was told succeeded is still there at the
// end, and no counter value is handed out twice. Before the front kept the
// lock of a client that hung up until FerretDB answered, the hung-up
// updates ran beside the next ones and FerretDB's stale write-backs lost
// them (the failures of TestRollingRestartUnderLoad under load);
// TestFrontHoldsTheLockOfAClientThatHungUp shows the mechanism on a fake
// backend.
func TestUpdatesBesideClientsThatHangUpLoseNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	uri := DB(t)
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	db := strings.TrimPrefix(u.Path, "/")
	clients := make([]*mongo.Client, 2) // two pools, as two replicas
	for i := range clients {
		c, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(3 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
		clients[i] = c
	}
	coll := func(i int, name string) *mongo.Collection { return clients[i%2].Database(db).Collection(name) }
	if _, err := coll(0, "doc").InsertOne(ctx, bson.D{{Key: "_id", Value: "one"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := coll(0, "counter").InsertOne(ctx, bson.D{{Key: "_id", Value: "seq"}, {Key: "n", Value: int64(0)}}); err != nil {
		t.Fatal(err)
	}

	// hangUp sends cmd on a connection of its own and closes it after a
	// moment (0-2 ms): before FerretDB has answered, mostly.
	var reqID atomic.Int32
	hangUp := func(cmd bson.D) error {
		c, err := net.Dial("tcp", u.Host)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.Write(opMsgOf(t, reqID.Add(1), 0, append(cmd, bson.E{Key: "$db", Value: db}))); err != nil {
			return err
		}
		time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
		return nil
	}

	const ops, workers = 600, 16
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		acked []int
		seqs  = map[int64]int{}
	)
	work := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range work {
				if i%2 == 0 {
					err := hangUp(bson.D{{Key: "update", Value: "doc"}, {Key: "updates", Value: bson.A{
						bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: "one"}}},
							{Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: fmt.Sprintf("h%d", i), Value: i}}}}}}}}})
					if err == nil && i%6 == 0 {
						err = hangUp(bson.D{{Key: "findAndModify", Value: "counter"}, {Key: "query", Value: bson.D{{Key: "_id", Value: "seq"}}},
							{Key: "update", Value: bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: int64(1)}}}}}})
					}
					if err != nil {
						t.Errorf("hang-up %d: %v", i, err)
					}
					continue
				}
				if _, err := coll(i, "doc").UpdateOne(ctx, bson.D{{Key: "_id", Value: "one"}},
					bson.D{{Key: "$set", Value: bson.D{{Key: fmt.Sprintf("f%d", i), Value: i}}}}); err != nil {
					t.Errorf("update %d: %v", i, err)
					continue
				}
				mu.Lock()
				acked = append(acked, i)
				mu.Unlock()
				if i%3 != 1 {
					continue
				}
				var c struct{ N int64 }
				if err := coll(i, "counter").FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: "seq"}},
					bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: int64(1)}}}},
					options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&c); err != nil {
					t.Errorf("counter %d: %v", i, err)
					continue
				}
				mu.Lock()
				seqs[c.N]++
				mu.Unlock()
			}
		})
	}
	for i := range ops {
		work <- i
	}
	close(work)
	wg.Wait()

	var doc bson.M
	if err := coll(0, "doc").FindOne(ctx, bson.D{{Key: "_id", Value: "one"}}).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	var lost []int
	for _, i := range acked {
		if _, ok := doc[fmt.Sprintf("f%d", i)]; !ok {
			lost = append(lost, i)
		}
	}
	hung := 0
	for i := 0; i < ops; i += 2 {
		if _, ok := doc[fmt.Sprintf("h%d", i)]; ok {
			hung++
		}
	}
	t.Logf("%d acknowledged updates, %d of %d hung-up updates applied", len(acked), hung, ops/2)
	if len(lost) > 0 {
		t.Errorf("%d of %d acknowledged updates lost: %v", len(lost), len(acked), lost)
	}
	for n, k := range seqs {
		if k > 1 {
			t.Errorf("counter value %d handed out %d times", n, k)
		}
	}
}
