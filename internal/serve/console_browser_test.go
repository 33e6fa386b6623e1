package serve_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp/kb"
	"github.com/golang-jwt/jwt/v5"

	"github.com/mozaiks/mozaiks/internal/auth"
	"github.com/mozaiks/mozaiks/internal/chat"
	"github.com/mozaiks/mozaiks/internal/config"
	"github.com/mozaiks/mozaiks/internal/engine"
	"github.com/mozaiks/mozaiks/internal/llm"
	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
	"github.com/mozaiks/mozaiks/internal/serve"
	"github.com/mozaiks/mozaiks/internal/store"
	"github.com/mozaiks/mozaiks/internal/testutil/browser"
	"github.com/mozaiks/mozaiks/internal/workflow"
	"github.com/mozaiks/mozaiks/workflows"
)

// consoleServer is a runtime on a fixed loopback address, so a test can
// stop it and start another on the same address and store, as a restart.
type consoleServer struct {
	URL  string
	addr string
	stop func()
}

type consoleOpts struct {
	store         store.Store
	llm           *llmtest.Server // nil: no model configured
	addr          string          // "" picks a free port
	env           map[string]string
	workflowsPath string
}

func startConsole(t testing.TB, o consoleOpts) *consoleServer {
	t.Helper()
	environ := []string{"CORS_ORIGINS=http://app.example.com"}
	for k, v := range o.env {
		environ = append(environ, k+"="+v)
	}
	cfg, err := config.Load(config.LoadOptions{Environ: environ, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	cfg.ShutdownTimeout = 5 * time.Second
	lopts := llm.Options{}
	if o.llm != nil {
		lopts = llm.Options{APIKey: "sk-test", BaseURL: o.llm.URL(), BaseBackoff: 20 * time.Millisecond, MaxBackoff: time.Second}
	}
	model := llm.NewOpenAI(lopts)
	set, diags := workflow.LoadSet(o.workflowsPath, workflows.FS)
	eng := engine.New(engine.Options{Workflows: set, LLM: model, DefaultModel: "gpt-4o-mini"})
	chats := chat.NewManager(chat.Options{Store: o.store, Runner: eng, Workflows: set, Owner: "test", LeaseTTL: 3 * time.Second,
		SingleProcess: o.store.Backend() == "embedded"})
	var verifier *auth.Verifier
	if cfg.AuthEnabled {
		if verifier, err = auth.New(auth.Options{Secret: cfg.AuthJWTSecret}); err != nil {
			t.Fatal(err)
		}
	}
	srv := serve.New(serve.Options{Config: cfg, Store: o.store, Workflows: set, LLM: model, Chats: chats, Auth: verifier,
		Diagnostics: diags})
	addr := o.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if ln, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	cs := &consoleServer{URL: "http://" + ln.Addr().String(), addr: ln.Addr().String()}
	var once sync.Once
	cs.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Error("server did not stop within 10s")
			}
		})
	}
	t.Cleanup(cs.stop)
	return cs
}

// consolePage opens the console and waits until it has loaded its settings.
func consolePage(t testing.TB, b *browser.Browser, url string) *browser.Page {
	t.Helper()
	p := b.NewPage(t)
	p.Open(url)
	p.WaitFunc("console ready", `document.body.dataset.ready === "true"`)
	return p
}

func startChatIn(p *browser.Page, user, wf string) {
	var before string
	p.Eval(`location.hash`, &before)
	p.SetValue("#user-id", user)
	p.SetValue("#workflow", wf)
	p.Click("#start")
	p.WaitFunc("new chat opened", `location.hash.startsWith("#/chat/") && location.hash !== `+jsQuote(before))
	waitConnected(p)
}

func waitConnected(p *browser.Page) {
	p.WaitFunc("socket open", `document.getElementById("conn").dataset.state === "open"`)
}

func sendMessage(p *browser.Page, text string) {
	p.WaitFunc("composer enabled", `!document.getElementById("message").disabled`)
	p.SetValue("#message", text)
	p.Click("#send")
}

// waitAgentText waits for a completed (no longer streaming) agent message
// containing text.
func waitAgentText(p *browser.Page, text string) {
	p.WaitFunc("agent message "+text, `Array.from(document.querySelectorAll(".msg-agent:not(.streaming) .body")).some(e => e.textContent.includes(`+
		jsQuote(text)+`))`)
}

func jsQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

// noDuplicateMessages fails when a message id is shown twice.
func noDuplicateMessages(t *testing.T, p *browser.Page) {
	t.Helper()
	var ok bool
	p.Eval(`(() => { const ids = Array.from(document.querySelectorAll(".msg")).map(e => e.dataset.messageId).filter(Boolean);
		return new Set(ids).size === ids.length })()`, &ok)
	if !ok {
		t.Fatalf("a message is shown twice: %s", p.Text("#transcript"))
	}
}

// pageErrors are the page's errors except the refused connections a test
// provokes on purpose (the server stopped) and what it says it expects.
func pageErrors(p *browser.Page, expected ...string) []string {
	var out []string
next:
	for _, e := range p.Errors() {
		if strings.Contains(e, "ERR_CONNECTION_REFUSED") || strings.Contains(e, "WebSocket connection to") {
			continue
		}
		for _, x := range expected {
			if strings.Contains(e, x) {
				continue next
			}
		}
		out = append(out, e)
	}
	return out
}

func noPageErrors(t *testing.T, p *browser.Page, expected ...string) {
	t.Helper()
	if errs := pageErrors(p, expected...); len(errs) > 0 {
		t.Fatalf("page errors:\n%s", strings.Join(errs, "\n"))
	}
}

// The main flow: start a chat, watch the reply stream in pieces, see usage,
// reload and get the transcript back, then survive a server restart between
// turns and carry on without a duplicated message.
func TestConsoleChatStreamReloadRestart(t *testing.T) {
	st := backends["embedded"](t)
	fake := llmtest.New(t)
	srv := startConsole(t, consoleOpts{store: st, llm: fake})
	b := browser.New(t, browser.Options{})
	p := consolePage(t, b, srv.URL+"/")
	p.Screenshot("01-start")

	startChatIn(p, "ada", "assistant")
	const reply = "Streaming works: this reply arrives in several pieces and then completes."
	fake.Enqueue(llmtest.Reply{Text: reply, Chunks: 6, TokenDelay: 150 * time.Millisecond})
	// Record every text the agent message shows while it streams.
	p.Eval(`(() => { window.snaps = [];
		new MutationObserver(() => { for (const b of document.querySelectorAll(".msg-agent .body")) {
			if (window.snaps[window.snaps.length - 1] !== b.textContent) window.snaps.push(b.textContent) } })
		.observe(document.getElementById("transcript"), {subtree: true, childList: true, characterData: true}); return true })()`, nil)
	sendMessage(p, "Hello there")
	p.WaitText(".msg-user .body", "Hello there")
	p.WaitText(".msg-agent.streaming .body", "Streaming")
	p.Screenshot("02-streaming")
	waitAgentText(p, reply)
	var snaps []string
	p.Eval(`window.snaps`, &snaps)
	partial := 0
	for _, s := range snaps {
		if s != "" && s != reply && strings.HasPrefix(reply, s) {
			partial++
		}
	}
	if partial < 2 {
		t.Fatalf("the reply did not appear in pieces: %q", snaps)
	}
	var order []string
	p.Eval(`Array.from(document.querySelectorAll(".msg .body")).map(e => e.textContent)`, &order)
	if len(order) != 3 || order[1] != "Hello there" || order[2] != reply {
		t.Fatalf("messages in the wrong order: %q", order)
	}
	p.WaitFunc("usage shown", `Number(document.getElementById("usage").dataset.total || 0) > 0`)
	if u := p.Text("#usage"); !strings.Contains(u, "Tokens:") {
		t.Fatalf("usage line %q", u)
	}
	p.WaitText("#chats .ci-wf", "assistant")
	p.Screenshot("03-replied")

	p.Reload()
	p.WaitFunc("console ready", `document.body.dataset.ready === "true"`)
	waitConnected(p)
	waitAgentText(p, reply)
	p.WaitText(".msg-user .body", "Hello there")
	// The greeting, the user's message, the reply.
	if n, u := p.Count(".msg"), p.Count(".msg-user"); n != 3 || u != 1 {
		t.Fatalf("after reload %d messages (%d from the user), want 3 (1): %s", n, u, p.Text("#transcript"))
	}
	p.WaitFunc("usage shown after reload", `Number(document.getElementById("usage").dataset.total || 0) > 0`)
	p.Screenshot("04-reloaded")

	// Restart: the page notices, retries, and resumes on the new process.
	srv.stop()
	p.WaitFunc("reconnecting shown", `document.getElementById("conn").dataset.state === "reconnecting"`)
	p.Screenshot("05-server-down")
	fake.Enqueue(llmtest.Reply{Text: "Second answer after the restart.", Chunks: 3})
	startConsole(t, consoleOpts{store: st, llm: fake, addr: srv.addr})
	waitConnected(p)
	sendMessage(p, "Are you still there?")
	waitAgentText(p, "Second answer after the restart.")
	if n, u := p.Count(".msg"), p.Count(".msg-user"); n != 5 || u != 2 {
		t.Fatalf("after restart %d messages (%d from the user), want 5 (2): %s", n, u, p.Text("#transcript"))
	}
	noDuplicateMessages(t, p)
	p.Screenshot("06-after-restart")
	p.AxeSerious("chat")
	noPageErrors(t, p)
}

