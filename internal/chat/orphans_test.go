package chat

import (
	"slices"
	"testing"

	"github.com/mozaiks/mozaiks/internal/engine"
)

// What a replica that takes a chat over finds left to do, from the stored
// events: a run that ended (it asked for input) is not resumed even when
// the state recording its end was lost; a run cut off before asking is;
// messages no run read are answered, in order.
func TestPendingWorkAfterAStoppedReplica(t *testing.T) {
	t.Parallel()
	user := func(seq int64, id string) engine.StoredEvent {
		return engine.StoredEvent{Seq: seq, Kind: engine.KindText, Agent: "user", Data: map[string]any{"message_id": id}}
	}
	start := func(seq, input int64, run string) engine.StoredEvent {
		return engine.StoredEvent{Seq: seq, Kind: engine.KindRunStart, Data: map[string]any{"input_seq": float64(input), "run_id": run}}
	}
	answer := func(seq int64) engine.StoredEvent {
		return engine.StoredEvent{Seq: seq, Kind: engine.KindText, Agent: "Assistant", Data: map[string]any{}}
	}
	ask := func(seq int64) engine.StoredEvent {
		return engine.StoredEvent{Seq: seq, Kind: engine.KindInputRequest, Data: map[string]any{}}
	}
	for _, tc := range []struct {
		name       string
		evs        []engine.StoredEvent
		st         engine.State
		wantOpen   bool
		unanswered []int64
	}{
		{"ended, state stored", []engine.StoredEvent{user(1, "a"), start(2, 1, "r1"), answer(3), ask(4)}, engine.State{Run: "r1"}, false, nil},
		{"ended, state lost", []engine.StoredEvent{user(1, "a"), start(2, 1, "r1"), answer(3), ask(4)}, engine.State{}, false, nil},
		{"cut off before asking", []engine.StoredEvent{user(1, "a"), start(2, 1, "r1"), answer(3)}, engine.State{}, true, nil},
		{"cut off, a message after it", []engine.StoredEvent{user(1, "a"), start(2, 1, "r1"), user(3, "b")}, engine.State{}, true, []int64{3}},
		{"a message dropped before the next one's run", []engine.StoredEvent{user(1, "a"), user(2, "b"), start(3, 2, "r1"), answer(4), ask(5)},
			engine.State{Run: "r1"}, false, []int64{1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			open, un := pendingWork(tc.evs, tc.st, nil)
			var seqs []int64
			for _, ev := range un {
				seqs = append(seqs, ev.Seq)
			}
			if open != tc.wantOpen || !slices.Equal(seqs, tc.unanswered) {
				t.Fatalf("open %v, unanswered %v; want %v, %v", open, seqs, tc.wantOpen, tc.unanswered)
			}
		})
	}
	// A resumed run leaves out the messages stored after it began.
	later := map[string]bool{}
	unconsumedLater([]engine.StoredEvent{user(1, "a"), start(2, 1, "r1"), user(3, "b")}, later)
	if !later["b"] || later["a"] {
		t.Fatalf("later = %v, want b only", later)
	}
}
