package chat

import (
	"fmt"
	"testing"

	"github.com/mozaiks/mozaiks/internal/engine"
)

// A run is handed the cached events its model history comes from, not the
// whole cache: the tail that holds about HistoryMessages messages, the last
// run whole, and a message stored before the cut that a run after it answers.
func TestWindow(t *testing.T) {
	var evs []engine.StoredEvent
	seq := int64(0)
	add := func(kind, agent string, data map[string]any) {
		seq++
		if data == nil {
			data = map[string]any{}
		}
		evs = append(evs, engine.StoredEvent{Seq: seq, Kind: kind, Agent: agent, Data: data})
	}
	// 50 exchanges: user message, run_start answering it, reply, input request.
	for i := range 50 {
		add(engine.KindText, "user", map[string]any{"content": fmt.Sprint("q", i), "message_id": fmt.Sprint("u", i)})
		add(engine.KindRunStart, "", map[string]any{"input_seq": float64(seq)})
		add(engine.KindText, "A", map[string]any{"content": fmt.Sprint("a", i)})
		add(engine.KindInputRequest, "A", nil)
	}
	texts := func(w []engine.StoredEvent) (n int, first string) {
		for _, ev := range w {
			if ev.Kind == engine.KindText {
				if n == 0 {
					first = ev.Data["content"].(string)
				}
				n++
			}
		}
		return n, first
	}

	if w := window(evs, -1); len(w) != len(evs) {
		t.Fatalf("unbounded: %d events, want %d", len(w), len(evs))
	}
	w := window(evs, 10)
	if n, first := texts(w); n != 10 || first != "q45" {
		t.Fatalf("10 messages: window has %d texts starting %q, want 10 from q45", n, first)
	}
	w[0].Seq = -1 // a copy: the cache is not touched
	if evs[len(evs)-len(w)].Seq == -1 {
		t.Fatal("window shares the cache's backing array")
	}

	// A message sent during the last run (stored inside it) and answered by
	// a run that starts after many tool events: the window goes back to the
	// last run_start and brings the message along.
	add(engine.KindText, "user", map[string]any{"content": "long task", "message_id": "uL"})
	add(engine.KindRunStart, "", map[string]any{"input_seq": float64(seq)})
	runStart := seq
	add(engine.KindText, "user", map[string]any{"content": "meanwhile", "message_id": "uM"})
	mid := seq
	for i := range 30 {
		add(engine.KindToolCall, "A", map[string]any{"call_id": fmt.Sprint("c", i), "name": "t"})
		add(engine.KindToolResponse, "A", map[string]any{"call_id": fmt.Sprint("c", i), "result": "ok"})
	}
	add(engine.KindText, "A", map[string]any{"content": "done"})
	add(engine.KindRunStart, "", map[string]any{"input_seq": float64(mid)})
	w = window(evs, 4)
	// The cut falls among the tool events; the message comes first.
	if w[0].Seq != mid || w[1].Seq <= runStart+1 {
		t.Fatalf("window starts %d, %d; want the message %d, then the tail", w[0].Seq, w[1].Seq, mid)
	}
	if w[len(w)-1].Kind != engine.KindRunStart {
		t.Fatalf("the last run_start is not in the window")
	}
	got := orderTranscript(w, "", nil, nil)
	if last := got[len(got)-1]; last.Kind != engine.KindRunStart || got[len(got)-2].Seq != mid {
		t.Fatalf("the message is not placed before the run that answers it: %+v", got[len(got)-2:])
	}
}
