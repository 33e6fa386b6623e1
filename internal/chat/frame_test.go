package chat

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// The fast chat.print encoding decodes to exactly what Encode produces.
func TestEncodePrintMatchesEncode(t *testing.T) {
	ts := time.Date(2026, 11, 27, 17, 0, 0, 123e6, time.UTC)
	for _, data := range []map[string]any{
		{"kind": "print", "agent": "Planner", "content": "Hello <b>&", "message_id": "m_1"},
		{"kind": "print", "agent": "Planner", "content": "", "message_id": "m_1", "restart": true},
		{"kind": "print", "agent": "A", "content": "x", "extra": 1.5}, // falls back
	} {
		fast := EncodePrint(ts, data)
		slow := Encode("chat.print", 0, ts, data, false)
		var a, b map[string]any
		if err := json.Unmarshal(fast.Bytes, &a); err != nil {
			t.Fatal(err)
		}
		_ = json.Unmarshal(slow.Bytes, &b)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("EncodePrint = %s\nEncode      = %s", fast.Bytes, slow.Bytes)
		}
		// A retried stream is announced at the top level, where clients
		// that append chunks look.
		if want := data["restart"] == true; (a["replace"] == true) != want {
			t.Errorf("replace = %v for %v", a["replace"], data)
		}
	}
}

func BenchmarkEncodePrint(b *testing.B) {
	data := map[string]any{"kind": "print", "agent": "Assistant", "content": "token ", "message_id": "m_8f2c1234"}
	ts := time.Now()
	b.Run("Encode", func(b *testing.B) {
		for b.Loop() {
			Encode("chat.print", 0, ts, data, false)
		}
	})
	b.Run("EncodePrint", func(b *testing.B) {
		for b.Loop() {
			EncodePrint(ts, data)
		}
	})
}
