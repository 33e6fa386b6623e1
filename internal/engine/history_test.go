package engine

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/mozaiks/mozaiks/internal/llm"
)

func TestRecentHistory(t *testing.T) {
	user := func(s string) StoredEvent {
		return StoredEvent{Kind: KindText, Agent: "user", Data: map[string]any{"content": s}}
	}
	agent := func(s string) StoredEvent {
		return StoredEvent{Kind: KindText, Agent: "A", Data: map[string]any{"content": s}}
	}
	call := func(id string) StoredEvent {
		return StoredEvent{Kind: KindToolCall, Agent: "A", Data: map[string]any{"call_id": id, "name": "t", "message_id": "m" + id}}
	}
	result := func(id string) StoredEvent {
		return StoredEvent{Kind: KindToolResponse, Agent: "A", Data: map[string]any{"call_id": id, "result": "ok"}}
	}
	other := StoredEvent{Kind: KindRunStart}
	// Ten exchanges: user, run_start, tool call, tool result, reply.
	var long []StoredEvent
	for i := range 10 {
		id := fmt.Sprint(i)
		long = append(long, user("q"+id), other, call(id), result(id), agent("a"+id))
	}
	noUser := []StoredEvent{user("q"), agent("a1"), agent("a2"), agent("a3"), agent("a4")}
	for _, tc := range []struct {
		name      string
		in        []StoredEvent
		max       int
		wantFirst string // content of the first message of the history
		wantMsgs  int
	}{
		{"all when negative", long, -1, "q0", 40},
		{"all when it fits", long, 40, "q0", 40},
		{"cut at the next user message", long, 10, "q8", 8},
		{"exactly whole exchanges", long, 8, "q8", 8},
		{"one message, no user message after the cut", long, 1, "a9", 1},
		{"no user message in the tail", noUser, 2, "a3", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs := HistoryFromTranscript(RecentHistory(tc.in, tc.max))
			if len(msgs) != tc.wantMsgs {
				t.Fatalf("%d messages, want %d: %+v", len(msgs), tc.wantMsgs, msgs)
			}
			if tc.wantMsgs == 0 {
				return
			}
			if msgs[0].Content != tc.wantFirst {
				t.Fatalf("history starts with %+v, want %q", msgs[0], tc.wantFirst)
			}
			// Every tool call has its result right after it.
			for i, m := range msgs {
				for _, c := range m.ToolCalls {
					if i+1 >= len(msgs) || msgs[i+1].ToolCallID != c.ID || msgs[i+1].Content == "" {
						t.Fatalf("call %s without its result: %+v", c.ID, msgs)
					}
				}
			}
		})
	}
}

// A model request carries the system prompt and about HistoryMessages recent
// messages, starting at a user message; 0 means the default, negative all.
func TestRequestHistoryBounded(t *testing.T) {
	t.Parallel()
	set := mustSet(t, map[string]string{
		"w/orchestrator.yaml": "human_in_the_loop: true\nmax_turns: 1000\n",
		"w/agents.yaml":       "agents:\n  - {name: A, system_message: You are A.}\n",
	})
	for _, tc := range []struct {
		name    string
		history int
		want    int    // messages of the last request, the system prompt included
		first   string // role of the first message after the system prompt
	}{
		{"default", 0, 1 + DefaultHistoryMessages - 1, "user"},
		{"ten", 10, 1 + 9, "user"},
		// The agent opens the chat: its greeting, then 60 exchanges but the last reply.
		{"all", -1, 1 + 1 + 2*60 - 1, "assistant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newChat(t, set, "w", func(o *Options) { o.HistoryMessages = tc.history })
			c.run(nil)
			for i := range 60 {
				c.say(fmt.Sprint("message ", i))
			}
			reqs := c.srv.ChatRequests()
			last := reqs[len(reqs)-1]
			if len(last.Messages) != tc.want {
				t.Fatalf("last request has %d messages, want %d", len(last.Messages), tc.want)
			}
			if last.Messages[0].Role != "system" || last.Messages[1].Role != tc.first {
				t.Fatalf("request starts %s, %s; want system, %s", last.Messages[0].Role, last.Messages[1].Role, tc.first)
			}
			if got := last.Messages[len(last.Messages)-1].Content; got != "message 59" {
				t.Fatalf("last message %q, want the user's last", got)
			}
		})
	}
}