// A model stream that breaks part-way is retried; the retry's first chunk
// says restart, and the page drops what it showed of the broken attempt.
func TestConsoleStreamRestartDiscardsPartial(t *testing.T) {
	st := backends["embedded"](t)
	fake := llmtest.New(t)
	srv := startConsole(t, consoleOpts{store: st, llm: fake})
	b := browser.New(t, browser.Options{})
	p := consolePage(t, b, srv.URL+"/")
	startChatIn(p, "frances", "assistant")
	fake.Enqueue(
		llmtest.Reply{Text: "BROKEN attempt that never ends", Cut: true, CutAfter: 2, TokenDelay: 100 * time.Millisecond},
		llmtest.Reply{Text: "The retried answer.", TokenDelay: 50 * time.Millisecond},
	)
	p.Eval(`(() => { window.snaps = [];
		new MutationObserver(() => { for (const b of document.querySelectorAll(".msg-agent .body")) {
			if (window.snaps[window.snaps.length - 1] !== b.textContent) window.snaps.push(b.textContent) } })
		.observe(document.getElementById("transcript"), {subtree: true, childList: true, characterData: true}); return true })()`, nil)
	// Real key events: type, then Enter sends.
	p.Type("#message", "go\r")
	waitAgentText(p, "The retried answer.")
	var snaps []string
	p.Eval(`window.snaps`, &snaps)
	// Seen while streaming: the broken attempt, then a part of the retry
	// alone (not appended to the broken text), before the final message.
	sawBroken, sawRetryAlone := false, false
	for _, s := range snaps {
		sawBroken = sawBroken || strings.HasPrefix(s, "BROKEN")
		sawRetryAlone = sawRetryAlone || (s != "The retried answer." && strings.HasPrefix(s, "The ") && sawBroken)
		if strings.Contains(s, "BROKEN") && strings.Contains(s, "retried") {
			t.Fatalf("the retry was appended to the broken attempt: %q", snaps)
		}
	}
	if !sawBroken || !sawRetryAlone {
		t.Fatalf("snapshots %q: want the broken attempt, then the retry streaming on its own", snaps)
	}
	noPageErrors(t, p)
}

