package ws

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mozaiks/mozaiks/internal/chat"
	"github.com/mozaiks/mozaiks/internal/engine"
	"github.com/mozaiks/mozaiks/internal/llm"
	"github.com/mozaiks/mozaiks/internal/store/sqlite"
	"github.com/mozaiks/mozaiks/internal/workflow"
	"github.com/mozaiks/mozaiks/workflows"
)

const wait = 10 * time.Second

// socketServer serves chat sockets of a real runtime (embedded store, the
// offline echo model) at ws://.../{chat_id}.
func socketServer(t *testing.T, o Options) (*Handler, string) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	set, _ := workflow.LoadSet("", workflows.FS)
	eng := engine.New(engine.Options{Workflows: set, LLM: llm.NewEcho(), DefaultModel: "echo"})
	chats := chat.NewManager(chat.Options{Store: st, Runner: eng, Workflows: set, Owner: "test", SingleProcess: true})
	h := NewHandler(chats, o)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeChat(w, r, Params{Workflow: "assistant", AppID: "app", ChatID: strings.TrimPrefix(r.URL.Path, "/"), UserID: "u1"})
	}))
	t.Cleanup(func() {
		h.CloseAll()
		srv.Close()
		for deadline := time.Now().Add(wait); h.Connections() > 0 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		chats.Shutdown(ctx)
		st.Close()
	})
	return h, "ws" + strings.TrimPrefix(srv.URL, "http") + "/"
}

// readUntil reads frames until one contains marker and returns them all.
func readUntil(t *testing.T, c *websocket.Conn, marker string) [][]byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(wait))
	var got [][]byte
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("reading until %s: %v (after %d frames)", marker, err, len(got))
		}
		got = append(got, msg)
		if bytes.Contains(msg, []byte(marker)) {
			return got
		}
	}
}

// writers counts the sockets whose writes a goroutine owns.
func writers(h *Handler) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for c := range h.conns {
		c.mu.Lock()
		if c.writing {
			n++
		}
		c.mu.Unlock()
	}
	return n
}

// settle waits until no socket has a writer and the goroutine count is at
// most limit; it returns the last counts seen.
func settle(h *Handler, limit int) (writing, goroutines int) {
	for deadline := time.Now().Add(wait); ; time.Sleep(20 * time.Millisecond) {
		writing, goroutines = writers(h), runtime.NumGoroutine()
		if (writing == 0 && goroutines <= limit) || time.Now().After(deadline) {
			return writing, goroutines
		}
	}
}

// goroutines is the start of a goroutine dump, to say what is left.
func goroutines() string {
	var b strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
	return b.String()[:min(b.Len(), 4000)]
}

// An idle socket holds one goroutine (its reader) and no writer; a frame
// queued to it starts a writer, arrives in order, and the writer goes away
// again.
func TestIdleSocketsHaveNoWriter(t *testing.T) {
	// Not parallel: it counts the process's goroutines.
	const n = 200
	h, base := socketServer(t, Options{})
	before := runtime.NumGoroutine()
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		c, _, err := websocket.DefaultDialer.Dial(fmt.Sprintf("%sidle-%d", base, i), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		readUntil(t, c, `"chat.resume_boundary"`) // the connect: meta, greeting, input request, boundary
		conns[i] = c
	}
	// Per socket: the server's reader. The client ends start none (they
	// are read here, not by a goroutine); a few are the runtime's own.
	limit := before + n + 20
	if writing, g := settle(h, limit); writing != 0 || g > limit {
		t.Fatalf("%d idle sockets: %d still have a writer, %d goroutines (%d before, want at most %d)\n%s", n, writing, g, before, limit, goroutines())
	}

	// Queue frames to idle sockets, the way the reader queues replies.
	h.mu.Lock()
	var some []*conn
	for c := range h.conns {
		if len(some) < 3 {
			some = append(some, c)
		}
	}
	h.mu.Unlock()
	for _, c := range some {
		for i := range 5 {
			if !c.send(chat.Simple("note", map[string]any{"n": i})) {
				t.Fatal("send to an idle socket failed")
			}
		}
	}
	for _, sc := range some {
		var client *websocket.Conn
		for i, c := range conns {
			if sc.p.ChatID == fmt.Sprintf("idle-%d", i) {
				client = c
			}
		}
		// The chat's own frames may come between; the notes come in order.
		_ = client.SetReadDeadline(time.Now().Add(wait))
		for i := 0; i < 5; {
			_, msg, err := client.ReadMessage()
			if err != nil {
				t.Fatalf("%s: note %d: %v", sc.p.ChatID, i, err)
			}
			if !bytes.Contains(msg, []byte(`"chat.note"`)) {
				continue
			}
			if want := fmt.Sprintf(`"n":%d`, i); !bytes.Contains(msg, []byte(want)) {
				t.Fatalf("note %d to %s = %s, want %s", i, sc.p.ChatID, msg, want)
			}
			i++
		}
	}
	if writing, g := settle(h, limit); writing != 0 || g > limit {
		t.Fatalf("after the frames: %d sockets still have a writer, %d goroutines (want at most %d)\n%s", writing, g, limit, goroutines())
	}

	// A live frame of the chat wakes a writer too: the next turn streams.
	c := conns[0]
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"user.input.submit","text":"hello there"}`)); err != nil {
		t.Fatal(err)
	}
	echoed := false
	for _, f := range readUntil(t, c, `"chat.input_request"`) {
		echoed = echoed || (bytes.Contains(f, []byte(`"hello there"`)) && bytes.Contains(f, []byte(`"chat.text"`)))
	}
	if !echoed {
		t.Fatal("no chat.text with the message before the next input request")
	}
}

// Heartbeats reach an idle socket (a ping frame and a ping control frame)
// from its timer, and the socket still has no writer between them.
func TestIdleSocketPinged(t *testing.T) {
	t.Parallel()
	h, base := socketServer(t, Options{PingInterval: 100 * time.Millisecond})
	c, _, err := websocket.DefaultDialer.Dial(base+"pinged", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	readUntil(t, c, `"chat.resume_boundary"`)
	controls := make(chan struct{}, 16)
	c.SetPingHandler(func(string) error {
		select {
		case controls <- struct{}{}:
		default:
		}
		return nil
	})
	for range 3 {
		readUntil(t, c, `{"type":"ping"}`)
	}
	select {
	case <-controls:
	case <-time.After(wait):
		t.Fatal("no ping control frame")
	}
	// Between heartbeats nothing owns the writes.
	var seenIdle bool
	for deadline := time.Now().Add(wait); !seenIdle && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		seenIdle = writers(h) == 0
	}
	if !seenIdle {
		t.Fatal("the pinged socket kept a writer")
	}
}
