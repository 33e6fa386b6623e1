package chat

import (
	"fmt"
	"testing"

	"github.com/mozaiks/mozaiks/internal/engine"
)

// BenchmarkTranscriptWindow is what a run's start costs to hand the engine
// its events: the window of a chat's cached transcript and the user
// messages put where the workflow read them (transcriptFor without the
// room's lock), on chats of 15 turns (the TTFT benchmarks' longest) and 400
// turns (a long chat; the window keeps the engine's history bound).
//
//	go test -run '^$' -bench TranscriptWindow -benchmem ./internal/chat/
func BenchmarkTranscriptWindow(b *testing.B) {
	for _, turns := range []int{15, 400} {
		b.Run(fmt.Sprintf("turns=%d", turns), func(b *testing.B) {
			evs := benchTranscript(turns)
			cur := &engine.StoredEvent{Kind: engine.KindText, Agent: "user", Data: map[string]any{"content": "next", "message_id": "m_next"}}
			b.ReportAllocs()
			for b.Loop() {
				w := window(evs, engine.DefaultHistoryMessages)
				out := orderTranscript(w, "m_next", cur, (&room{}).queuedLocked())
				if len(out) == 0 {
					b.Fatal("empty transcript")
				}
			}
		})
	}
}

// benchTranscript is a chat's cached events after turns turns of the
// assistant workflow: the greeting, then per turn the user's message, the
// run's start, its speaker, its usage, the reply and the input request.
func benchTranscript(turns int) []engine.StoredEvent {
	var evs []engine.StoredEvent
	seq := int64(0)
	add := func(kind, agent string, data map[string]any) {
		seq++
		data["kind"] = kind
		evs = append(evs, engine.NewStoredEvent(seq, kind, agent, data))
	}
	add(engine.KindText, "Assistant", map[string]any{"role": "assistant", "content": "Hi! What can I help you with?", "message_id": "m_greet"})
	for t := range turns {
		add(engine.KindText, "user", map[string]any{"role": "user", "content": "tell me something", "message_id": fmt.Sprintf("m_%d", t)})
		user := seq
		add(engine.KindRunStart, "", map[string]any{"run_id": fmt.Sprintf("run_%d", t), "input_seq": float64(user), "speaker": "Assistant"})
		add("select_speaker", "Assistant", map[string]any{"agent": "Assistant"})
		add("usage_delta", "Assistant", map[string]any{"prompt_tokens": 40.0, "completion_tokens": 8.0})
		add(engine.KindText, "Assistant", map[string]any{"role": "assistant", "content": "one two three four five six seven eight", "message_id": fmt.Sprintf("m_r%d", t)})
		add("input_request", "Assistant", map[string]any{"request_id": fmt.Sprintf("req_%d", t), "prompt": ""})
	}
	return evs
}
