package chat

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/mozaiks/mozaiks/internal/store"
)

// Frame is one outgoing WebSocket frame, encoded once and shared by every
// socket watching the chat.
type Frame struct {
	Seq   int64 // 0 for frames that are not stored (chunks, acks, errors to one socket)
	Type  string
	Bytes []byte
}

// topLevel are the data fields ChatUI reads at the top level of a frame; they
// are duplicated there (harmless for other clients).
var topLevel = []string{"agent", "content", "message_id", "role", "request_id", "prompt", "component_type", "payload",
	"corr", "status", "message", "error_code", "retryable", "call_id", "tool_name", "name", "display",
	"awaiting_response", "eventId", "ui_tool_id", "run_id", "reason"}

// Encode builds a frame: {"type", "seq"?, "timestamp", "data", ...top-level copies}.
func Encode(typ string, seq int64, ts time.Time, data map[string]any, replay bool) Frame {
	m := make(map[string]any, len(data)+6)
	for _, k := range topLevel {
		if v, ok := data[k]; ok {
			m[k] = v
		}
	}
	m["type"] = typ
	if data["restart"] == true {
		m["replace"] = true // see printFrame.Replace
	}
	if seq > 0 {
		m["seq"] = seq
	}
	m["timestamp"] = ts.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	if data == nil {
		data = map[string]any{}
	}
	m["data"] = data
	if replay {
		m["replay"] = true
	}
	b, err := json.Marshal(m)
	if err != nil {
		// Data comes from our own maps; an unencodable value is a bug, but
		// the client still gets a well-formed frame saying so.
		b, _ = json.Marshal(map[string]any{"type": "chat.error", "timestamp": m["timestamp"],
			"data": map[string]any{"kind": "error", "message": "unencodable event", "error_code": "INTERNAL", "retryable": false}})
	}
	return Frame{Seq: seq, Type: typ, Bytes: b}
}

// encodeRaw is Encode for data already encoded as raw (json.Marshal(data), as
// the store got it): the frame is put together around raw instead of
// encoding data a second time, byte for byte what Encode writes (its keys in
// encoding/json's sorted order). A stored event's data is encoded once.
func encodeRaw(typ string, seq int64, ts time.Time, data map[string]any, raw []byte, replay bool) Frame {
	type field struct {
		key string
		val any // []byte: already JSON
	}
	fs := make([]field, 0, 8)
	for _, k := range topLevel {
		if v, ok := data[k]; ok {
			fs = append(fs, field{k, v})
		}
	}
	fs = append(fs, field{"type", typ}, field{"timestamp", ts.UTC().Format("2006-01-02T15:04:05.000Z07:00")}, field{"data", raw})
	if data["restart"] == true {
		fs = append(fs, field{"replace", true})
	}
	if seq > 0 {
		fs = append(fs, field{"seq", seq})
	}
	if replay {
		fs = append(fs, field{"replay", true})
	}
	slices.SortFunc(fs, func(a, b field) int { return strings.Compare(a.key, b.key) })
	b := make([]byte, 0, len(raw)*2+128)
	for i, f := range fs {
		if i == 0 {
			b = append(b, '{')
		} else {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, f.key...)
		b = append(b, '"', ':')
		if r, ok := f.val.([]byte); ok {
			b = append(b, r...)
			continue
		}
		v, err := json.Marshal(f.val)
		if err != nil {
			return Encode(typ, seq, ts, data, replay)
		}
		b = append(b, v...)
	}
	return Frame{Seq: seq, Type: typ, Bytes: append(b, '}')}
}

// EncodeStored builds the frame of a stored event.
func EncodeStored(ev store.Event, replay bool) Frame {
	var data map[string]any
	if err := json.Unmarshal(ev.Data, &data); err != nil || data == nil {
		data = map[string]any{}
	}
	return Encode(ev.Type, ev.Seq, ev.Timestamp, data, replay)
}

// Simple builds an unstored frame of kind k (type "chat.k").
func Simple(kind string, data map[string]any) Frame {
	if data == nil {
		data = map[string]any{}
	}
	data["kind"] = kind
	return Encode("chat."+kind, 0, time.Now(), data, false)
}

// ErrorFrame is a chat.error for one socket.
func ErrorFrame(code, msg string, retryable bool) Frame {
	return Simple("error", map[string]any{"message": msg, "error_code": code, "retryable": retryable})
}

// printFrame is a chat.print frame with a fixed shape. Streamed chunks are
// the most frequent frames by far; encoding a struct skips the map and the
// key sort of Encode, which showed up in the throughput profile.
type printFrame struct {
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
	Agent     string `json:"agent,omitempty"`
	Content   string `json:"content"`
	MessageID string `json:"message_id,omitempty"`
	// Replace: the model's stream was retried; a client that appends
	// chunks discards what this message showed so far (data.restart too).
	Replace bool      `json:"replace,omitempty"`
	Data    printData `json:"data"`
}

type printData struct {
	Kind      string `json:"kind"`
	Agent     string `json:"agent,omitempty"`
	Content   string `json:"content"`
	MessageID string `json:"message_id,omitempty"`
	Restart   bool   `json:"restart,omitempty"`
}

// EncodePrint encodes a chat.print frame; data that does not fit the fixed
// shape goes through Encode.
func EncodePrint(ts time.Time, data map[string]any) Frame {
	var d printData
	for k, v := range data {
		var ok bool
		switch k {
		case "kind":
			d.Kind, ok = v.(string)
		case "agent":
			d.Agent, ok = v.(string)
		case "content":
			d.Content, ok = v.(string)
		case "message_id":
			d.MessageID, ok = v.(string)
		case "restart":
			d.Restart, ok = v.(bool)
		}
		if !ok {
			return Encode("chat.print", 0, ts, data, false)
		}
	}
	if d.Kind != "print" {
		return Encode("chat.print", 0, ts, data, false)
	}
	return encodePrint(ts, d.Agent, d.Content, d.MessageID, d.Restart)
}

// encodePrint encodes a chat.print frame of kind "print".
func encodePrint(ts time.Time, agent, content, messageID string, restart bool) Frame {
	d := printData{Kind: "print", Agent: agent, Content: content, MessageID: messageID, Restart: restart}
	b, _ := json.Marshal(printFrame{Type: "chat.print", Timestamp: ts.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		Agent: agent, Content: content, MessageID: messageID, Replace: restart, Data: d}) // strings and bools: cannot fail
	return Frame{Type: "chat.print", Bytes: b}
}
