package main_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
	"github.com/mozaiks/mozaiks/internal/testutil/ferret"
)

// liveSocket reads one socket's frames in the background.
type liveSocket struct {
	c      *websocket.Conn
	mu     sync.Mutex
	frames []map[string]any
	more   chan struct{}
	err    error
}

func dialLive(t *testing.T, url string) *liveSocket {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &liveSocket{c: c, more: make(chan struct{}, 1)}
	t.Cleanup(func() { c.Close() })
	go func() {
		for {
			var f map[string]any
			err := c.ReadJSON(&f)
			s.mu.Lock()
			if err != nil {
				s.err = err
			} else if f["type"] != "ping" {
				s.frames = append(s.frames, f)
			}
			s.mu.Unlock()
			select {
			case s.more <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	return s
}

// until waits for a frame after index from that satisfies ok; it returns
// its index.
func (s *liveSocket) until(t *testing.T, name string, from int, ok func(map[string]any) bool) int {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		s.mu.Lock()
		for i := from; i < len(s.frames); i++ {
			if ok(s.frames[i]) {
				s.mu.Unlock()
				return i
			}
		}
		n, err := len(s.frames), s.err
		s.mu.Unlock()
		if err != nil {
			t.Fatalf("%s: socket closed: %v", name, err)
		}
		select {
		case <-s.more:
		case <-deadline:
			t.Fatalf("%s: no such frame within 30 s (%d frames)", name, n)
		}
	}
}

func (s *liveSocket) snapshot() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.frames)
}

func seqOf(f map[string]any) int64 {
	n, _ := f["seq"].(float64)
	return int64(n)
}

func typeIs(typ string) func(map[string]any) bool {
	return func(f map[string]any) bool { return f["type"] == typ }
}

