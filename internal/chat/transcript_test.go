package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
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
	// A view of the cache, not a copy: what the run appends does not reach
	// the cache, and what the cache takes in later does not reach the view.
	tr := transcript{evs: slices.Clone(evs), loaded: true}
	tr.evs = slices.Grow(tr.evs, 8) // room after the view: an append would land in it
	w = window(tr.evs, 10)
	w = append(w, engine.StoredEvent{Seq: -1, Kind: engine.KindText})
	tr.add(engine.StoredEvent{Seq: seq + 1, Kind: engine.KindText, Agent: "A"})
	if got := w[len(w)-1].Seq; got != -1 || tr.evs[len(tr.evs)-1].Seq != seq+1 {
		t.Fatalf("the run and the cache appended into one array: the run's last event has seq %d", got)
	}
	hole := tr.evs[len(tr.evs)-5].Seq
	tr.evs = slices.Delete(tr.evs, len(tr.evs)-5, len(tr.evs)-4) // a hole, as another replica leaves
	w = window(tr.evs, 10)
	before := slices.Clone(w)
	tr.add(engine.StoredEvent{Seq: hole, Kind: engine.KindText, Agent: "B"}) // filled later, in place
	if !slices.ContainsFunc(tr.evs, func(e engine.StoredEvent) bool { return e.Seq == hole }) {
		t.Fatal("the hole was not filled")
	}
	if !slices.EqualFunc(w, before, func(a, b engine.StoredEvent) bool { return a.Seq == b.Seq && a.Agent == b.Agent }) {
		t.Fatal("an event cached after the window was taken changed the window")
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

// orderTranscript without its maps gives what the map-based version it
// replaced gave (kept here as the reference), on random transcripts:
// messages answered at once, answered by a later run, queued, or the one
// the run answers, stored or not yet.
func TestOrderTranscriptMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 20000 {
		var evs []engine.StoredEvent
		var users []int64
		answered := map[int64]bool{}
		later := map[string]bool{}
		for seq := int64(1); seq <= int64(2+rng.IntN(40)); seq++ {
			switch r := rng.IntN(10); {
			case r < 3:
				evs = append(evs, engine.NewStoredEvent(seq, engine.KindText, "user", map[string]any{"message_id": fmt.Sprint("m", seq)}))
				users = append(users, seq)
				if rng.IntN(8) == 0 {
					later[fmt.Sprint("m", seq)] = true
				}
			case r < 6 && len(users) > 0:
				// A run answering a message not answered yet: usually the
				// last one, sometimes an earlier one.
				u := users[len(users)-1]
				if rng.IntN(4) == 0 {
					u = users[rng.IntN(len(users))]
				}
				if !answered[u] || rng.IntN(10) == 0 {
					answered[u] = true
					evs = append(evs, engine.NewStoredEvent(seq, engine.KindRunStart, "", map[string]any{"input_seq": float64(u)}))
					continue
				}
				fallthrough
			default:
				evs = append(evs, engine.NewStoredEvent(seq, engine.KindText, "A", map[string]any{"content": "x"}))
			}
		}
		curID := ""
		var cur *engine.StoredEvent
		switch rng.IntN(3) {
		case 0: // stored: one of the messages
			if len(users) > 0 {
				curID = fmt.Sprint("m", users[rng.IntN(len(users))])
			}
		case 1: // not stored yet
			curID = "m_new"
		}
		if curID != "" {
			cur = &engine.StoredEvent{Kind: engine.KindText, Agent: "user", Data: map[string]any{"message_id": curID}}
		}
		got := orderTranscript(evs, curID, cur, later)
		want := referenceOrder(evs, curID, cur, later)
		same := func(a, b engine.StoredEvent) bool { return a.Seq == b.Seq && a.Kind == b.Kind && a.Agent == b.Agent }
		if !slices.EqualFunc(got, want, same) {
			t.Fatalf("transcript %d: got %v, want %v", n, evSeqs(got), evSeqs(want))
		}
	}
}

func evSeqs(evs []engine.StoredEvent) []int64 {
	out := make([]int64, len(evs))
	for i, ev := range evs {
		out[i] = ev.Seq
	}
	return out
}

// referenceOrder is orderTranscript as it was written first, with maps.
func referenceOrder(evs []engine.StoredEvent, curID string, cur *engine.StoredEvent, later map[string]bool) []engine.StoredEvent {
	consumed := map[int64]bool{}
	for _, ev := range evs {
		if s := engine.InputSeq(ev); s > 0 {
			consumed[s] = true
		}
	}
	held := map[int64]engine.StoredEvent{}
	var out []engine.StoredEvent
	for _, ev := range evs {
		if ev.Kind == engine.KindText && ev.Agent == "user" {
			id := str(ev.Data["message_id"])
			switch {
			case curID != "" && id == curID:
				c := ev
				cur = &c
				continue
			case later[id]:
				continue
			case consumed[ev.Seq]:
				held[ev.Seq] = ev
				continue
			}
		}
		if s := engine.InputSeq(ev); s > 0 {
			if u, ok := held[s]; ok {
				out = append(out, u)
				delete(held, s)
			}
		}
		out = append(out, ev)
	}
	if cur != nil {
		out = append(out, *cur)
	}
	return out
}
