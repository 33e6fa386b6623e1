package ws

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/mozaiks/mozaiks/internal/chat"
)

// Write coalescing under backpressure: when a socket's queue already holds
// several streamed chunks (chat.print) of the same message, they go out as
// one chat.print whose content is theirs concatenated. Clients append chunks
// (ChatUI/src/pages/ChatPage.js case 'print': m.content += chunk on the
// streaming message of the same agent), so one merged chunk shows what its
// parts would have. A socket that keeps up never has two chunks queued and
// gets one frame per chunk, as before. Never merged: chunks of different
// messages or agents, frames of any other type, and a chunk that replaces
// the message ("replace": a retried stream) into the chunks before it; such
// a chunk may absorb the chunks after it (they append to what it shows).

// printWire is a chat.print frame as chat.EncodePrint writes it. A frame
// with any other field is not merged.
type printWire struct {
	Type      string    `json:"type"`
	Timestamp string    `json:"timestamp"`
	Agent     string    `json:"agent,omitempty"`
	Content   string    `json:"content"`
	MessageID string    `json:"message_id,omitempty"`
	Replace   bool      `json:"replace,omitempty"`
	Data      printBody `json:"data"`
}

type printBody struct {
	Kind      string `json:"kind"`
	Agent     string `json:"agent,omitempty"`
	Content   string `json:"content"`
	MessageID string `json:"message_id,omitempty"`
	Restart   bool   `json:"restart,omitempty"`
}

// decodePrint reads a chat.print frame of the plain shape; false for
// anything else (another type, other fields, top-level and data disagreeing,
// no message id to tell messages apart).
func decodePrint(f chat.Frame) (printWire, bool) {
	var p printWire
	if f.Type != "chat.print" || f.Seq != 0 {
		return p, false
	}
	dec := json.NewDecoder(bytes.NewReader(f.Bytes))
	dec.DisallowUnknownFields()
	if dec.Decode(&p) != nil || dec.More() {
		return p, false
	}
	d := p.Data
	ok := p.Type == "chat.print" && d.Kind == "print" && p.MessageID != "" && d.MessageID == p.MessageID &&
		d.Agent == p.Agent && d.Content == p.Content && d.Restart == p.Replace
	return p, ok
}

// coalesce merges runs of chunks of one message in frames (in place) and
// returns the frames to send, in order.
func coalesce(frames []chat.Frame) []chat.Frame {
	if !hasPrintRun(frames) {
		return frames
	}
	out := frames[:0]
	for i := 0; i < len(frames); {
		f := frames[i]
		next := i + 1
		if next < len(frames) && frames[next].Type == "chat.print" {
			if head, ok := decodePrint(f); ok {
				var sb strings.Builder
				sb.WriteString(head.Content)
				last := head
				for ; next < len(frames) && frames[next].Type == "chat.print"; next++ {
					p, ok := decodePrint(frames[next])
					if !ok || p.Replace || p.MessageID != head.MessageID || p.Agent != head.Agent {
						break
					}
					sb.WriteString(p.Content)
					last = p
				}
				if next > i+1 {
					if m, ok := mergedPrint(head, last, sb.String()); ok {
						out = append(out, m)
						i = next
						continue
					}
				}
			}
		}
		// Not merged: the frame as it was (out never passes i, so the
		// in-place copy reads nothing it has overwritten).
		out = append(out, f)
		i++
	}
	clear(frames[len(out):])
	return out
}

// hasPrintRun reports whether two chat.print frames follow each other.
func hasPrintRun(frames []chat.Frame) bool {
	for i := 1; i < len(frames); i++ {
		if frames[i].Type == "chat.print" && frames[i-1].Type == "chat.print" {
			return true
		}
	}
	return false
}

// mergedPrint is head with content, stamped with the time of the last chunk
// merged.
func mergedPrint(head, last printWire, content string) (chat.Frame, bool) {
	head.Timestamp = last.Timestamp
	head.Content, head.Data.Content = content, content
	b, err := json.Marshal(head)
	if err != nil {
		return chat.Frame{}, false
	}
	return chat.Frame{Type: "chat.print", Bytes: b}, true
}
