package ferret

import (
	"bufio"
	"encoding/binary"
	"net"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// opMsgOf builds an OP_MSG carrying doc (section 0).
func opMsgOf(t *testing.T, requestID, responseTo int32, doc bson.D) []byte {
	t.Helper()
	body, err := bson.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, headerSize+4+1, headerSize+4+1+len(body))
	binary.LittleEndian.PutUint32(msg[4:8], uint32(requestID))
	binary.LittleEndian.PutUint32(msg[8:12], uint32(responseTo))
	binary.LittleEndian.PutUint32(msg[12:16], opMsg)
	msg = append(msg, body...)
	binary.LittleEndian.PutUint32(msg[0:4], uint32(len(msg)))
	return msg
}

// A client that hangs up while its update runs (it timed out) does not let
// the next update of the document in before FerretDB has answered the
// first: FerretDB goes on with it, and would otherwise run the two at once
// (a seq handed out twice, a lease or status rolled back). The backend here
// answers each command 300 ms after it came.
func TestFrontHoldsTheLockOfAClientThatHungUp(t *testing.T) {
	back, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	var mu sync.Mutex
	arrived := map[int32]time.Time{}
	go func() {
		for {
			c, err := back.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					msg, err := readMessage(r)
					if err != nil {
						return
					}
					id := int32(binary.LittleEndian.Uint32(msg[4:8]))
					mu.Lock()
					arrived[id] = time.Now()
					mu.Unlock()
					time.Sleep(300 * time.Millisecond)
					if _, err := c.Write(opMsgOf(t, 100+id, id, bson.D{{Key: "ok", Value: 1}})); err != nil {
						return
					}
				}
			}()
		}
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := newFront(ln, back.Addr().String())
	defer f.close()
	inc := func(id int32) []byte {
		return opMsgOf(t, id, 0, bson.D{{Key: "findAndModify", Value: "sessions"},
			{Key: "query", Value: bson.D{{Key: "_id", Value: "chat"}}},
			{Key: "update", Value: bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}}},
			{Key: "$db", Value: "db"}})
	}
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write(inc(1)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // forwarded, running
	a.Close()                         // the client gives up
	b, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Write(inc(2)); err != nil {
		t.Fatal(err)
	}
	_ = b.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := readMessage(bufio.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if gap := arrived[2].Sub(arrived[1]); gap < 250*time.Millisecond {
		t.Fatalf("the second update reached FerretDB %v after the first, before its answer (300 ms): the lock went with the client", gap)
	}
}
