package engine

import (
	"encoding/json"
	"fmt"
	"sync"

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
	var byMsgID map[string]int // assistant message_id -> index in msgs
	at := func(id string) (int, bool) {
		i, ok := byMsgID[id]
		return i, ok && id != ""
	}
	mark := func(id string) {
		if id == "" {
			return
		}
		if byMsgID == nil {
			byMsgID = map[string]int{}
		}
		byMsgID[id] = len(msgs) - 1
	}
	for i := range transcript {
		it := transcript[i].histItem()
		switch it.kind {
		case histUser:
			msgs = append(msgs, llm.Message{Role: "user", Content: it.content})
		case histAssistant:
			msgs = append(msgs, llm.Message{Role: "assistant", Name: it.name, Content: it.content})
			mark(it.id)
		case histToolCall:
			if j, ok := at(it.id); ok {
				msgs[j].ToolCalls = append(msgs[j].ToolCalls, it.calls[0])
				continue
			}
			msgs = append(msgs, llm.Message{Role: "assistant", Name: it.name, ToolCalls: it.calls})
			mark(it.id)
		case histToolResult:
			msgs = append(msgs, llm.Message{Role: "tool", ToolCallID: it.id, Content: it.content})
		}
	}
	return append(msgs[:head], completeToolCalls(msgs[head:])...)
}

// histItem is what one stored event adds to the model's history.
type histItem struct {
	kind    int // histNone, histUser, ...
	name    string
	content string
	// id: an assistant text's or tool call's message_id (a message's tool
	// calls join it), a tool result's call_id.
	id string
	// calls is a tool call's one call, shared by the histories built from
	// the event: its capacity is 1, so appending to it copies it, and
	// nothing changes a message's tool calls in place.
	calls []llm.ToolCall
}

const (
	histNone = iota
	histUser
	histAssistant
	histToolCall
	histToolResult
)

// histMemo is a StoredEvent's histItem, built once (NewStoredEvent).
type histMemo struct {
	once sync.Once
	item histItem
}

func (ev *StoredEvent) histItem() histItem {
	if ev.hist == nil {
		return buildHistItem(ev)
	}
	ev.hist.once.Do(func() { ev.hist.item = buildHistItem(ev) })
	return ev.hist.item
}

func buildHistItem(ev *StoredEvent) histItem {
	d := ev.Data
	switch ev.Kind {
	case KindText:
		content := str(d, "content")
		agent := firstNonEmpty(str(d, "agent"), ev.Agent)
		if agent == "user" || str(d, "role") == "user" {
			return histItem{kind: histUser, content: content}
		}
		return histItem{kind: histAssistant, name: agent, content: content, id: str(d, "message_id")}
	case KindToolCall:
		call := llm.ToolCall{ID: str(d, "call_id"), Name: str(d, "name"), Arguments: argumentsText(d["arguments"])}
		return histItem{kind: histToolCall, name: firstNonEmpty(str(d, "agent"), ev.Agent), id: str(d, "message_id"),
			calls: []llm.ToolCall{call}[:1:1]}
	case KindToolResponse:
		return histItem{kind: histToolResult, id: str(d, "call_id"), content: resultText(d["result"])}
	case "attachment": // a file the user uploaded into the chat (chat.Attach); text files reach the model as text
		if text, ok := d["text"].(string); ok {
			return histItem{kind: histUser, content: "[attached file " + str(d, "filename") + "]\n" + text}
		}
	}
	return histItem{}
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
		if !inHistory(transcript[i].Kind) {
			continue
		}
		n++
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
	if inShape(msgs) {
		return msgs // nothing to place: most chats' history
	}
	return placeResults(msgs)
}

// placeResults is completeToolCalls without its shortcut.
func placeResults(msgs []llm.Message) []llm.Message {
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

// inShape reports whether msgs is already what completeToolCalls makes of
// it: every tool call answered right after its message, in order, once;
// no other result; no call id twice.
func inShape(msgs []llm.Message) bool {
	var seen map[string]bool
	for i := 0; i < len(msgs); i++ {
		if msgs[i].Role == "tool" {
			return false // a result not right after its call
		}
		calls := msgs[i].ToolCalls
		if len(calls) == 0 {
			continue
		}
		if len(msgs)-i-1 < len(calls) {
			return false
		}
		if seen == nil {
			seen = map[string]bool{}
		}
		for k, tc := range calls {
			if r := msgs[i+1+k]; r.Role != "tool" || r.ToolCallID != tc.ID || seen[tc.ID] {
				return false
			}
			seen[tc.ID] = true
		}
		i += len(calls)
	}
	return true
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