// Events made with NewStoredEvent give the history that plain ones do, on
// every call, and build it once for all their copies: the runs of a chat
// are handed copies of its cached events.
func TestHistoryOfCachedEvents(t *testing.T) {
	plain := append(benchTranscript(60),
		StoredEvent{Kind: KindText, Agent: "A", Data: map[string]any{"role": "user", "content": "as the user"}},
		StoredEvent{Kind: "attachment", Data: map[string]any{"filename": "notes.txt", "text": "hello"}},
		StoredEvent{Kind: "attachment", Data: map[string]any{"filename": "image.png"}},
		StoredEvent{Kind: KindToolCall, Agent: "B", Data: map[string]any{"call_id": "lone", "name": "g", "arguments": `{"a":1}`}},
		StoredEvent{Kind: KindText, Agent: "B", Data: map[string]any{"content": "no id", "n": 3}},
		StoredEvent{Kind: KindToolResponse, Data: map[string]any{"call_id": "lone", "result": nil}},
	)
	cached := make([]StoredEvent, len(plain))
	for i, ev := range plain {
		cached[i] = NewStoredEvent(ev.Seq, ev.Kind, ev.Agent, ev.Data)
	}
	want := HistoryFromTranscript(plain)
	if len(want) < 30 {
		t.Fatalf("history of %d messages", len(want))
	}
	for round := range 2 {
		copied := slices.Clone(cached)
		if got := HistoryFromTranscript(copied); !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d: cached events give\n%+v\nwant\n%+v", round, got, want)
		}
	}
	kept := 0
	for i, ev := range cached {
		want := buildHistItem(&plain[i])
		if ev.hist == nil {
			if want.kind != histNone {
				t.Fatalf("event %d (%s) adds to the history and keeps nothing", i, ev.Kind)
			}
			continue
		}
		if !reflect.DeepEqual(ev.hist.item, want) {
			t.Fatalf("event %d (%s): its copies built %+v, it kept %+v", i, ev.Kind, want, ev.hist.item)
		}
		if ev.hist.item.kind != histNone {
			kept++
		}
	}
	if kept < 40 {
		t.Fatalf("%d events kept a history item", kept)
	}
	// A built item is kept: changing the data afterwards (which callers
	// must not do) does not change the history.
	cached[0].Data["content"] = "changed"
	if got := HistoryFromTranscript(cached); !reflect.DeepEqual(got, want) {
		t.Fatal("the history was built again")
	}
}

// completeToolCalls' shortcut (inShape: the history is already in shape)
// gives what placing every result does, on random histories: calls and
// results in and out of order, missing, repeated, and ids used twice.
func TestCompleteToolCallsShortcut(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ids := []string{"a", "b", "c", "d"}
	shortcuts := 0
	for n := range 20000 {
		var msgs []llm.Message
		for range rng.IntN(8) {
			switch rng.IntN(4) {
			case 0:
				msgs = append(msgs, llm.Message{Role: "user", Content: "q"})
			case 1:
				m := llm.Message{Role: "assistant", Content: "a"}
				for range rng.IntN(3) {
					m.ToolCalls = append(m.ToolCalls, llm.ToolCall{ID: ids[rng.IntN(len(ids))], Name: "f"})
				}
				msgs = append(msgs, m)
				if rng.IntN(2) == 0 { // mostly answered in order, as stored
					for _, tc := range m.ToolCalls {
						msgs = append(msgs, llm.Message{Role: "tool", ToolCallID: tc.ID, Content: "r" + fmt.Sprint(n)})
					}
				}
			default:
				msgs = append(msgs, llm.Message{Role: "tool", ToolCallID: ids[rng.IntN(len(ids))], Content: "s"})
			}
		}
		if inShape(msgs) {
			shortcuts++
		}
		if got, want := completeToolCalls(slices.Clone(msgs)), placeResults(msgs); !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("history %+v:\ngot  %+v\nwant %+v", msgs, got, want)
		}
	}
	if shortcuts < 2000 {
		t.Fatalf("the shortcut was taken %d times of 20000", shortcuts)
	}
}