// A restart while a reply streams: the cut-off reply is marked interrupted,
// the page resumes, and the next turn works without duplicates.
func TestConsoleRestartMidStream(t *testing.T) {
	st := backends["embedded"](t)
	fake := llmtest.New(t)
	srv := startConsole(t, consoleOpts{store: st, llm: fake})
	b := browser.New(t, browser.Options{})
	p := consolePage(t, b, srv.URL+"/")
	startChatIn(p, "barbara", "assistant")
	fake.Enqueue(llmtest.Reply{Text: "one two three four five six seven eight nine ten", Chunks: 10, TokenDelay: 300 * time.Millisecond})
	sendMessage(p, "Count to ten")
	p.WaitText(".msg-agent.streaming .body", "one two")
	srv.stop()
	p.WaitFunc("reconnecting shown", `document.getElementById("conn").dataset.state === "reconnecting"`)
	p.WaitVisible(".msg-agent.interrupted")
	p.Screenshot("01-interrupted")
	// The server hands the cut-off run to its next start, which asks the
	// question again and shows that answer once.
	fake.Enqueue(llmtest.Reply{Text: "Counted after the restart: one to ten.", Chunks: 3})
	startConsole(t, consoleOpts{store: st, llm: fake, addr: srv.addr})
	waitConnected(p)
	waitAgentText(p, "Counted after the restart: one to ten.")
	fake.Enqueue(llmtest.Reply{Text: "Starting again: one to ten.", Chunks: 3})
	sendMessage(p, "Again please")
	waitAgentText(p, "Starting again: one to ten.")
	p.WaitFunc("usage shown after the restart", `Number(document.getElementById("usage").dataset.total || 0) > 0`)
	if n := p.Count(".msg-user"); n != 2 {
		t.Fatalf("%d user messages, want 2: %s", n, p.Text("#transcript"))
	}
	noDuplicateMessages(t, p)
	p.Screenshot("02-resumed")
	noPageErrors(t, p)
}

// triage: Intake asks, the console shows the request and answers it.
func TestConsoleTriageInputRequest(t *testing.T) {
	st := backends["embedded"](t)
	fake := llmtest.New(t)
	fake.Enqueue(
		llmtest.Reply{Text: "Which product area is the problem in?"},
		llmtest.Reply{Text: "Billing export fails with a timeout. INTAKE COMPLETE"},
		llmtest.Reply{Text: "Step 1: retry the export with a smaller date range."},
	)
	srv := startConsole(t, consoleOpts{store: st, llm: fake})
	b := browser.New(t, browser.Options{})
	p := consolePage(t, b, srv.URL+"/")
	startChatIn(p, "grace", "triage")
	waitAgentText(p, "Which product area")
	p.WaitText(".sys-input", "Intake is waiting for your answer")
	p.WaitText("#message-label", "Your answer to Intake")
	p.Screenshot("01-input-request")
	sendMessage(p, "Billing export times out")
	waitAgentText(p, "Step 1: retry the export")
	p.WaitText(".sys", "Run finished")
	p.WaitText("#message-label", "Message")
	noDuplicateMessages(t, p)
	p.Screenshot("02-answered")
	noPageErrors(t, p)
}

// approval: the UI tool renders as a form from its schema and the answer
// reaches the workflow.
func TestConsoleApprovalUITool(t *testing.T) {
	st := backends["embedded"](t)
	fake := llmtest.New(t)
	plan := `{"workflow_title": "Team offsite", "workflow_description": "Two days out of the office.",
		"suggested_features": [{"feature_title": "Venue", "description": "Book a venue"},
			{"feature_title": "Agenda", "description": "Write the agenda"}], "constraints": ["Budget 5k"]}`
	fake.Enqueue(
		llmtest.Reply{Text: "Here is the plan.", ToolCalls: []llmtest.ToolCall{{Name: "request_approval", Arguments: plan}}},
		llmtest.Reply{Text: "Thanks, the plan is approved."},
		llmtest.Reply{Text: "Booking the venue, then writing the agenda."},
	)
	srv := startConsole(t, consoleOpts{store: st, llm: fake})
	b := browser.New(t, browser.Options{})
	p := consolePage(t, b, srv.URL+"/")
	startChatIn(p, "linus", "approval")
	p.WaitVisible(".tool-card")
	p.WaitText(".tool-card h3", "ActionPlan")
	// The payload is shown by the tool's schema: title, steps as a list.
	p.WaitText(".tool-card .payload dd", "Team offsite")
	p.WaitText(".tool-card .payload li", "Write the agenda")
	p.WaitText(".tool-card .payload li", "Budget 5k")
	if strings.Contains(p.Text(".tool-card .payload"), "Generator") {
		t.Errorf("the runtime's payload.workflow is shown as the agent's content")
	}
	// The answer form has the fields the workflow reads.
	p.WaitText(".tool-card legend", "approved")
	p.WaitText(".tool-card label", "action")
	p.Screenshot("01-ui-tool")
	p.AxeSerious("ui-tool")
	// Submitting an empty answer is refused in the page.
	p.Click(".tool-card button[type=submit]")
	p.WaitText(".tool-card .tool-state", "at least one answer")
	p.Click(`.tool-card input[value="true"]`)
	p.Click(".tool-card button[type=submit]")
	p.WaitText(".tool-card .tool-state", "Answered.")
	waitAgentText(p, "Booking the venue")
	p.WaitText(".sys-tool", "tool request_approval returned")
	p.WaitText(".sys", "Run finished")
	p.Screenshot("02-approved")
	noPageErrors(t, p)
}

