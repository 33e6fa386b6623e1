package engine

import (
	"fmt"
	"testing"
)

// transcript builds n stored events shaped like a real chat: user and agent
// texts, tool calls and results, and the bookkeeping events in between.
func benchTranscript(n int) []StoredEvent {
	var tr []StoredEvent
	for i := 0; len(tr) < n; i++ {
		id := fmt.Sprintf("m%d", i)
		tr = append(tr,
			StoredEvent{Kind: KindText, Data: map[string]any{"agent": "user", "role": "user", "content": "question", "message_id": "u" + id}},
			StoredEvent{Kind: KindSelectSpeaker, Agent: "A", Data: map[string]any{"agent": "A"}},
			StoredEvent{Kind: KindText, Agent: "A", Data: map[string]any{"agent": "A", "role": "assistant", "content": "answer", "message_id": id}},
			StoredEvent{Kind: KindToolCall, Agent: "A", Data: map[string]any{"call_id": "c" + id, "name": "f", "agent": "A", "arguments": map[string]any{"q": "x"}, "message_id": id}},
			StoredEvent{Kind: KindToolResponse, Agent: "A", Data: map[string]any{"call_id": "c" + id, "name": "f", "status": "ok", "result": map[string]any{"r": 1}}},
			StoredEvent{Kind: KindUsageDelta, Agent: "A", Data: map[string]any{"total_tokens": 10}},
		)
	}
	return tr[:n]
}

// BenchmarkHistoryFromTranscript measures the rebuild done before every
// model call; compare sizes to see that it stays linear.
func BenchmarkHistoryFromTranscript(b *testing.B) {
	for _, n := range []int{60, 600, 6000} {
		tr := benchTranscript(n)
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				HistoryFromTranscript(tr)
			}
		})
	}
}
