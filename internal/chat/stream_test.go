package chat

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/engine"
)

// printed is what a client appending chat.print content shows per message,
// and the frames it took.
func printed(t *testing.T, fs []Frame) (shown map[string]string, frames []string) {
	t.Helper()
	shown = map[string]string{}
	for _, f := range fs {
		var raw map[string]any
		if err := json.Unmarshal(f.Bytes, &raw); err != nil {
			t.Fatal(err)
		}
		p := struct {
			Type, Content, MessageID string
			Replace                  bool
		}{str(raw["type"]), str(raw["content"]), str(raw["message_id"]), raw["replace"] == true}
		if p.Type != "chat.print" {
			frames = append(frames, p.Type)
			continue
		}
		if p.Replace {
			shown[p.MessageID] = ""
		}
		shown[p.MessageID] += p.Content
		frames = append(frames, p.MessageID+":"+p.Content)
	}
	return shown, frames
}

func TestChunksJoinedWithinTheInterval(t *testing.T) {
	m := NewManager(Options{SingleProcess: true})
	sub := m.Subscribe("app", "c1", 100)
	r := m.room("app", "c1")
	c := &chunks{m: m, r: r, every: time.Hour} // nothing goes by the timer here
	for _, p := range []engine.Print{
		{Agent: "A", MessageID: "m1", Content: "Hel"}, // first of a message: at once
		{Agent: "A", MessageID: "m1", Content: "lo "},
		{Agent: "A", MessageID: "m1", Content: "there"},
		{Agent: "A", MessageID: "m2", Content: "Sec"}, // another message: what is held goes first, then this at once
		{Agent: "A", MessageID: "m2", Content: "ond"},
		{Agent: "A", MessageID: "m2", Content: "Retried", Restart: true}, // never joined to what came before
		{Agent: "A", MessageID: "m2", Content: " reply"},
	} {
		c.print(p)
	}
	c.flush()
	shown, frames := printed(t, sub.Take(nil))
	want := []string{"m1:Hel", "m1:lo there", "m2:Sec", "m2:ond", "m2:Retried reply"}
	if strings.Join(frames, "|") != strings.Join(want, "|") {
		t.Errorf("frames %q, want %q", frames, want)
	}
	if shown["m1"] != "Hello there" || shown["m2"] != "Retried reply" {
		t.Errorf("a client shows %q", shown)
	}

	// Off: every chunk is a frame.
	c = &chunks{m: m, r: r, every: -1}
	c.print(engine.Print{Agent: "A", MessageID: "m3", Content: "a"})
	c.print(engine.Print{Agent: "A", MessageID: "m3", Content: "b"})
	if _, frames := printed(t, sub.Take(nil)); len(frames) != 2 {
		t.Errorf("off: frames %q", frames)
	}
}

// A chunk held for the interval goes when the interval is up, with nothing
// else emitted after it.
func TestHeldChunkSentWhenTheIntervalIsUp(t *testing.T) {
	m := NewManager(Options{SingleProcess: true})
	sub := m.Subscribe("app", "c1", 100)
	c := &chunks{m: m, r: m.room("app", "c1"), every: 20 * time.Millisecond}
	c.print(engine.Print{Agent: "A", MessageID: "m1", Content: "one "})
	c.print(engine.Print{Agent: "A", MessageID: "m1", Content: "two"})
	var got []Frame
	for deadline := time.Now().Add(5 * time.Second); len(got) < 2 && time.Now().Before(deadline); {
		got = append(got, sub.Take(nil)...)
		time.Sleep(5 * time.Millisecond)
	}
	if _, frames := printed(t, got); strings.Join(frames, "|") != "m1:one |m1:two" {
		t.Errorf("frames %q", frames)
	}
}
