package mongo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/store"
	"github.com/mozaiks/mozaiks/internal/store/mongo"
	"github.com/mozaiks/mozaiks/internal/testutil/ferret"
)

// insertTrap is a TCP proxy in front of a MongoDB-wire server. Armed, it
// catches the next insert into the events collection: it holds the
// server's reply back for hold (the client times out after the server took
// the insert), or, with drop, never forwards the insert at all.
type insertTrap struct {
	target string
	hold   time.Duration
	drop   bool
	armed  atomic.Bool
	caught atomic.Bool
}

func (p *insertTrap) serve(t *testing.T, ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go p.pipe(t, c)
	}
}

func (p *insertTrap) pipe(t *testing.T, c net.Conn) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	var held atomic.Bool
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // client → server
		defer wg.Done()
		defer s.Close()
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				msg := buf[:n]
				if bytes.Contains(msg, []byte("insert\x00")) && bytes.Contains(msg, []byte(mongo.EventsCollection)) && p.armed.CompareAndSwap(true, false) {
					p.caught.Store(true)
					if p.drop {
						continue
					}
					held.Store(true)
				}
				if _, err := s.Write(msg); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	go func() { // server → client
		defer wg.Done()
		defer c.Close()
		buf := make([]byte, 64<<10)
		for {
			n, err := s.Read(buf)
			if n > 0 {
				if held.CompareAndSwap(true, false) {
					time.Sleep(p.hold)
				}
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
					t.Logf("proxy: %v", err)
				}
				return
			}
		}
	}()
	wg.Wait()
}

// trapped opens the store through an insertTrap.
func trapped(t *testing.T, p *insertTrap) *mongo.Store {
	t.Helper()
	u, err := url.Parse(ferret.DB(t))
	if err != nil {
		t.Fatal(err)
	}
	p.target = u.Host
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go p.serve(t, ln)
	u.Host = ln.Addr().String()
	return openURI(t, u.String(), mongoOptions())
}

// An insert whose reply never comes back in time (the server took it, the
// client gave up) is settled, not reported lost: the store marks its seq
// and finds the event there, so the append succeeds. Before, the caller
// was told "not stored" (a user told to send the message again) while the
// message was stored and then answered.
func TestInsertThatLandedAfterATimeoutSucceeds(t *testing.T) {
	t.Parallel()
	p := &insertTrap{hold: 1500 * time.Millisecond}
	s := trapped(t, p)
	newChat(t, s, "a", "c")
	if _, err := s.AppendEvent(context.Background(), "a", "c", store.Event{Type: "x"}, false); err != nil {
		t.Fatal(err)
	}
	p.armed.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	ev, err := s.AppendEvent(ctx, "a", "c", store.Event{Type: "late"}, true)
	if !p.caught.Load() {
		t.Fatal("the insert was not caught")
	}
	if err != nil {
		t.Fatalf("AppendEvent = %v; want it settled as stored", err)
	}
	evs, err := s.ListEvents(context.Background(), "a", "c", 0, 10)
	if err != nil || fmt.Sprint(seqsOf(evs)) != "[1 2]" || evs[1].Type != "late" || ev.Seq != 2 {
		t.Fatalf("events %v (%v), appended at seq %d; want [1 2], the late one at 2", seqsOf(evs), err, ev.Seq)
	}
}

// An insert that never reached the server is reported failed, and stays
// failed: its seq is marked, so it cannot land later behind the caller's
// back (who was told to send it again).
func TestInsertThatNeverLandedFails(t *testing.T) {
	t.Parallel()
	p := &insertTrap{drop: true}
	s := trapped(t, p)
	newChat(t, s, "a", "c")
	p.armed.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := s.AppendEvent(ctx, "a", "c", store.Event{Type: "lost"}, true); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("AppendEvent = %v; want store.ErrUnavailable", err)
	}
	ev, err := s.AppendEvent(context.Background(), "a", "c", store.Event{Type: "next"}, true)
	if err != nil {
		t.Fatal(err)
	}
	evs, _ := s.ListEvents(context.Background(), "a", "c", 0, 10)
	if fmt.Sprint(seqsOf(evs)) != "[2]" || ev.Seq != 2 {
		t.Fatalf("events %v; want only the next one, at seq 2 (seq 1 marked lost)", seqsOf(evs))
	}
}

// An insert that timed out, whose seq another writer's event holds (a
// server that handed the seq out twice), is not taken as stored: the event
// there is not ours. The append takes the next seq. Before, it reported the
// other event's seq as its own and its event was lost (seen under load on
// FerretDB: a run_start "stored" at a usage_delta's seq, its reply then
// answered twice).
func TestInsertWhoseSeqAnotherEventHoldsTakesTheNext(t *testing.T) {
	t.Parallel()
	p := &insertTrap{drop: true}
	s := trapped(t, p)
	newChat(t, s, "a", "c")
	p.armed.Store(true)
	type result struct {
		ev  store.Event
		err error
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		ev, err := s.AppendEvent(ctx, "a", "c", store.Event{Type: "ours"}, true)
		done <- result{ev, err}
	}()
	for deadline := time.Now().Add(10 * time.Second); !p.caught.Load(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the insert was not caught")
		}
	}
	if err := s.InsertAt(context.Background(), "a", "c", 1, "other"); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("AppendEvent = %v; want it stored at the next seq", r.err)
	}
	evs, err := s.ListEvents(context.Background(), "a", "c", 0, 10)
	if err != nil || fmt.Sprint(seqsOf(evs)) != "[1 2]" || evs[0].Type != "other" || evs[1].Type != "ours" || r.ev.Seq != 2 {
		t.Fatalf("events %v (%v), appended at seq %d; want the other at 1, ours at 2", describeEvents(evs), err, r.ev.Seq)
	}
}

func describeEvents(evs []store.Event) string {
	var b bytes.Buffer
	for _, e := range evs {
		fmt.Fprintf(&b, " %d:%s", e.Seq, e.Type)
	}
	return b.String()
}
