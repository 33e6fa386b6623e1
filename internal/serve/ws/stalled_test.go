//go:build !windows

package ws

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mozaiks/mozaiks/internal/chat"
	"github.com/mozaiks/mozaiks/internal/store"
	"github.com/mozaiks/mozaiks/internal/testutil/slowreader"
)

// A client that stops reading must not hold its chat's runs up: with the
// socket's buffers full, the runs still end (their frames wait in the
// socket's queue), and everything reaches the client whole and in order
// once it reads again.
func TestRunNotHeldByASocketThatStopsReading(t *testing.T) {
	h, base := socketServer(t, Options{WriteTimeout: time.Minute})
	// A small receive buffer, so that the runs' frames fill the socket.
	c, _, err := slowreader.Dialer().Dial(base+"chat-full", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	readUntil(t, c, `"chat.input_request"`)

	// 15 messages of 250 KB (fewer than the 16 acks a socket queues before its
	// reader waits for the writer): each run sends its echo, its chunks and its
	// reply, 11 MB in all, far more than the kernel buffers hold (4 MB here).
	const msgs = 15
	words := make([]string, 40000)
	for i := range words {
		words[i] = "word" + string(rune('a'+i%26))
	}
	text := strings.Join(words, " ")
	for range msgs {
		msg, _ := json.Marshal(map[string]any{"type": "user.input.submit", "text": text})
		if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
			t.Fatal(err)
		}
	}
	// The client reads nothing until the runs are over.
	for deadline := time.Now().Add(wait); ; time.Sleep(20 * time.Millisecond) {
		sess, err := h.chats.Get(context.Background(), "app", "chat-full", chat.SameUser("u1"))
		if err == nil && sess.Status == store.StatusAwaitingInput && sess.MessageCount >= 1+2*msgs {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the runs did not end while their socket was not read (%d messages, status %q, err %v)",
				sess.MessageCount, sess.Status, err)
		}
	}

	var printed, replies strings.Builder
	var lastSeq int64
	_ = c.SetReadDeadline(time.Now().Add(wait))
	for n := 0; n < msgs; {
		_, f, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("after %d replies: %v", n, err)
		}
		var fr struct {
			Type string `json:"type"`
			Seq  int64  `json:"seq"`
			Data struct {
				Content string `json:"content"`
				Agent   string `json:"agent"`
			} `json:"data"`
		}
		if err := json.Unmarshal(f, &fr); err != nil {
			t.Fatalf("frame is not JSON (%v): %.200s", err, f)
		}
		if fr.Seq > 0 {
			if fr.Seq <= lastSeq {
				t.Fatalf("seq %d after %d", fr.Seq, lastSeq)
			}
			lastSeq = fr.Seq
		}
		switch {
		case fr.Type == "chat.print":
			printed.WriteString(fr.Data.Content) // also at the top level, as ChatUI reads it
		case fr.Type == "chat.text" && fr.Data.Agent != "user":
			if want := "[echo] You said: " + text; fr.Data.Content != want {
				t.Fatalf("reply %d: %d bytes, want %d bytes of the echo", n, len(fr.Data.Content), len(want))
			}
			replies.WriteString(fr.Data.Content)
			n++
		}
	}
	if printed.String() != replies.String() {
		t.Fatalf("chunks %d bytes, replies %d bytes", printed.Len(), replies.Len())
	}
}