// A model that keeps failing: the error is a system line, and the chat
// stays usable.
func TestConsoleShowsErrors(t *testing.T) {
	st := backends["embedded"](t)
	fake := llmtest.New(t)
	srv := startConsole(t, consoleOpts{store: st, llm: fake})
	b := browser.New(t, browser.Options{})
	p := consolePage(t, b, srv.URL+"/")
	startChatIn(p, "edsger", "assistant")
	fake.Enqueue(llmtest.Reply{Status: 503, RetryAfter: "1"}) // a retry the page can show
	for range 4 {                                             // the first call and its 4 retries
		fake.Enqueue(llmtest.Reply{Status: 503})
	}
	sendMessage(p, "anyone there?")
	p.WaitText("#activity", "retrying in 1.0 s (attempt 2)")
	p.Screenshot("00-retrying")
	p.WaitText(".sys-err", "LLM_UNAVAILABLE")
	p.Screenshot("01-error")
	if n := fake.Pending(); n != 0 {
		t.Fatalf("%d scripted failures left: the run gave up early", n)
	}
	fake.Enqueue(llmtest.Reply{Text: "Back again."})
	sendMessage(p, "and now?")
	waitAgentText(p, "Back again.")
	noPageErrors(t, p)
}

// Keyboard only: skip link, Tab to Start chat, Enter; type and Enter sends.
func TestConsoleKeyboardOnly(t *testing.T) {
	st := backends["embedded"](t)
	fake := llmtest.New(t)
	srv := startConsole(t, consoleOpts{store: st, llm: fake})
	b := browser.New(t, browser.Options{})
	p := consolePage(t, b, srv.URL+"/")
	p.Press(kb.Tab)
	var cls string
	p.Eval(`document.activeElement.className`, &cls)
	if cls != "skip" {
		t.Fatalf("the first Tab focuses %q (class %q), want the skip link", p.Focused(), cls)
	}
	var skipVisible bool
	p.Eval(`document.querySelector(".skip").getBoundingClientRect().left >= 0`, &skipVisible)
	if !skipVisible {
		t.Errorf("the focused skip link is off screen")
	}
	p.Press(kb.Enter)
	if f := p.Focused(); f != "main" {
		t.Fatalf("the skip link moved focus to %q, want main", f)
	}
	// From the top: Tab until Start chat has the focus (bounded), then Enter.
	p.Eval(`document.getElementById("user-id").focus()`, nil)
	for i := 0; p.Focused() != "start"; i++ {
		if i > 10 {
			t.Fatalf("Start chat is not reachable with Tab (focus on %q)", p.Focused())
		}
		p.Press(kb.Tab)
	}
	p.Press(kb.Enter)
	waitConnected(p)
	if f := p.Focused(); f != "message" {
		t.Fatalf("after Start chat the focus is on %q, want the message box", f)
	}
	fake.Enqueue(llmtest.Reply{Text: "Typed without a mouse."})
	p.Press("hello" + kb.Enter)
	waitAgentText(p, "Typed without a mouse.")
	p.WaitText(".msg-user .body", "hello")
	noPageErrors(t, p)
}

