//go:build realmongo

// This test needs a MongoDB whose single-document updates are atomic (any
// real MongoDB): go test -tags realmongo -run TestRollingRestartUnderLoad
// ./cmd/mozaiks with MOZAIKS_TEST_MONGO_URI set. On FerretDB v1, the test
// server the other tests use, concurrent updates of one document from two
// processes lose each other's fields (a lease taken by one replica writes
// back the chat's status as it read it), so the replicas' bookkeeping
// cannot hold there; that is FerretDB, not the runtime.

package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
)

// A rolling restart of both replicas (SIGTERM, then a new process) while 50
// clients chat: a client whose replica goes away reconnects to the other
// one. Afterwards no chat is stuck in progress, and every message the server
// acknowledged has exactly one answer.
func TestRollingRestartUnderLoad(t *testing.T) {
	t.Parallel()
	uri := os.Getenv("MOZAIKS_TEST_MONGO_URI")
	if uri == "" {
		t.Fatal("set MOZAIKS_TEST_MONGO_URI to a MongoDB (a database name is appended)")
	}
	fake := llmtest.New(t, llmtest.WithResponder(func(req llmtest.Request) llmtest.Reply {
		last := req.Messages[len(req.Messages)-1]
		return llmtest.Reply{Text: "answer to " + last.Content, Chunks: 4, TokenDelay: 25 * time.Millisecond}
	}))
	env := []string{"MONGO_URI=" + strings.TrimSuffix(uri, "/") + "/rolling" + strconv.FormatInt(time.Now().UnixNano(), 36), "OPENAI_BASE_URL=" + fake.URL(), "OPENAI_API_KEY=sk-test",
		"MOZAIKS_RUN_LEASE=2s", "MOZAIKS_SHUTDOWN_TIMEOUT=5s"}
	var mu sync.Mutex
	replicas := []*proc{serve(t, t.TempDir(), env...), serve(t, t.TempDir(), env...)}
	live := func(i int) *proc {
		mu.Lock()
		defer mu.Unlock()
		return replicas[i%len(replicas)]
	}

	const clients, perClient = 50, 4
	stop := make(chan struct{})
	acked := make([][]string, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() { acked[i] = chatClient(t, i, live, perClient, stop) })
	}
	var retired []string
	// Restart each replica in turn while the clients chat.
	for i := range replicas {
		time.Sleep(1500 * time.Millisecond)
		old := live(i)
		old.signal(syscall.SIGTERM)
		if code := old.wait(30 * time.Second); code != 0 {
			t.Errorf("replica %d exited %d on SIGTERM", i, code)
		}
		retired = append(retired, old.stderr.String())
		p := serve(t, t.TempDir(), env...)
		mu.Lock()
		replicas[i] = p
		mu.Unlock()
	}
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()

	total := 0
	for i := range clients {
		chatID := fmt.Sprintf("roll-%d", i)
		url := live(0).url
		deadline := time.Now().Add(60 * time.Second)
		for {
			var s struct{ Status string }
			call(t, "GET", url+"/api/sessions/"+chatID+"?user_id="+fmt.Sprintf("u%d", i), nil, &s)
			if s.Status == "awaiting_input" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still %q 60 s after the restarts", chatID, s.Status)
			}
			time.Sleep(200 * time.Millisecond)
		}
		evs := replayChat(t, live(0), chatID, i)
		answers := map[string]int{}
		stored := map[string]int{}
		for _, f := range evs {
			if f.Type != "chat.text" {
				continue
			}
			c, _ := f.Data["content"].(string)
			if f.Data["agent"] == "user" {
				stored[c]++
			} else if q, ok := strings.CutPrefix(c, "answer to "); ok {
				answers[q]++
			}
		}
		for _, q := range acked[i] {
			if stored[q] != 1 || answers[q] != 1 {
				t.Errorf("%s: acknowledged %q stored %d times, answered %d times", chatID, q, stored[q], answers[q])
			}
		}
		for q, n := range stored {
			if n != 1 || answers[q] != 1 {
				t.Errorf("%s: stored %q %d times, answered %d times", chatID, q, n, answers[q])
			}
		}
		total += len(acked[i])
	}
	t.Logf("%d clients, %d acknowledged messages, all answered once", clients, total)
	if t.Failed() {
		for i := range replicas {
			t.Logf("replica %d log:\n%s", i, live(i).stderr)
		}
		for _, p := range retired {
			t.Logf("retired replica log:\n%s", p)
		}
	}
}

// chatClient chats on its own chat until stop (or perClient messages),
// moving to another replica when its socket goes away. It returns the
// messages the server acknowledged.
func chatClient(t *testing.T, i int, live func(int) *proc, perClient int, stop chan struct{}) []string {
	chatID, user := fmt.Sprintf("roll-%d", i), fmt.Sprintf("u%d", i)
	var acked []string
	attempt := i
	dial := func() *websocket.Conn {
		for {
			select {
			case <-stop:
				return nil
			default:
			}
			c, _, err := websocket.DefaultDialer.Dial(wsBase(live(attempt))+"/ws/assistant/default/"+chatID+"/"+user, nil)
			attempt++
			if err == nil {
				return c
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	c := dial()
	for k := 0; k < perClient && c != nil; {
		q := fmt.Sprintf("q%d-%d", i, k)
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if err := c.WriteJSON(map[string]any{"type": "user.input.submit", "text": q}); err != nil {
			c.Close()
			c = dial()
			continue
		}
		answered, ok := false, true
		for !answered {
			_, msg, err := c.ReadMessage()
			if err != nil {
				ok = false
				break
			}
			var f struct {
				Type    string `json:"type"`
				Content string `json:"content"`
				Data    struct {
					ErrorCode string `json:"error_code"`
				} `json:"data"`
			}
			_ = json.Unmarshal(msg, &f)
			switch {
			case f.Type == "chat.input_ack":
				acked = append(acked, q)
			case f.Type == "chat.error" && f.Data.ErrorCode != "":
				t.Logf("client %d: %s", i, msg)
				answered = true // the message was refused; move on
			case f.Type == "chat.text" && f.Content == "answer to "+q:
				answered = true
			}
		}
		if !ok {
			// The replica went away: the message, if acknowledged, is
			// answered by whoever takes the chat over.
			c.Close()
			c = dial()
		}
		k++
	}
	if c != nil {
		c.Close()
	}
	return acked
}

func replayChat(t *testing.T, p *proc, chatID string, i int) []storedFrame {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(wsBase(p)+"/ws/assistant/default/"+chatID+fmt.Sprintf("/u%d", i)+"?after_seq=0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out []storedFrame
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("replay %s: %v", chatID, err)
		}
		var f storedFrame
		_ = json.Unmarshal(msg, &f)
		if f.Type == "chat.resume_boundary" {
			return out
		}
		if f.Seq > 0 {
			out = append(out, f)
		}
	}
}
