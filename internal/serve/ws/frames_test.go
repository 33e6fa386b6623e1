package ws

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// The frames the writer puts together itself read back, through gorilla's
// reader, as the frames sent: one of each length encoding (7-bit, 16-bit,
// 64-bit), live and in a replay that goes out in one write.
func TestFramesOfEverySize(t *testing.T) {
	_, url := socketServer(t, Options{})
	texts := []string{"short", strings.Repeat("m", 125), strings.Repeat("n", 126), strings.Repeat("x", 300),
		strings.Repeat("y", 65535), strings.Repeat("z", 70000)}
	c, _, err := websocket.DefaultDialer.Dial(url+"c1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	readUntil(t, c, `"chat.input_request"`)
	for _, text := range texts {
		b, _ := json.Marshal(map[string]any{"type": "user.input.submit", "text": text})
		if err := c.WriteMessage(websocket.TextMessage, b); err != nil {
			t.Fatal(err)
		}
		// The user's message comes back (seq'd), then the echo model's reply.
		if got := userTexts(t, readUntil(t, c, `"chat.input_request"`)); len(got) != 1 || got[0] != text {
			t.Fatalf("live frames carried user texts of lengths %v, want one of %d", lengths(got), len(text))
		}
	}
	// A second socket gets the transcript in a replay.
	c2, _, err := websocket.DefaultDialer.Dial(url+"c1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	got := userTexts(t, readUntil(t, c2, `"chat.resume_boundary"`))
	if len(got) != len(texts) {
		t.Fatalf("replay carried %d user texts, want %d", len(got), len(texts))
	}
	for i := range texts {
		if got[i] != texts[i] {
			t.Fatalf("replayed text %d has length %d, want %d", i, len(got[i]), len(texts[i]))
		}
	}
}

// userTexts decodes every frame (each must be a JSON object) and returns the
// content of the user's chat.text frames.
func userTexts(t *testing.T, frames [][]byte) []string {
	t.Helper()
	var out []string
	for _, f := range frames {
		var m struct {
			Type    string `json:"type"`
			Role    string `json:"role"`
			Content string `json:"content"`
		}
		if err := json.Unmarshal(f, &m); err != nil {
			t.Fatalf("frame is not JSON: %v: %.80s", err, f)
		}
		if m.Type == "chat.text" && m.Role == "user" {
			out = append(out, m.Content)
		}
	}
	return out
}

func lengths(s []string) []int {
	n := make([]int, len(s))
	for i := range s {
		n[i] = len(s[i])
	}
	return n
}
