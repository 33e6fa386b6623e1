package engine

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"testing/fstest"

	"github.com/mozaiks/mozaiks/internal/llm"
	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
	"github.com/mozaiks/mozaiks/internal/workflow"
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

// cachedTranscript is tr as a chat's cached transcript holds it
// (NewStoredEvent), its history items already built by an earlier call.
func cachedTranscript(tr []StoredEvent) []StoredEvent {
	out := make([]StoredEvent, len(tr))
	for i, ev := range tr {
		out[i] = NewStoredEvent(ev.Seq, ev.Kind, ev.Agent, ev.Data)
	}
	HistoryFromTranscript(out)
	return out
}

// BenchmarkHistoryFromTranscript measures the rebuild done before every
// model call; compare sizes to see that it stays linear. events=N are
// plain events (every call reads their data); cached_events=N are a chat's
// cached events, whose history items were built by an earlier call.
func BenchmarkHistoryFromTranscript(b *testing.B) {
	for _, n := range []int{60, 600, 6000} {
		tr := benchTranscript(n)
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				HistoryFromTranscript(tr)
			}
		})
		cached := cachedTranscript(tr)
		b.Run(fmt.Sprintf("cached_events=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				HistoryFromTranscript(cached)
			}
		})
	}
}

// BenchmarkTurn compares one agent turn through the engine (prompt and
// history building, streaming events, routing) with the bare model call it
// wraps, both against the same local fake; the ratio is the engine's overhead.
func BenchmarkTurn(b *testing.B) {
	srv := llmtest.New(b)
	srv.SetResponder(func(llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Text: "a short answer of a few words", Chunks: 4}
	})
	client := llm.NewOpenAI(llm.Options{APIKey: "k", BaseURL: srv.URL(), MaxRetries: -1})
	set, diags := workflow.LoadSet("", fstest.MapFS{
		"w/orchestrator.yaml": {Data: []byte("human_in_the_loop: false\n")},
		"w/agents.yaml":       {Data: []byte("agents:\n  - {name: A, system_message: You are A.}\n")},
	})
	if len(diags) > 0 {
		b.Fatal(diags)
	}
	tr := benchTranscript(60)
	b.Run("bare_llm_call", func(b *testing.B) {
		req := llm.Request{Model: "m", Messages: append([]llm.Message{{Role: "system", Content: "You are A."}}, HistoryFromTranscript(tr)...)}
		for b.Loop() {
			if _, err := client.Stream(context.Background(), req, func(llm.Chunk) {}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("engine_turn", func(b *testing.B) {
		eng := New(Options{Workflows: set, LLM: client})
		for b.Loop() {
			res, err := eng.Run(context.Background(), RunRequest{Workflow: "w", Transcript: tr, Sink: &recorder{}})
			if err != nil || res.Reason != ReasonTerminate {
				b.Fatal(err, res.Reason)
			}
		}
	})
	// The transcript as a chat hands it to its runs: its cached events, in
	// a slice with room for what the run adds (chat's orderTranscript). The
	// runs here one after another append into that same room.
	cached := slices.Grow(cachedTranscript(tr), 16)
	b.Run("engine_turn_cached", func(b *testing.B) {
		eng := New(Options{Workflows: set, LLM: client})
		for b.Loop() {
			res, err := eng.Run(context.Background(), RunRequest{Workflow: "w", Transcript: cached, Sink: &recorder{}})
			if err != nil || res.Reason != ReasonTerminate {
				b.Fatal(err, res.Reason)
			}
		}
	})
}
