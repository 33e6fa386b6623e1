package serve_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
)

// The routes ChatUI calls, as it calls them.
func TestChatUICompatibilityRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	var start map[string]any
	if code := e.do("POST", "/api/chats/app1/assistant/start", map[string]any{"user_id": "u1"}, &start); code != 200 ||
		start["success"] != true || start["reused"] != false || start["workflow_name"] != "assistant" {
		t.Fatalf("start = %d %v", code, start)
	}
	chatID := start["chat_id"].(string)
	if start["websocket_url"] != "/ws/assistant/app1/"+chatID+"/u1" {
		t.Fatalf("websocket_url %v", start["websocket_url"])
	}
	var again map[string]any
	e.do("POST", "/api/chats/app1/assistant/start", map[string]any{"user_id": "u1"}, &again)
	if again["chat_id"] != chatID || again["reused"] != true {
		t.Fatalf("second start did not reuse the in-progress chat: %v", again)
	}
	var fresh map[string]any
	e.do("POST", "/api/chats/app1/assistant/start", map[string]any{"user_id": "u1", "force_new": true}, &fresh)
	if fresh["chat_id"] == chatID || fresh["reused"] != false {
		t.Fatalf("force_new reused: %v", fresh)
	}

	var exists map[string]bool
	e.do("GET", "/api/chats/exists/app1/assistant/"+chatID, nil, &exists)
	if !exists["exists"] {
		t.Fatal("exists = false for a started chat")
	}
	e.do("GET", "/api/chats/exists/app1/triage/"+chatID, nil, &exists)
	if exists["exists"] {
		t.Fatal("exists = true under another workflow")
	}
	var meta map[string]any
	e.do("GET", "/api/chats/meta/app1/assistant/"+chatID, nil, &meta)
	if meta["exists"] != true || meta["status"] != float64(0) || meta["workflow_name"] != "assistant" {
		t.Fatalf("meta %v", meta)
	}
	var ids struct {
		ChatIDs []string `json:"chat_ids"`
	}
	e.do("GET", "/api/chats/app1/assistant?user_id=u1", nil, &ids)
	if len(ids.ChatIDs) != 2 {
		t.Fatalf("chat_ids %v", ids.ChatIDs)
	}
	var list struct {
		Sessions []map[string]any `json:"sessions"`
	}
	e.do("GET", "/api/sessions/list/app1/u1", nil, &list)
	if len(list.Sessions) != 2 {
		t.Fatalf("in-progress list %v", list)
	}
	var recent struct {
		Session map[string]any `json:"session"`
	}
	e.do("GET", "/api/sessions/recent/app1/u1", nil, &recent)
	if recent.Session == nil {
		t.Fatal("no recent session")
	}
	e.do("GET", "/api/sessions/recent/app1/nobody", nil, &recent)
	if recent.Session != nil {
		t.Fatalf("recent for a user with no chats: %v", recent.Session)
	}

	// Workflow metadata is public and never carries prompts or tool URLs.
	var wfs map[string]map[string]any
	if code := e.do("GET", "/api/workflows", nil, &wfs); code != 200 || wfs["approval"] == nil || wfs["assistant"]["startup_mode"] != "UserDriven" {
		t.Fatalf("workflows %d %v", code, wfs)
	}
	raw := new(strings.Builder)
	for _, w := range wfs {
		raw.WriteString(strings.ToLower(strings.Join(strings.Fields(toJSON(w)), " ")))
	}
	for _, secret := range []string{"system_message", "you plan things", "helpful, concise"} {
		if strings.Contains(raw.String(), secret) {
			t.Fatalf("workflow config leaks %q", secret)
		}
	}
	var ui map[string]any
	e.do("GET", "/api/workflows/approval/ui-tools", nil, &ui)
	if ui["ui_tools_count"] != float64(1) {
		t.Fatalf("ui-tools %v", ui)
	}
	var tr map[string]any
	e.do("GET", "/api/workflows/approval/transport", nil, &tr)
	if tr["transport"] != "websocket" {
		t.Fatalf("transport %v", tr)
	}

	// Input over REST: 202 at once, and the message reaches the workflow.
	e.LLM.Enqueue(llmtest.Reply{Text: "got it"})
	c := e.mustDial("assistant", "app1", chatID, "u1", "")
	c.until("chat.input_request", wait)
	var acc map[string]any
	if code := e.do("POST", "/chat/app1/"+chatID+"/u1/input", map[string]any{"message": "via rest", "workflow_name": "assistant"}, &acc); code != 202 {
		t.Fatalf("input = %d %v", code, acc)
	}
	fs := c.until("chat.input_request", wait)
	if lastText(fs).str("content") != "got it" {
		t.Fatalf("REST input not answered: %s", types(fs))
	}
	// Answering a pending input request by id.
	req := ofType(fs, "chat.input_request")[0].str("request_id")
	e.LLM.Enqueue(llmtest.Reply{Text: "answered by id"})
	var ok map[string]string
	if code := e.do("POST", "/api/user-input/submit", map[string]any{"input_request_id": req, "user_input": "yes", "app_id": "app1"}, &ok); code != 200 || ok["status"] != "success" {
		t.Fatalf("user-input submit = %d %v", code, ok)
	}
	if lastText(c.until("chat.input_request", wait)).str("content") != "answered by id" {
		t.Fatal("input request answer did not continue the chat")
	}
	if code := e.do("POST", "/api/user-input/submit", map[string]any{"input_request_id": "req_unknown", "user_input": "x", "app_id": "app1"}, nil); code != 404 {
		t.Fatalf("unknown input request = %d", code)
	}
	if code := e.do("POST", "/chat/app1/"+chatID+"/intruder/input", map[string]any{"message": "x"}, nil); code != 404 {
		t.Fatalf("input to another user's chat = %d", code)
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
