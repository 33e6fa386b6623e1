package serve_test

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
	"github.com/mozaiks/mozaiks/internal/store"
)

// Protocol tests for what unchanged ChatUI (BlocUnited-LLC/mozaiks-ai,
// ChatUI/src) reads and sends. Each names the ChatUI code it follows.

// lockedBuffer collects the server log across goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// getRaw returns the status and body of a GET.
func (e *env) getRaw(path string) (int, []byte) {
	e.t.Helper()
	resp, err := http.Get(e.URL + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// objectKeys lists a JSON object's keys in document order.
func objectKeys(t *testing.T, raw []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %s", raw)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// ChatUI starts the chat for its build default workflow but opens the socket
// for the first key of GET /api/workflows (ChatUI/src/pages/ChatPage.js
// connectWebSocket: urlWorkflowName || getDefaultWorkflowFromRegistry(),
// which is getLoadedWorkflows()[0].name; ChatUI/src/workflows/index.js fills
// the registry from Object.entries of the answer, in key order).
func TestWorkflowsListDefaultFirst(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  map[string]string
		want []string
	}{
		{nil, []string{"assistant", "approval", "triage"}},
		{map[string]string{"DEFAULT_WORKFLOW": "triage"}, []string{"triage", "approval", "assistant"}},
		{map[string]string{"DEFAULT_WORKFLOW": "not-loaded"}, []string{"approval", "assistant", "triage"}},
	} {
		e := newEnv(t, envOpts{env: tc.env})
		for _, path := range []string{"/api/workflows", "/api/workflows/config"} {
			code, raw := e.getRaw(path)
			if got := objectKeys(t, raw); code != 200 || !slices.Equal(got, tc.want) {
				t.Errorf("DEFAULT_WORKFLOW=%v: %s keys %v (%d), want %v", tc.env, path, got, code, tc.want)
			}
		}
	}
}

// The root URL: ChatUI starts a chat for "assistant" (POST .../start) and
// connects /ws/<first key>/...; with the default first the socket opens.
// A socket whose path names another workflow than the chat's is refused with
// 1008 "chat not found", and the server log says why.
func TestRootURLConnectsAndWrongWorkflowIsLogged(t *testing.T) {
	t.Parallel()
	logs := &lockedBuffer{}
	e := newEnv(t, envOpts{logw: logs})
	var start map[string]any
	if code := e.do("POST", "/api/chats/app1/assistant/start", map[string]any{"user_id": "u1"}, &start); code != 200 {
		t.Fatalf("start %d %v", code, start)
	}
	chatID := start["chat_id"].(string)
	_, raw := e.getRaw("/api/workflows")
	first := objectKeys(t, raw)[0]
	c := e.mustDial(first, "app1", chatID, "u1", "")
	if f, ok := c.next(wait); !ok || f.Type != "chat_meta" {
		t.Fatalf("socket for the first workflow %q: %s", first, f.raw)
	}

	bad, _, err := e.dial("triage", "app1", chatID, "u1", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if code := bad.closed(wait); code != websocket.ClosePolicyViolation {
		t.Fatalf("socket naming another workflow closed with %d, want 1008", code)
	}
	other, _, err := e.dial("assistant", "app1", chatID, "u2", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if code := other.closed(wait); code != websocket.ClosePolicyViolation {
		t.Fatalf("socket of another user closed with %d, want 1008", code)
	}
	log := logs.String()
	for _, want := range []string{"chat socket refused", "chat belongs to workflow assistant, the socket path names triage",
		"chat belongs to another user"} {
		if !strings.Contains(log, want) {
			t.Errorf("server log lacks %q:\n%s", want, log)
		}
	}
}

// chat_meta is read at the frame's top level (ChatUI/src/pages/ChatPage.js
// handleIncoming, "Handle chat_meta events": data.cache_seed,
// data.chat_exists, data.last_artifact where data is the whole frame); the
// same fields stay under "data" for other clients.
func TestChatMetaFieldsAtTopLevel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	meta := func() map[string]any {
		c := e.mustDial("assistant", "app1", "chat-meta", "u1", "")
		f, ok := c.next(wait)
		if !ok || f.Type != "chat_meta" {
			t.Fatalf("first frame %s", f.raw)
		}
		var top map[string]any
		if err := json.Unmarshal(f.raw, &top); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"chat_id", "chat_exists", "cache_seed", "last_artifact"} {
			if _, ok := top[k]; !ok {
				t.Errorf("chat_meta lacks top-level %s: %s", k, f.raw)
			}
		}
		for _, k := range []string{"chat_id", "workflow_name", "chat_exists", "cache_seed", "last_artifact", "status", "last_seq"} {
			if _, ok := f.Data[k]; !ok {
				t.Errorf("chat_meta lacks data.%s: %s", k, f.raw)
			}
		}
		c.until("chat.resume_boundary", wait)
		c.c.Close()
		return top
	}
	first := meta()
	if first["chat_exists"] != false || first["chat_id"] != "chat-meta" {
		t.Fatalf("new chat meta %v", first)
	}
	waitStatus(t, e, "app1", "chat-meta", "awaiting_input") // the greeting is stored
	again := meta()
	if again["chat_exists"] != true || again["cache_seed"] != first["cache_seed"] || again["cache_seed"] == nil {
		t.Fatalf("existing chat meta %v (first %v)", again, first)
	}
}

// ChatUI sends client.resume with its stored position as soon as the socket
// opens (ChatUI/src/adapters/api.js socket.onopen: if (lastSequence > 0)
// sendResume()) and adds a "Session replay complete" bubble per
// chat.resume_boundary (ChatUI/src/pages/ChatPage.js case 'resume_boundary').
// One connect gives one boundary and one copy of the transcript.
func TestOneResumeBoundaryPerConnect(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	e.LLM.Enqueue(llmtest.Reply{Text: "first answer"})
	c := greet(t, e, "chat-rb")
	c.send(map[string]any{"type": "user.input.submit", "text": "q1"})
	c.until("chat.input_request", wait)
	c.c.Close()
	waitStatus(t, e, "app1", "chat-rb", "awaiting_input")

	for _, from := range []string{"stored position", "zero"} {
		c2 := e.mustDial("assistant", "app1", "chat-rb", "u1", "")
		fs := c2.until("chat.resume_boundary", wait)
		last := int64(fs[len(fs)-1].Data["last_seq"].(float64))
		idx := last
		if from == "zero" {
			idx = 0
		}
		c2.send(map[string]any{"type": "client.resume", "chat_id": "chat-rb", "lastClientIndex": idx})
		// A malformed known frame: its chat.error must be the next frame,
		// with no second replay or boundary before it.
		c2.send(`{"type":"user.input.submit"}`)
		if f, ok := c2.next(wait); !ok || f.Type != "chat.error" {
			t.Fatalf("resume from %s right after connect: next frame %s, want only the chat.error", from, f.raw)
		}
		c2.c.Close()
	}

	// A reload while a reply streams: live frames reach the new socket before
	// ChatUI's resume does; that resume still adds no replay and no boundary.
	e.LLM.Enqueue(llmtest.Reply{Text: strings.Repeat("slow ", 300), TokenDelay: 5 * time.Millisecond})
	c3 := e.mustDial("assistant", "app1", "chat-rb", "u1", "")
	c3.until("chat.resume_boundary", wait)
	c3.send(map[string]any{"type": "user.input.submit", "text": "q2"})
	c3.until("chat.print", wait)
	c4 := e.mustDial("assistant", "app1", "chat-rb", "u1", "")
	fs := c4.until("chat.resume_boundary", wait)
	last := int64(fs[len(fs)-1].Data["last_seq"].(float64))
	c4.until("chat.print", wait) // live
	c4.send(map[string]any{"type": "client.resume", "chat_id": "chat-rb", "lastClientIndex": last})
	c4.send(`{"type":"user.input.submit"}`)
	for _, f := range c4.until("chat.error", wait) {
		if f.Type == "chat.resume_boundary" || f.Replay {
			t.Fatalf("resume right after a mid-stream reconnect replayed: %s", f.raw)
		}
	}
	c4.until("chat.input_request", wait)
}

// Ask mode as ChatUI drives it: chat.enter_general_mode -> chat.mode_changed
// with data.mode "general" and data.general_chat_id (ChatUI/src/pages/ChatPage.js
// ensureGeneralMode, case 'mode_changed'); Ask messages are user.input.submit
// with chat_id = the general chat (ChatUI/src/pages/ChatPage.js
// handleSendMessage: conversationMode === 'ask'); back with
// chat.switch_workflow {chat_id} -> chat.context_switched with
// data.to_chat_id and data.workflow_name (case 'context_switched'). The list
// and transcript routes are ChatUI/src/adapters/api.js listGeneralChats and
// fetchGeneralChatTranscript, read by ChatPage.js refreshGeneralSessions
// (result.sessions) and hydrateGeneralTranscript / mapGeneralMessage
// (transcript.messages[].role, content, sequence).
func TestAskMode(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) { testAskMode(t, st) })
}

