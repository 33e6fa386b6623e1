package ws

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/chat"
)

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// chunk is a chat.print as the runtime encodes it.
func chunk(i int, agent, msg, content string, replace bool) chat.Frame {
	d := map[string]any{"kind": "print", "agent": agent, "content": content, "message_id": msg}
	if replace {
		d["restart"] = true
	}
	return chat.EncodePrint(t0.Add(time.Duration(i)*time.Millisecond), d)
}

func TestCoalesce(t *testing.T) {
	t.Parallel()
	text := chat.Encode("chat.text", 7, t0, map[string]any{"kind": "text", "agent": "A", "content": "abc", "message_id": "m1"}, false)
	odd := chat.EncodePrint(t0, map[string]any{"kind": "print", "agent": "A", "content": "x", "message_id": "m1", "extra": 1})
	noID := chat.EncodePrint(t0, map[string]any{"kind": "print", "agent": "A", "content": "y"})
	for _, tc := range []struct {
		name string
		in   []chat.Frame
		want []chat.Frame
	}{
		{"one chunk", []chat.Frame{chunk(0, "A", "m1", "a", false)}, []chat.Frame{chunk(0, "A", "m1", "a", false)}},
		{"run of one message", []chat.Frame{chunk(0, "A", "m1", "a", false), chunk(1, "A", "m1", "b ", false), chunk(2, "A", "m1", "c\"<", false)},
			[]chat.Frame{chunk(2, "A", "m1", "ab c\"<", false)}},
		{"two messages", []chat.Frame{chunk(0, "A", "m1", "a", false), chunk(1, "A", "m1", "b", false), chunk(2, "A", "m2", "c", false), chunk(3, "A", "m2", "d", false)},
			[]chat.Frame{chunk(1, "A", "m1", "ab", false), chunk(3, "A", "m2", "cd", false)}},
		{"two agents", []chat.Frame{chunk(0, "A", "m1", "a", false), chunk(1, "B", "m1", "b", false)},
			[]chat.Frame{chunk(0, "A", "m1", "a", false), chunk(1, "B", "m1", "b", false)}},
		{"replace starts a new run", []chat.Frame{chunk(0, "A", "m1", "a", false), chunk(1, "A", "m1", "b", false), chunk(2, "A", "m1", "c", true), chunk(3, "A", "m1", "d", false)},
			[]chat.Frame{chunk(1, "A", "m1", "ab", false), chunk(3, "A", "m1", "cd", true)}},
		{"replace after replace", []chat.Frame{chunk(0, "A", "m1", "a", true), chunk(1, "A", "m1", "b", true)},
			[]chat.Frame{chunk(0, "A", "m1", "a", true), chunk(1, "A", "m1", "b", true)}},
		{"other frame between", []chat.Frame{chunk(0, "A", "m1", "a", false), text, chunk(1, "A", "m1", "b", false)},
			[]chat.Frame{chunk(0, "A", "m1", "a", false), text, chunk(1, "A", "m1", "b", false)}},
		{"other shapes kept", []chat.Frame{chunk(0, "A", "m1", "a", false), odd, chunk(1, "A", "m1", "b", false), noID, noID},
			[]chat.Frame{chunk(0, "A", "m1", "a", false), odd, chunk(1, "A", "m1", "b", false), noID, noID}},
		{"stored frames kept", []chat.Frame{text, text}, []chat.Frame{text, text}},
	} {
		got := coalesce(slices.Clone(tc.in))
		if len(got) != len(tc.want) {
			t.Errorf("%s: %d frames, want %d: %s", tc.name, len(got), len(tc.want), frameList(got))
			continue
		}
		for i := range got {
			if got[i].Type != tc.want[i].Type || got[i].Seq != tc.want[i].Seq || string(got[i].Bytes) != string(tc.want[i].Bytes) {
				t.Errorf("%s: frame %d = %s\nwant %s", tc.name, i, got[i].Bytes, tc.want[i].Bytes)
			}
		}
	}
}

func frameList(fs []chat.Frame) string {
	var b strings.Builder
	for _, f := range fs {
		b.Write(f.Bytes)
		b.WriteByte('\n')
	}
	return b.String()
}

// render is what a client that appends chunks shows: at every other frame
// (and at the end) each message's text, keyed by agent and message id, and
// the frame itself.
func render(t *testing.T, fs []chat.Frame) []string {
	t.Helper()
	shown := map[string]string{}
	snap := func() string {
		keys := make([]string, 0, len(shown))
		for k := range shown {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var b strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&b, "%s=%q ", k, shown[k])
		}
		return b.String()
	}
	var log []string
	for _, f := range fs {
		if f.Type != "chat.print" {
			log = append(log, snap()+" | "+string(f.Bytes))
			continue
		}
		var p struct {
			Agent, Content string
			MessageID      string `json:"message_id"`
			Replace        bool
			Data           struct {
				Content string
				Restart bool
			}
		}
		if err := json.Unmarshal(f.Bytes, &p); err != nil {
			t.Fatal(err)
		}
		if p.Data.Content != p.Content || p.Data.Restart != p.Replace {
			t.Fatalf("top level and data disagree: %s", f.Bytes)
		}
		k := p.Agent + "/" + p.MessageID
		if p.Replace {
			shown[k] = ""
		}
		shown[k] += p.Content
	}
	return append(log, snap())
}

// Random queues of chunks (two messages, two agents, retries) and other
// frames: the merged frames render as the originals do, never more frames,
// and a queue with no two chunks in a row is left as it was.
func TestCoalesceRendersTheSame(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	other := chat.Simple("usage_delta", map[string]any{"total_tokens": 3})
	for round := range 2000 {
		n := 1 + rng.IntN(12)
		in := make([]chat.Frame, n)
		for i := range in {
			switch r := rng.IntN(10); {
			case r == 0:
				in[i] = other
			default:
				agent := []string{"A", "B"}[rng.IntN(2)]
				msg := []string{"m1", "m2"}[rng.IntN(2)]
				if rng.IntN(3) > 0 { // runs of one message are the common case
					agent, msg = "A", "m1"
				}
				in[i] = chunk(i, agent, msg, fmt.Sprintf("t%d ", i), rng.IntN(8) == 0)
			}
		}
		want := render(t, in)
		got := coalesce(slices.Clone(in))
		if len(got) > len(in) {
			t.Fatalf("round %d: %d frames out of %d", round, len(got), len(in))
		}
		if r := render(t, got); !slices.Equal(r, want) {
			t.Fatalf("round %d: merged frames render\n%s\nwant\n%s\ninput:\n%s\noutput:\n%s", round,
				strings.Join(r, "\n"), strings.Join(want, "\n"), frameList(in), frameList(got))
		}
		if !hasPrintRun(in) && !slices.EqualFunc(got, in, func(a, b chat.Frame) bool { return string(a.Bytes) == string(b.Bytes) }) {
			t.Fatalf("round %d: frames changed with nothing to merge", round)
		}
	}
}
