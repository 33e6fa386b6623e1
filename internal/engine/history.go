package engine

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/mozaiks/mozaiks/internal/llm"
)

// HistoryFromTranscript rebuilds the model conversation from a chat's stored
// events: user and agent texts, and tool calls with their results. The engine
// builds every request this way, during a run as after a restart, so what the
// model sees never depends on whether the process stayed up. Data may come
// straight from Emit (Go values) or back from a store (decoded JSON).
func HistoryFromTranscript(transcript []StoredEvent) []llm.Message {
	return historyInto(nil, transcript)
}

// historyInto appends HistoryFromTranscript(transcript) to msgs.
func historyInto(msgs []llm.Message, transcript []StoredEvent) []llm.Message {
	head := len(msgs)
	byMsgID := map[string]int{} // assistant message_id -> index in msgs
	for _, ev := range transcript {
		d := ev.Data
		switch ev.Kind {
		case KindText:
			content := str(d, "content")
			agent := firstNonEmpty(str(d, "agent"), ev.Agent)
			if agent == "user" || str(d, "role") == "user" {
				msgs = append(msgs, llm.Message{Role: "user", Content: content})
				continue
			}
			msgs = append(msgs, llm.Message{Role: "assistant", Name: agent, Content: content})
			if id := str(d, "message_id"); id != "" {
				byMsgID[id] = len(msgs) - 1
			}
		case KindToolCall:
			tc := llm.ToolCall{ID: str(d, "call_id"), Name: str(d, "name"), Arguments: argumentsText(d["arguments"])}
			id := str(d, "message_id")
			if i, ok := byMsgID[id]; ok && id != "" {
				msgs[i].ToolCalls = append(msgs[i].ToolCalls, tc)
				continue
			}
			msgs = append(msgs, llm.Message{Role: "assistant", Name: firstNonEmpty(str(d, "agent"), ev.Agent), ToolCalls: []llm.ToolCall{tc}})
			if id != "" {
				byMsgID[id] = len(msgs) - 1
			}
		case KindToolResponse:
			msgs = append(msgs, llm.Message{Role: "tool", ToolCallID: str(d, "call_id"), Content: resultText(d["result"])})
		case "attachment": // a file the user uploaded into the chat (chat.Attach); text files reach the model as text
			if text, ok := d["text"].(string); ok {
				msgs = append(msgs, llm.Message{Role: "user", Content: "[attached file " + str(d, "filename") + "]\n" + text})
			}
		}
	}
	return append(msgs[:head], completeToolCalls(msgs[head:])...)
}

// RecentHistory is the tail of a transcript whose history (HistoryFromTranscript)
// holds about max messages: it starts at the user message that opens the
// exchange, so no exchange, and no tool call and its result, is cut in two;
// when there is no such message it starts right after max messages. A
// negative max keeps all of it. Only the tail is walked: a long chat costs
// a request what a short one does.
func RecentHistory(transcript []StoredEvent, max int) []StoredEvent {
	if max < 0 {
		return transcript
	}
	n := 0
	for i := len(transcript) - 1; i >= 0; i-- {
		switch transcript[i].Kind {
		case KindText, KindToolCall, KindToolResponse, "attachment":
			n++
		default:
			continue
		}
		if n <= max {
			continue
		}
		// transcript[i] is one message too many: start at the first user
		// message after it.
		for j := i + 1; j < len(transcript); j++ {
			if ev := transcript[j]; ev.Kind == KindText && (ev.Agent == "user" || str(ev.Data, "role") == "user") {
				return transcript[j:]
			}
		}
		return transcript[i+1:]
	}
	return transcript
}

// completeToolCalls puts the history in the shape the API accepts: every
// tool call answered right after the assistant message that made it. A
// result stored later (the user typed while a UI tool waited) moves up; a
// call interrupted by a crash or cancellation gets a synthetic error result.
func completeToolCalls(msgs []llm.Message) []llm.Message {
	if !slices.ContainsFunc(msgs, func(m llm.Message) bool { return m.Role == "tool" || len(m.ToolCalls) > 0 }) {
		return msgs // nothing to place: most chats' history
	}
	results := map[string]llm.Message{}
	for _, m := range msgs {
		if m.Role == "tool" {
			if _, dup := results[m.ToolCallID]; !dup {
				results[m.ToolCallID] = m
			}
		}
	}
	placed := map[string]bool{}
	out := make([]llm.Message, 0, len(msgs))
	for _, m := range msgs {
		if m.Role == "tool" {
			continue // placed with its call
		}
		out = append(out, m)
		for _, tc := range m.ToolCalls {
			if placed[tc.ID] {
				continue
			}
			placed[tc.ID] = true
			r, ok := results[tc.ID]
			if !ok {
				r = llm.Message{Role: "tool", ToolCallID: tc.ID, Content: `{"error":"the tool call was interrupted and has no result"}`}
			}
			out = append(out, r)
		}
	}
	return out
}

func argumentsText(v any) string {
	switch x := v.(type) {
	case nil:
		return "{}"
	case string:
		return x
	case json.RawMessage:
		return string(x)
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return "{}"
		}
		return string(b)
	}
}

func resultText(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return x
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return fmt.Sprint(x)
		}
		return string(b)
	}
}

func str(d map[string]any, k string) string {
	switch x := d[k].(type) {
	case string:
		return x
	case nil:
		return ""
	default:
		return fmt.Sprint(x)
	}
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