func testAskMode(t *testing.T, st store.Store) {
	e := newEnv(t, envOpts{store: st})
	c := greet(t, e, "chat-ask")
	c.send(map[string]any{"type": "chat.enter_general_mode", "chat_id": "chat-ask"})
	mc := ofType(c.until("chat.mode_changed", wait), "chat.mode_changed")[0]
	gid := mc.str("general_chat_id")
	if mc.str("mode") != "general" || !strings.HasPrefix(gid, "general-") || mc.str("general_chat_label") == "" {
		t.Fatalf("mode_changed %s", mc.raw)
	}

	e.LLM.Enqueue(llmtest.Reply{Text: "Go is a programming language."})
	c.send(map[string]any{"type": "user.input.submit", "chat_id": gid, "text": "What is Go?",
		"context": map[string]any{"source": "chat_interface", "conversation_mode": "ask", "general_chat_id": gid}})
	// No seq on Ask-mode frames: ChatUI keeps one position per socket and
	// drops a frame with a lower seq as a gap (ChatUI/src/adapters/api.js
	// socket.onmessage, "Sequence gap detected").
	for _, f := range untilText(t, c, "Go is a programming language.") {
		if f.Seq != 0 {
			t.Fatalf("Ask-mode frame with seq: %s", f.raw)
		}
		// case 'text' reads metadata.source and metadata.general_chat_id.
		var top struct {
			Metadata map[string]string `json:"metadata"`
		}
		_ = json.Unmarshal(f.raw, &top)
		if f.Type == "chat.text" && (top.Metadata["source"] != "general_agent" || top.Metadata["general_chat_id"] != gid) {
			t.Fatalf("Ask-mode text without its metadata: %s", f.raw)
		}
	}
	if req := e.LLM.ChatRequests(); req[len(req)-1].LastUserMessage() != "What is Go?" {
		t.Fatalf("general agent was asked %q", req[len(req)-1].LastUserMessage())
	}

	// The workflow chat did not get the Ask messages.
	var wf sessionResp
	e.do("GET", "/api/sessions/chat-ask?app_id=app1", nil, &wf)
	if wf.MessageCount != 1 {
		t.Fatalf("workflow chat has %d messages, want 1 (its greeting)", wf.MessageCount)
	}
	var list struct {
		Sessions []map[string]any `json:"sessions"`
		Count    int              `json:"count"`
	}
	if code := e.do("GET", "/api/general_chats/list/app1/u1", nil, &list); code != 200 || list.Count != 1 ||
		list.Sessions[0]["chat_id"] != gid || list.Sessions[0]["label"] == "" {
		t.Fatalf("general list %d %+v", code, list)
	}
	var tr struct {
		ChatID   string           `json:"chat_id"`
		Label    string           `json:"label"`
		Messages []map[string]any `json:"messages"`
	}
	if code := e.do("GET", "/api/general_chats/transcript/app1/"+gid, nil, &tr); code != 200 || tr.ChatID != gid || len(tr.Messages) < 2 {
		t.Fatalf("transcript %d %+v", code, tr)
	}
	n := len(tr.Messages)
	if u, a := tr.Messages[n-2], tr.Messages[n-1]; u["role"] != "user" || u["content"] != "What is Go?" ||
		a["role"] != "assistant" || a["content"] != "Go is a programming language." || a["sequence"] == nil {
		t.Fatalf("transcript messages %v", tr.Messages)
	}

	// Back to the workflow: its input goes to the workflow chat again.
	c.send(map[string]any{"type": "chat.switch_workflow", "chat_id": "chat-ask"})
	cs := ofType(c.until("chat.context_switched", wait), "chat.context_switched")[0]
	if cs.str("to_chat_id") != "chat-ask" || cs.str("workflow_name") != "assistant" {
		t.Fatalf("context_switched %s", cs.raw)
	}
	e.LLM.Enqueue(llmtest.Reply{Text: "workflow answer"})
	c.send(map[string]any{"type": "user.input.submit", "chat_id": "chat-ask", "text": "back"})
	untilText(t, c, "workflow answer")
	waitStatus(t, e, "app1", "chat-ask", "awaiting_input")
	e.do("GET", "/api/sessions/chat-ask?app_id=app1", nil, &wf)
	var gen sessionResp
	e.do("GET", "/api/sessions/"+gid+"?app_id=app1", nil, &gen)
	if wf.MessageCount != 3 || gen.MessageCount != 3 {
		t.Fatalf("messages: workflow %d (want 3), general %d (want 3: greeting, question, answer)", wf.MessageCount, gen.MessageCount)
	}

	// Entering again finds the same general chat; start_general_chat makes a new one.
	c.send(map[string]any{"type": "chat.enter_general_mode", "general_chat_id": gid})
	if again := ofType(c.until("chat.mode_changed", wait), "chat.mode_changed")[0]; again.str("general_chat_id") != gid {
		t.Fatalf("re-entering Ask mode: %s, want %s", again.raw, gid)
	}
	c.send(map[string]any{"type": "chat.start_general_chat"})
	created := ofType(c.until("chat.general_session_created", wait), "chat.general_session_created")[0]
	if id := created.str("general_chat_id"); id == gid || !strings.HasPrefix(id, "general-") {
		t.Fatalf("new general chat %s", created.raw)
	}
	e.do("GET", "/api/general_chats/list/app1/u1", nil, &list)
	if list.Count != 2 || list.Sessions[0]["chat_id"] != created.str("general_chat_id") {
		t.Fatalf("list after a new general chat: %+v", list)
	}

	// Another user neither enters nor reads u1's general chat.
	c2 := e.mustDial("assistant", "app1", "chat-ask-u2", "u2", "")
	c2.send(map[string]any{"type": "chat.enter_general_mode", "general_chat_id": gid})
	if m2 := ofType(c2.until("chat.mode_changed", wait), "chat.mode_changed")[0]; m2.str("general_chat_id") == gid {
		t.Fatalf("u2 entered u1's general chat: %s", m2.raw)
	}
	if code := e.do("GET", "/api/general_chats/transcript/app1/"+gid+"?user_id=u2", nil, nil); code != 404 {
		t.Fatalf("u2 read u1's general transcript: %d", code)
	}
	c2.send(map[string]any{"type": "chat.switch_workflow", "chat_id": "chat-ask"})
	if f := ofType(c2.until("chat.error", wait), "chat.error")[0]; f.str("error_code") != "SESSION_NOT_FOUND" {
		t.Fatalf("u2 switched to u1's workflow chat: %s", f.raw)
	}

	// General chats are not workflow chats: the workflow routes do not show
	// them, and a socket cannot name one in its path.
	var ids struct {
		ChatIDs []string `json:"chat_ids"`
	}
	e.do("GET", "/api/chats/app1/assistant?user_id=u1", nil, &ids)
	var exists map[string]bool
	e.do("GET", "/api/chats/exists/app1/assistant/"+gid, nil, &exists)
	if slices.Contains(ids.ChatIDs, gid) || exists["exists"] || !slices.Contains(ids.ChatIDs, "chat-ask") {
		t.Fatalf("workflow routes: chat_ids %v, exists(general) %v", ids.ChatIDs, exists)
	}
	g, _, err := e.dial("assistant", "app1", gid, "u1", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if code := g.closed(wait); code != websocket.ClosePolicyViolation {
		t.Fatalf("socket naming a general chat closed with %d, want 1008", code)
	}
}

// untilText reads frames until a chat.text with the given content.
func untilText(t *testing.T, c *client, content string) []frame {
	t.Helper()
	var got []frame
	for {
		fs := c.until("chat.text", wait)
		got = append(got, fs...)
		if fs[len(fs)-1].str("content") == content {
			return got
		}
	}
}

// Unknown inbound types are ignored, logged at debug and counted, as the
// original did (its validator listed the known types and dropped the rest);
// ChatUI sends types this server does not act on (chat.start_workflow ...).
func TestUnknownFramesIgnoredAndCounted(t *testing.T) {
	t.Parallel()
	logs := &lockedBuffer{}
	e := newEnv(t, envOpts{logw: logs})
	c := greet(t, e, "chat-unk")
	for _, f := range []string{`{"type":"chat.start_workflow","workflow_name":"x"}`, `{"type":"brand.new"}`, `{"type":"x","text":5}`} {
		c.send(f)
	}
	c.send(`{"type":"ui_tool_response"}`)
	if f, ok := c.next(wait); !ok || f.str("error_code") != "SCHEMA_VALIDATION_FAILED" {
		t.Fatalf("after unknown frames: %s, want the malformed ui_tool_response's chat.error", f.raw)
	}
	_, metrics := e.getRaw("/metrics")
	if !strings.Contains(string(metrics), "mozaiks_ws_unknown_frames_total 3") {
		t.Errorf("metrics lack mozaiks_ws_unknown_frames_total 3")
	}
	if !strings.Contains(logs.String(), "ignored inbound frame of unknown type") || !strings.Contains(logs.String(), "brand.new") {
		t.Errorf("debug log lacks the ignored frame")
	}
}

// upload posts a file as ChatUI does (ChatUI/src/adapters/api.js uploadFile:
// FormData with file first, then appId, userId, chatId, intent).
func (e *env) upload(name, partType string, content []byte, fields map[string]string) (int, map[string]any) {
	e.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="`+name+`"`)
	h.Set("Content-Type", partType)
	pw, _ := mw.CreatePart(h)
	_, _ = pw.Write(content)
	for k, v := range fields {
		_ = mw.WriteField(k, v)
	}
	_ = mw.Close()
	resp, err := http.Post(e.URL+"/api/chat/upload", mw.FormDataContentType(), &body)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestUploadIntoChat(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) { testUploadIntoChat(t, st) })
}

func testUploadIntoChat(t *testing.T, st store.Store) {
	e := newEnv(t, envOpts{store: st, env: map[string]string{"MOZAIKS_UPLOAD_MAX_BYTES": "1024"}})
	c := greet(t, e, "chat-up")
	fields := map[string]string{"appId": "app1", "userId": "u1", "chatId": "chat-up", "intent": "context"}
	// The declared part type is ignored: the type is sniffed from the bytes.
	code, out := e.upload("notes.txt", "image/png", []byte("The secret word is PAPAYA.\n"), fields)
	if code != 201 || out["is_text"] != true || out["content_type"] != "text/plain; charset=utf-8" || out["attachment_id"] == "" {
		t.Fatalf("text upload %d %v", code, out)
	}
	att := ofType(c.until("chat.attachment", wait), "chat.attachment")[0]
	if att.str("filename") != "notes.txt" || att.str("text") != "The secret word is PAPAYA.\n" || att.Seq == 0 {
		t.Fatalf("attachment frame %s", att.raw)
	}
	// The model reads a text file.
	e.LLM.Enqueue(llmtest.Reply{Text: "It is PAPAYA."})
	c.send(map[string]any{"type": "user.input.submit", "text": "What is the secret word?"})
	untilText(t, c, "It is PAPAYA.")
	reqs := e.LLM.ChatRequests()
	var saw bool
	for _, m := range reqs[len(reqs)-1].Messages {
		saw = saw || (m.Role == "user" && strings.Contains(m.Content, "PAPAYA") && strings.Contains(m.Content, "notes.txt"))
	}
	if !saw {
		t.Fatalf("the model did not see the text file: %+v", reqs[len(reqs)-1].Messages)
	}
	// A binary file is stored, typed by its bytes, and not shown to the model as text.
	png := append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 32)...)
	if code, out := e.upload("pic.png", "text/plain", png, fields); code != 201 || out["content_type"] != "image/png" || out["is_text"] != false {
		t.Fatalf("binary upload %d %v", code, out)
	}
	for _, tc := range []struct {
		name    string
		content []byte
		fields  map[string]string
		want    int
	}{
		{"too large", bytes.Repeat([]byte("x"), 2048), fields, 413},
		{"another user's chat", []byte("hi"), map[string]string{"appId": "app1", "userId": "u2", "chatId": "chat-up"}, 404},
		{"missing chat", []byte("hi"), map[string]string{"appId": "app1", "userId": "u1", "chatId": "nope"}, 404},
		{"no chat id", []byte("hi"), map[string]string{"appId": "app1", "userId": "u1"}, 400},
		{"bad id", []byte("hi"), map[string]string{"appId": "app 1", "userId": "u1", "chatId": "chat-up"}, 400},
	} {
		if code, out := e.upload("f.txt", "text/plain", tc.content, tc.fields); code != tc.want {
			t.Errorf("%s: %d %v, want %d", tc.name, code, out, tc.want)
		}
	}
	// Listed in the transcript.
	var sess sessionResp
	e.do("GET", "/api/sessions/chat-up?app_id=app1", nil, &sess)
	n := 0
	for _, m := range sess.Messages {
		if m.Data["kind"] == "attachment" {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("transcript lists %d attachments, want 2", n)
	}
}

// ChatUI loads its theme from GET /api/themes/{app_id} and reads data.theme
// and data.source (ChatUI/src/styles/themeProvider.js loadThemeFromAPI).
func TestThemes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "acme.json"), []byte(`{"branding":{"name":"Acme"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "broken.json"), []byte(`{not json`), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOpts{env: map[string]string{"MOZAIKS_THEMES_PATH": dir}})
	type themeResp struct {
		Theme struct {
			Branding map[string]any `json:"branding"`
			Colors   map[string]any `json:"colors"`
		} `json:"theme"`
		Source string `json:"source"`
	}
	var th themeResp
	if code := e.do("GET", "/api/themes/acme", nil, &th); code != 200 || th.Source != "custom" || th.Theme.Branding["name"] != "Acme" {
		t.Fatalf("custom theme %d %+v", code, th)
	}
	for _, app := range []string{"other", "broken"} {
		th = themeResp{}
		if code := e.do("GET", "/api/themes/"+app, nil, &th); code != 200 || th.Source != "default" || th.Theme.Colors["primary"] == nil {
			t.Fatalf("%s: default theme %d %+v", app, code, th)
		}
	}
	if code := e.do("GET", "/api/themes/a%20b", nil, nil); code != 400 {
		t.Fatalf("invalid app id: %d", code)
	}
}

// chat.tool_response: ChatUI shows "✅ Tool Response" when data.success is
// true and "❌ Tool Failed: <content>" otherwise (ChatUI/src/pages/ChatPage.js
// case 'tool_response': data.success ? ... data.content; success and content
// are promoted from data.data by the "UI tool / component hints" list).
func TestToolResponseSuccessContent(t *testing.T) {
	t.Parallel()
	// The engine still sends status/result only; success/content belong to
	// the typed event contract the lead is rewriting. Remove the skip then.
	t.Skip("needs lead's typed events")
	e := newEnv(t, envOpts{})
	e.LLM.Enqueue(
		llmtest.Reply{ToolCalls: []llmtest.ToolCall{{Name: "request_approval",
			Arguments: `{"workflow_title":"T","workflow_description":"D","suggested_features":[]}`}}},
		llmtest.Reply{Text: "ok"},
		llmtest.Reply{Text: "done"},
	)
	c := e.mustDial("approval", "app1", "chat-tr", "u1", "")
	call := ofType(c.until("chat.tool_call", wait), "chat.tool_call")[0]
	c.send(map[string]any{"type": "ui_tool_response", "eventId": call.str("eventId"), "response": map[string]any{"status": "success",
		"action": "accept_workflow"}})
	tr := ofType(c.until("chat.tool_response", wait), "chat.tool_response")[0]
	if tr.Data["success"] != true || tr.str("status") != "ok" {
		t.Fatalf("tool_response %s: want data.success true (and status ok)", tr.raw)
	}
	if _, ok := tr.Data["content"].(string); !ok {
		t.Fatalf("tool_response %s: want data.content as text", tr.raw)
	}
}

// With AUTH_ENABLED the new routes follow the same rules as the others: the
// general-chat list, its transcripts and uploads need the owner's token (a
// transcript asked for with another user's token is a 404, like a missing chat);
// themes, like /api/workflows, are public (ChatUI fetches them without one,
// ChatUI/src/styles/themeProvider.js).
func TestChatUIRoutesWithAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{env: map[string]string{"AUTH_ENABLED": "true", "AUTH_JWT_SECRET": testSecret}})
	exp := time.Now().Add(time.Hour).Unix()
	u1 := hsToken(t, jwt.MapClaims{"sub": "u1", "exp": exp})
	u2 := hsToken(t, jwt.MapClaims{"sub": "u2", "exp": exp})
	c := e.mustDial("assistant", "app1", "chat-auth", "u1", "access_token="+u1)
	c.until("chat.resume_boundary", wait)
	c.send(map[string]any{"type": "chat.enter_general_mode"})
	gid := ofType(c.until("chat.mode_changed", wait), "chat.mode_changed")[0].str("general_chat_id")
	for _, tc := range []struct {
		method, path, token string
		want                int
	}{
		{"GET", "/api/general_chats/list/app1/u1", "", 401},
		{"GET", "/api/general_chats/list/app1/u1", u2, 401},
		{"GET", "/api/general_chats/list/app1/u1", u1, 200},
		{"GET", "/api/general_chats/transcript/app1/" + gid, "", 401},
		{"GET", "/api/general_chats/transcript/app1/" + gid, u2, 404}, // someone else's chat: as missing
		{"GET", "/api/general_chats/transcript/app1/" + gid, u1, 200},
		{"GET", "/api/themes/app1", "", 200},
	} {
		if got := e.doAuth(tc.method, tc.path, tc.token, nil); got != tc.want {
			t.Errorf("%s %s (token %v): %d, want %d", tc.method, tc.path, tc.token != "", got, tc.want)
		}
	}
	if code, _ := e.upload("a.txt", "text/plain", []byte("hi"), map[string]string{"appId": "app1", "userId": "u1",
		"chatId": "chat-auth"}); code != 401 {
		t.Errorf("upload without a token: %d, want 401", code)
	}
}

// The upload limit is its own (MOZAIKS_UPLOAD_MAX_BYTES, default 5 MiB), not
// the 1 MiB every JSON body is held to.
func TestUploadDefaultLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	greet(t, e, "chat-up3")
	fields := map[string]string{"appId": "app1", "userId": "u1", "chatId": "chat-up3"}
	if code, out := e.upload("big.bin", "application/octet-stream", bytes.Repeat([]byte{0, 1}, 3<<19), fields); code != 201 {
		t.Fatalf("3 MiB upload: %d %v", code, out)
	}
	if code, _ := e.upload("huge.bin", "application/octet-stream", bytes.Repeat([]byte{0}, 5<<20+1), fields); code != 413 {
		t.Fatalf("5 MiB + 1 upload: %d, want 413", code)
	}
}