// Stop cancels the run that streams; the chat stays usable.
func TestConsoleStopRun(t *testing.T) {
	st := backends["embedded"](t)
	fake := llmtest.New(t)
	srv := startConsole(t, consoleOpts{store: st, llm: fake})
	b := browser.New(t, browser.Options{})
	p := consolePage(t, b, srv.URL+"/")
	startChatIn(p, "ken", "assistant")
	var focused string
	p.Eval(`document.activeElement.id`, &focused)
	if focused != "message" {
		t.Errorf("after starting a chat the focus is on %q, want the message box", focused)
	}
	fake.Enqueue(llmtest.Reply{Text: strings.Repeat("slow ", 40), TokenDelay: 200 * time.Millisecond})
	sendMessage(p, "talk slowly")
	p.WaitText(".msg-agent.streaming .body", "slow slow")
	p.Click("#stop")
	p.WaitText(".sys-run", "Run stopped")
	p.WaitVisible(".msg-agent.interrupted")
	if n := p.Count(".msg-agent.streaming"); n != 0 {
		t.Fatalf("%d replies still shown as streaming after the run stopped", n)
	}
	p.WaitFunc("stop disabled", `document.getElementById("stop").disabled`)
	fake.Enqueue(llmtest.Reply{Text: "Quick answer."})
	sendMessage(p, "quickly then")
	waitAgentText(p, "Quick answer.")
	noPageErrors(t, p)
}

// Two chats; reopening the first from the user's list brings back its
// transcript and its socket.
func TestConsoleReopenFromList(t *testing.T) {
	st := backends["embedded"](t)
	fake := llmtest.New(t)
	srv := startConsole(t, consoleOpts{store: st, llm: fake})
	b := browser.New(t, browser.Options{})
	p := consolePage(t, b, srv.URL+"/")
	startChatIn(p, "margaret", "assistant")
	var first string
	p.Eval(`location.hash`, &first)
	fake.Enqueue(llmtest.Reply{Text: "Answer in the first chat."})
	sendMessage(p, "first chat question")
	waitAgentText(p, "Answer in the first chat.")

	fake.Enqueue(llmtest.Reply{Text: "Answer in the second chat."})
	startChatIn(p, "margaret", "assistant")
	sendMessage(p, "second chat question")
	waitAgentText(p, "Answer in the second chat.")
	if strings.Contains(p.Text("#transcript"), "first chat question") {
		t.Fatalf("the second chat shows the first one's transcript")
	}
	p.WaitFunc("two chats listed", `document.querySelectorAll("#chats .chat-item").length === 2`)
	chatID := strings.TrimPrefix(first, "#/chat/assistant/")
	p.Click(`#chats .chat-item[data-chat-id="` + chatID + `"]`)
	waitConnected(p)
	waitAgentText(p, "Answer in the first chat.")
	p.WaitText(".msg-user .body", "first chat question")
	if strings.Contains(p.Text("#transcript"), "second chat question") {
		t.Fatalf("the reopened chat shows the other chat's messages")
	}
	p.WaitFunc("reopened chat marked current", `document.querySelector('#chats .chat-item[aria-current]').dataset.chatId === `+jsQuote(chatID))
	// The reopened chat is live: a new turn works.
	fake.Enqueue(llmtest.Reply{Text: "Back in the first chat."})
	sendMessage(p, "hello again")
	waitAgentText(p, "Back in the first chat.")
	noDuplicateMessages(t, p)
	p.Screenshot("01-reopened")
	noPageErrors(t, p)
}

// The operator view, with a workflow folder that fails to load.
func TestConsoleOperatorView(t *testing.T) {
	st := backends["embedded"](t)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "broken"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "broken", "orchestrator.yaml"), []byte("workflow_name: broken\nmax_turns: many\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startConsole(t, consoleOpts{store: st, llm: llmtest.New(t), workflowsPath: dir})
	for _, u := range []string{"ops-user-1", "ops-user-2"} {
		if _, _, err := st.CreateSession(context.Background(), store.Session{ChatID: "chat-" + u, AppID: "default", UserID: u,
			Workflow: "assistant", Status: store.StatusAwaitingInput}); err != nil {
			t.Fatal(err)
		}
	}
	b := browser.New(t, browser.Options{})
	p := consolePage(t, b, srv.URL+"/#/ops")
	p.WaitText("#ops-health dd", "ok")
	p.WaitText("#ops-health dd", "ready")
	p.WaitText("#ops-store dd", "embedded: ok")
	p.WaitText("#ops-load dd", "this one only")
	p.WaitText("#ops-workflows", "approval")
	p.WaitText("#ops-workflows", "Not loaded")
	p.WaitText("#ops-workflows .diags", "max_turns")
	p.WaitText("#ops-sessions td", "ops-user-1")
	p.WaitText("#ops-sessions td", "ops-user-2")
	p.Screenshot("01-operator")
	p.AxeSerious("operator")
	noPageErrors(t, p)
}

