package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/mozaiks/mozaiks/internal/engine"
	"github.com/mozaiks/mozaiks/internal/store"
	"github.com/mozaiks/mozaiks/internal/store/sqlite"
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

// The cache keeps events in seq order, each once, however they come: from
// the writer, or from a store read that overlaps what the writer cached.
func TestTranscriptAddKeepsOrderOnce(t *testing.T) {
	var tr transcript
	for _, s := range []int64{3, 4, 6, 6, 5, 4, 7, 1} {
		tr.add(engine.StoredEvent{Seq: s})
	}
	var got []int64
	for _, ev := range tr.evs {
		got = append(got, ev.Seq)
	}
	// 1 is older than the first cached event: the cache does not go back.
	if !slices.Equal(got, []int64{3, 4, 5, 6, 7}) {
		t.Fatalf("cached seqs %v", got)
	}
}

// Catching up finds an event another replica stored between two of this
// process's own (a hole in the cache), not only those after the last one.
func TestCatchUpFillsAHole(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, _, err := st.CreateSession(ctx, store.Session{ChatID: "c1", AppID: "app", UserID: "u1", Workflow: "assistant",
		Status: store.StatusInProgress}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 4; i++ {
		data := json.RawMessage(fmt.Sprintf(`{"content":"m%d"}`, i))
		if _, err := st.AppendEvent(ctx, "app", "c1", store.Event{Type: "chat.text", Data: data}, true); err != nil {
			t.Fatal(err)
		}
	}
	m := NewManager(Options{Store: st})
	r := m.room("app", "c1")
	r.tr.loaded, r.tr.readTo = true, 2
	for _, s := range []int64{1, 2, 4} { // 3 was stored by another replica
		r.tr.add(engine.StoredEvent{Seq: s, Kind: engine.KindText})
	}
	if err := m.catchUp(ctx, r); err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, ev := range r.tr.evs {
		got = append(got, ev.Seq)
	}
	if !slices.Equal(got, []int64{1, 2, 3, 4}) || r.tr.readTo != 4 {
		t.Fatalf("after catching up: seqs %v, read to %d", got, r.tr.readTo)
	}
	if c := r.tr.evs[2].Data["content"]; c != "m3" {
		t.Fatalf("the hole holds %v", c)
	}
}
