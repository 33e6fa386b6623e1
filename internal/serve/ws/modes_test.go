package ws

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/chat"
	"github.com/mozaiks/mozaiks/internal/store"
)

func TestAskFrame(t *testing.T) {
	t.Parallel()
	data := map[string]any{"kind": "text", "agent": "Assistant", "content": "hi <b>", "message_id": "m_1"}
	for _, tc := range []struct {
		typ      string
		metadata bool
	}{{"chat.text", true}, {"chat.select_speaker", false}} {
		f := askFrame(chat.Encode(tc.typ, 42, time.Now(), data, false), "general-abc")
		var got map[string]any
		if err := json.Unmarshal(f.Bytes, &got); err != nil {
			t.Fatal(err)
		}
		meta, hasMeta := got["metadata"].(map[string]any)
		if _, ok := got["seq"]; ok || got["type"] != tc.typ || got["content"] != "hi <b>" || hasMeta != tc.metadata ||
			(tc.metadata && (meta["source"] != "general_agent" || meta["general_chat_id"] != "general-abc")) {
			t.Errorf("%s: askFrame = %s", tc.typ, f.Bytes)
		}
	}
}

func TestMetaFrameArtifactNames(t *testing.T) {
	t.Parallel()
	s := store.Session{ChatID: "c1", AppID: "a", UserID: "u", Workflow: "wf", LastSeq: 3,
		LastArtifact: json.RawMessage(`{"tool_name":"t","component_type":"C","payload":{"x":1},"eventId":"ui_1"}`)}
	var got struct {
		ChatExists   bool           `json:"chat_exists"`
		CacheSeed    uint32         `json:"cache_seed"`
		LastArtifact map[string]any `json:"last_artifact"`
		Data         map[string]any `json:"data"`
	}
	if err := json.Unmarshal(metaFrame(s, true).Bytes, &got); err != nil {
		t.Fatal(err)
	}
	// ChatPage.js restores from last_artifact.ui_tool_id, event_id, workflow_name, payload, display.
	a := got.LastArtifact
	if !got.ChatExists || got.CacheSeed != CacheSeed("c1") || a["ui_tool_id"] != "t" || a["event_id"] != "ui_1" ||
		a["workflow_name"] != "wf" || a["display"] != "artifact" || got.Data["chat_id"] != "c1" {
		t.Fatalf("meta frame: %+v", got)
	}
}

// askFrame re-encodes every live frame of a general chat; the baseline is
// encoding the frame once, which every frame costs anyway.
func BenchmarkAskFrame(b *testing.B) {
	data := map[string]any{"kind": "text", "agent": "Assistant", "role": "assistant", "message_id": "m_8f2c1234",
		"content": "Go is an open source programming language that makes it simple to build secure, scalable systems."}
	ts := time.Now()
	b.Run("baseline_Encode", func(b *testing.B) {
		for b.Loop() {
			chat.Encode("chat.text", 17, ts, data, false)
		}
	})
	f := chat.Encode("chat.text", 17, ts, data, false)
	b.Run("askFrame", func(b *testing.B) {
		for b.Loop() {
			askFrame(f, "general-0123456789abcdef01234567")
		}
	})
}