// Two and three serve processes on one FerretDB, a socket on each: every
// run, whichever replica runs it, reaches every socket live (its streamed
// chunks too), and each socket gets the chat's stored events once each, in
// seq order, exactly as stored. One process alone (the relay then reads and
// writes nothing) still serves its own socket so.
func TestReplicasShareLiveFrames(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("%d replicas", n), func(t *testing.T) {
			t.Parallel()
			db := ferret.NewServer(t)
			fake := llmtest.New(t)
			env := []string{"MONGO_URI=" + db.URI + fmt.Sprintf("replicas%d", n), "OPENAI_BASE_URL=" + fake.URL(), "OPENAI_API_KEY=sk-test"}
			procs := make([]*proc, n)
			for i := range procs {
				procs[i] = serve(t, t.TempDir(), env...)
				// The banner reaches us through a pipe: give it a moment.
				deadline := time.Now().Add(5 * time.Second)
				for !strings.Contains(procs[i].stderr.String(), "replicas   live frames shared through MongoDB by polling") {
					if time.Now().After(deadline) {
						t.Errorf("replica %d banner does not say how replicas share frames:\n%s", i, procs[i].stderr)
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			// Replicas announce themselves every 3 s: wait until each knows
			// of all the others (before, they write each other no chunks).
			for i, p := range procs {
				deadline := time.Now().Add(30 * time.Second)
				for {
					var h struct {
						Relay struct {
							Mode   string
							Others *int `json:"other_replicas"`
						} `json:"relay"`
					}
					call(t, "GET", p.url+"/api/health", nil, &h)
					if h.Relay.Mode != "poll" {
						t.Fatalf("replica %d relay mode %q, want poll", i, h.Relay.Mode)
					}
					if h.Relay.Others != nil && *h.Relay.Others == n-1 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("replica %d does not hear of the %d others", i, n-1)
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
			path := "/ws/assistant/default/chat-rep/u1"
			socks := make([]*liveSocket, n)
			for i, p := range procs {
				socks[i] = dialLive(t, "ws"+strings.TrimPrefix(p.url, "http")+path)
				socks[i].until(t, fmt.Sprintf("replica %d boundary", i), 0, typeIs("chat.resume_boundary"))
			}
			// The first connect started the workflow, which asks the user
			// first: every socket sees the question (live or replayed).
			for i, s := range socks {
				s.until(t, fmt.Sprintf("replica %d first question", i), 0, typeIs("chat.input_request"))
			}
			start := make([]int, n)
			for i, s := range socks {
				start[i] = len(s.snapshot())
			}
			const rounds = 4
			for r := range rounds {
				from := r % n // the replica whose socket sends, and which runs the reply
				reply := fmt.Sprintf("reply %d from far away, in several chunks", r)
				fake.Enqueue(llmtest.Reply{Text: reply, Chunks: 6, TokenDelay: 15 * time.Millisecond})
				waitAwaiting(t, procs[from].url)
				if err := socks[from].c.WriteJSON(map[string]any{"type": "user.input.submit", "text": fmt.Sprintf("question %d", r)}); err != nil {
					t.Fatal(err)
				}
				for i, s := range socks {
					name := fmt.Sprintf("round %d replica %d", r, i)
					at := s.until(t, name, start[i], func(f map[string]any) bool { return f["type"] == "chat.text" && f["content"] == reply })
					s.until(t, name+" next question", at, typeIs("chat.input_request"))
				}
			}
			// Truth: every stored event after the sockets' common start, as
			// a fresh socket replays them.
			var from int64 = 1 << 62
			for i, s := range socks {
				fs := s.snapshot()
				from = min(from, lastSeqBefore(fs, start[i]))
			}
			truth := dialLive(t, "ws"+strings.TrimPrefix(procs[0].url, "http")+path+fmt.Sprintf("?after_seq=%d", from))
			end := truth.until(t, "replay", 0, typeIs("chat.resume_boundary"))
			var want []int64
			for _, f := range truth.snapshot()[:end] {
				if s := seqOf(f); s > 0 {
					want = append(want, s)
				}
			}
			for i, s := range socks {
				fs := s.snapshot()
				var got []int64
				prints := 0
				for _, f := range fs {
					if sq := seqOf(f); sq > from {
						got = append(got, sq)
					}
					if f["type"] == "chat.print" {
						prints++
					}
				}
				if !slices.Equal(got, want) {
					t.Errorf("replica %d socket saw seqs %v\nstored: %v", i, got, want)
				}
				// Streamed chunks reach every replica, and before the message
				// they stream: the reply was live, not replayed.
				if prints < rounds {
					t.Errorf("replica %d socket saw %d chat.print frames over %d replies", i, prints, rounds)
				}
				checkChunksBeforeText(t, i, fs)
				t.Logf("replica %d socket: %d stored frames after seq %d, %d chunks", i, len(got), from, prints)
			}
		})
	}
}

// lastSeqBefore is the highest seq among the first n frames.
func lastSeqBefore(fs []map[string]any, n int) int64 {
	var last int64
	for _, f := range fs[:n] {
		last = max(last, seqOf(f))
		if f["type"] == "chat.resume_boundary" {
			if d, ok := f["data"].(map[string]any); ok {
				if v, ok := d["last_seq"].(float64); ok {
					last = max(last, int64(v))
				}
			}
		}
	}
	return last
}

// checkChunksBeforeText: every chunk a socket got comes before the
// chat.text of its message, and the chunks of a message begin its text.
func checkChunksBeforeText(t *testing.T, replica int, fs []map[string]any) {
	t.Helper()
	chunks := map[string]string{}
	done := map[string]bool{}
	for _, f := range fs {
		id, _ := f["message_id"].(string)
		switch f["type"] {
		case "chat.print":
			if done[id] {
				t.Errorf("replica %d: chunk of message %s after its text", replica, id)
			}
			c, _ := f["content"].(string)
			chunks[id] += c
		case "chat.text":
			done[id] = true
			// A chunk that would come after its text is dropped, so the
			// chunks received are a prefix of the text (all of it, unless
			// the writing replica's store was too slow to keep up).
			text, _ := f["content"].(string)
			if got, ok := chunks[id]; ok && !strings.HasPrefix(text, got) {
				t.Errorf("replica %d: chunks of %s make %q, not a start of the text %q", replica, id, got, text)
			}
		}
	}
}

// waitAwaiting waits until the chat is stored as awaiting input: the run
// that asked has saved its state. (FerretDB loses one of two concurrent
// updates of a document from two processes; a message sent while the other
// replica still writes the session would race with that write.)
func waitAwaiting(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var s struct{ Status string }
		call(t, "GET", url+"/api/sessions/chat-rep?user_id=u1", nil, &s)
		if s.Status == "awaiting_input" {
			time.Sleep(300 * time.Millisecond) // the lease release follows the status
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("chat not awaiting input within 30 s (status %q)", s.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
