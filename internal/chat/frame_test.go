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

// A stored event's frame, put together around the data the store got, is
// byte for byte the frame Encode makes.
func TestEncodeRawMatchesEncode(t *testing.T) {
	ts := time.Date(2026, 11, 27, 17, 0, 0, 123e6, time.UTC)
	for _, tc := range []struct {
		data   map[string]any
		seq    int64
		replay bool
	}{
		{map[string]any{"kind": "text", "agent": "user", "role": "user", "content": "a <b> & \"c\"\n\u2028", "message_id": "m_1"}, 3, false},
		{map[string]any{"kind": "run_start", "run_id": "run_1", "input_seq": int64(3), "speaker": "Assistant"}, 4, true},
		{map[string]any{"kind": "input_request", "request_id": "req_1", "prompt": "?", "awaiting_response": true,
			"payload": map[string]any{"z": 1.5, "a": []any{"x", nil, false}}}, 9, false},
		{map[string]any{"kind": "print", "content": "x", "restart": true}, 0, false},
		{map[string]any{}, 1, false},
	} {
		raw, err := json.Marshal(tc.data)
		if err != nil {
			t.Fatal(err)
		}
		got := encodeRaw("chat."+str(tc.data["kind"]), tc.seq, ts, tc.data, raw, tc.replay)
		want := Encode("chat."+str(tc.data["kind"]), tc.seq, ts, tc.data, tc.replay)
		if string(got.Bytes) != string(want.Bytes) || got.Seq != want.Seq || got.Type != want.Type {
			t.Errorf("encodeRaw = %s\nEncode    = %s", got.Bytes, want.Bytes)
		}
	}
}
