package serve_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
	"github.com/mozaiks/mozaiks/internal/testutil/browser"
)

// chatUIPage serves testdata/chatui: a page of our own that picks its
// workflow and handles frames as ChatUI does (see its app.js).
func chatUIPage(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.FileServer(http.Dir("testdata/chatui")))
	t.Cleanup(srv.Close)
	return srv
}

// The ChatUI flows of issue #12 in real headless Chromium against a real
// server: the root URL connects (the socket's workflow is the first key of
// /api/workflows, the chat was started for the build default), a reply
// streams and clears the thinking bubble, a reload replays the transcript
// once with one "Session replay complete" bubble, Ask mode answers from the
// general chat and back to the workflow restores it, the general-chat list
// answers on every load, the theme is applied, and the approval example's
// UI tool is answered from its card.
func TestChatUIFlowsInChromium(t *testing.T) {
	b := browser.New(t, browser.Options{})
	page := chatUIPage(t)
	e := newEnv(t, envOpts{env: map[string]string{"CORS_ORIGINS": page.URL}})
	open := func(p *browser.Page, extra string) {
		p.Open(page.URL + "/index.html?" + url.Values{"api": {e.URL}, "app": {"app1"}, "user": {"u1"}}.Encode() + extra)
		p.WaitFunc("socket open", `document.getElementById("status").textContent === "open"`)
	}
	texts := func(p *browser.Page) string { return p.Text("#messages") }
	count := func(p *browser.Page, s string) int { return strings.Count(texts(p), s) }

	p := b.NewPage(t)
	open(p, "")
	if wf := p.Text("#workflow"); wf != "assistant" {
		t.Fatalf("page opened workflow %q, want the first key of /api/workflows (assistant); logs %v", wf, p.Logs())
	}
	p.WaitText("#messages", "Hi! What can I help you with?")
	var st struct {
		GeneralListStatus int    `json:"generalListStatus"`
		ThemeSource       string `json:"themeSource"`
		Meta              struct {
			ChatExists *bool   `json:"chat_exists"`
			CacheSeed  float64 `json:"cache_seed"`
		} `json:"meta"`
	}
	p.Eval("window.__state", &st)
	if st.GeneralListStatus != 200 || st.ThemeSource != "default" || st.Meta.ChatExists == nil || st.Meta.CacheSeed == 0 {
		t.Fatalf("page state after load: %+v", st)
	}

	// A streamed reply; the thinking bubble is gone once its chat.text lands.
	e.LLM.Enqueue(llmtest.Reply{Text: "Two plus two is four.", TokenDelay: 20 * time.Millisecond})
	p.SetValue("#input", "What is 2+2?")
	p.Click("#send")
	p.WaitText("#messages", "Two plus two is four.")
	p.WaitFunc("no thinking bubble", `!document.querySelector(".thinking")`)

	// Reload: the transcript once, one replay bubble (ChatUI resumes on open).
	p.Reload()
	p.WaitFunc("socket open", `document.getElementById("status").textContent === "open"`)
	p.WaitText("#messages", "Two plus two is four.")
	p.WaitFunc("replay bubble", `document.getElementById("messages").textContent.includes("Session replay complete")`)
	time.Sleep(500 * time.Millisecond) // a second boundary would arrive right behind the first
	if n := count(p, "Session replay complete"); n != 1 {
		t.Fatalf("%d replay bubbles after a reload, want 1: %s", n, texts(p))
	}
	if n := count(p, "Two plus two is four."); n != 1 {
		t.Fatalf("reply shown %d times after a reload: %s", n, texts(p))
	}

	// Ask mode and back.
	p.Click("#ask")
	p.WaitFunc("ask mode", `document.body.dataset.mode === "ask"`)
	e.LLM.Enqueue(llmtest.Reply{Text: "Ask mode answers here."})
	p.SetValue("#input", "Who answers in Ask mode?")
	p.Click("#send")
	p.WaitText("#messages", "Ask mode answers here.")
	if strings.Contains(texts(p), "Two plus two") {
		t.Fatalf("Ask mode shows the workflow transcript: %s", texts(p))
	}
	var gaps int
	p.Eval("window.__state.gaps || 0", &gaps)
	if gaps != 0 {
		t.Fatalf("the page saw %d seq gaps in Ask mode (ChatUI drops those frames)", gaps)
	}
	p.Click("#back")
	p.WaitFunc("workflow mode", `document.body.dataset.mode === "workflow"`)
	p.WaitText("#messages", "Two plus two is four.")
	var sess sessionResp
	e.do("GET", "/api/sessions/"+p.Text("#chat")+"?app_id=app1", nil, &sess)
	if sess.Workflow != "assistant" || sess.MessageCount != 3 {
		t.Fatalf("workflow chat after Ask mode: %+v (want 3 messages: greeting, question, answer)", sess)
	}
	// Reload in Ask-free state: the list now has the general chat.
	var list struct {
		Count int `json:"count"`
	}
	e.do("GET", "/api/general_chats/list/app1/u1", nil, &list)
	if list.Count != 1 {
		t.Fatalf("general chats listed: %d, want 1", list.Count)
	}

	// The approval example, opened by URL as ChatUI's /chat/<app>/approval:
	// its card is answered with ActionPlan's Accept and the Executor follows.
	e.LLM.Enqueue(
		llmtest.Reply{Text: "Here is the plan.", ToolCalls: []llmtest.ToolCall{{Name: "request_approval",
			Arguments: `{"workflow_title":"Team offsite","workflow_description":"Venue, then agenda.","suggested_features":[]}`}}},
		llmtest.Reply{Text: "Plan accepted."},
		llmtest.Reply{Text: "Booking the venue, then writing the agenda."},
	)
	p2 := b.NewPage(t)
	open(p2, "&workflow=approval")
	p2.WaitText("#messages", "Team offsite")
	p2.Click(".accept")
	p2.WaitText("#messages", "Booking the venue, then writing the agenda.")
	p2.WaitText("#messages", "Workflow complete")
	// ChatPage.js case 'tool_response': data.success decides ✅ or "❌ Tool Failed".
	if got := texts(p2); !strings.Contains(got, "✅ Tool Response") || strings.Contains(got, "Tool Failed") {
		t.Fatalf("after Accept: %s", got)
	}

	for _, pg := range []*browser.Page{p, p2} {
		if errs := pg.Errors(); len(errs) != 0 {
			t.Errorf("page errors: %v", errs)
		}
	}
}
