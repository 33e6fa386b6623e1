package limit

import (
	"net"
	"testing"
	"time"
)

func TestRateBurstThenRefuses(t *testing.T) {
	t.Parallel()
	r := NewRate(60, time.Minute, 3)
	for i := range 3 {
		if ok, _ := r.Allow("u1"); !ok {
			t.Fatalf("event %d of the burst refused", i+1)
		}
	}
	ok, wait := r.Allow("u1")
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("4th event: ok=%v retry after %s, want refused with about 1s", ok, wait)
	}
	if ok, _ := r.Allow("u2"); !ok {
		t.Fatal("another key shares u1's bucket")
	}
	var none *Rate = NewRate(0, time.Minute, 3)
	for range 100 {
		if ok, _ := none.Allow("x"); !ok {
			t.Fatal("a zero rate limits")
		}
	}
}

func TestCounter(t *testing.T) {
	t.Parallel()
	c := NewCounter(2)
	for i, want := range []bool{true, true, false} {
		if got := c.Acquire("a"); got != want {
			t.Fatalf("Acquire #%d = %v, want %v", i+1, got, want)
		}
	}
	if !c.Acquire("b") {
		t.Fatal("another key shares a's cap")
	}
	c.Release("a")
	if !c.Acquire("a") || c.Held("a") != 2 {
		t.Fatal("released slot not reusable")
	}
	if NewCounter(0) != nil || !NewCounter(0).Acquire("x") {
		t.Fatal("zero cap should mean none")
	}
}

func TestListenerCapsPerIP(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(ln, 2)
	defer l.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	var clients []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	s1, s2 := <-accepted, <-accepted
	// The third was accepted by the kernel and closed by the listener: its
	// read sees EOF.
	_ = clients[2].SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := clients[2].Read(make([]byte, 1)); err == nil {
		t.Fatal("third connection from one IP was served")
	}
	if l.Open("127.0.0.1") != 2 {
		t.Fatalf("open = %d", l.Open("127.0.0.1"))
	}
	s1.Close()
	s1.Close() // a second Close must not release twice
	if l.Open("127.0.0.1") != 1 {
		t.Fatalf("after close: open = %d", l.Open("127.0.0.1"))
	}
	c4, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c4.Close()
	(<-accepted).Close()
	s2.Close()
}

// BenchmarkRateAllow is the per-message cost of the rate limit: one bucket
// lookup among 1,000 users, from every core at once.
//
//	go test -run '^$' -bench RateAllow ./internal/serve/limit/
func BenchmarkRateAllow(b *testing.B) {
	r := NewRate(1<<20, time.Minute, 10) // never refuses: measure the lookup, not refusals
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = "user-" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676))
	}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			r.Allow(keys[i%len(keys)])
			i++
		}
	})
}