// No model: the page says so, with the exact settings; on a phone.
func TestConsoleNoModelOnPhone(t *testing.T) {
	st := backends["embedded"](t)
	srv := startConsole(t, consoleOpts{store: st})
	b := browser.New(t, browser.Options{Width: 390, Height: 844})
	p := b.NewPage(t)
	p.Emulate(390, 844, true)
	p.Open(srv.URL + "/")
	p.WaitFunc("console ready", `document.body.dataset.ready === "true"`)
	p.WaitText("#notice", "No model is configured")
	for _, s := range []string{"OPENAI_API_KEY", "OPENAI_BASE_URL", "LLM_PROVIDER=echo"} {
		p.WaitText("#notice code", s)
	}
	// Usable on a phone: nothing is wider than the screen.
	var overflow bool
	p.Eval(`document.documentElement.scrollWidth > window.innerWidth + 1`, &overflow)
	if overflow {
		t.Errorf("the page is wider than a phone screen")
	}
	p.Screenshot("01-no-model-phone")
	p.AxeSerious("no-model-phone")
	// The operator view on a phone: its table scrolls inside its box.
	p.Click("#nav-ops")
	p.WaitText("#ops-store dd", "not configured")
	p.Eval(`document.documentElement.scrollWidth > window.innerWidth + 1`, &overflow)
	if overflow {
		t.Errorf("the operator view is wider than a phone screen")
	}
	p.Screenshot("02-operator-phone")
	p.AxeSerious("operator-phone")
	noPageErrors(t, p)
}

// Auth on: the token is pasted, kept in session storage only, fills the
// user id from its subject, and opens the socket through the bearer subprotocol.
func TestConsoleAuthToken(t *testing.T) {
	st := backends["embedded"](t)
	fake := llmtest.New(t)
	srv := startConsole(t, consoleOpts{store: st, llm: fake, env: map[string]string{"AUTH_ENABLED": "true", "AUTH_JWT_SECRET": testSecret}})
	tok := hsToken(t, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()})
	b := browser.New(t, browser.Options{})
	p := consolePage(t, b, srv.URL+"/")
	p.WaitVisible("#token")
	p.SetValue("#token", tok)
	var user string
	p.Eval(`document.getElementById("user-id").value`, &user)
	if user != "alice" {
		t.Fatalf("user id from the token = %q", user)
	}
	var stored struct{ Session, Local bool }
	p.Eval(`({Session: sessionStorage.getItem("mozaiks.token") === `+jsQuote(tok)+`,
		Local: Object.keys(localStorage).some(k => localStorage.getItem(k).includes(`+jsQuote(tok)+`))})`, &stored)
	if !stored.Session || stored.Local {
		t.Fatalf("token storage: %+v (want session storage only)", stored)
	}
	fake.Enqueue(llmtest.Reply{Text: "Hello Alice."})
	startChatIn(p, "alice", "assistant")
	sendMessage(p, "hi")
	waitAgentText(p, "Hello Alice.")
	var chatHash string
	p.Eval(`location.hash`, &chatHash)
	// Not an admin: the operator view says what it needs.
	p.Open(srv.URL + "/#/ops")
	p.WaitText("#ops-error", "admin scope")

	// An expired token: the socket's upgrade is refused; the page finds out
	// why and stops retrying.
	expired := hsToken(t, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(-time.Hour).Unix()})
	p.Open(srv.URL + "/")
	p.WaitFunc("console ready", `document.body.dataset.ready === "true"`)
	p.SetValue("#token", expired)
	p.Open(srv.URL + "/" + chatHash)
	p.WaitText(".sys-err", "refused the access token")
	p.WaitFunc("stopped retrying", `document.getElementById("conn").dataset.state === "closed"`)
	p.Screenshot("01-expired-token")
	noPageErrors(t, p, "status of 403 (Forbidden) "+srv.URL+"/api/admin/overview", "status of 401 (Unauthorized)")
}
