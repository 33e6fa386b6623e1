package serve_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
	"github.com/mozaiks/mozaiks/internal/store"
	"github.com/mozaiks/mozaiks/internal/store/sqlite"
	"github.com/mozaiks/mozaiks/internal/testutil/browser"
)

// The console's cost against same-run baselines, rounds interleaved:
//
//	go test -run '^$' -bench Console -benchtime 20x ./internal/serve/
//
// ConsoleTurn: one chat turn (send, 40 streamed chunks, the complete reply),
// timed inside the page from clicking Send to the reply rendered complete,
// vs the same turn read by a Go WebSocket client (write to chat.text).
// ConsoleLoad: from navigation start to the page usable (the
// "console-ready" performance mark: settings loaded, chats listed), vs the
// load event of a one-line static page in the same browser.

func BenchmarkConsoleTurn(b *testing.B) {
	st := benchStore(b)
	fake := llmtest.New(b)
	srv := startConsole(b, consoleOpts{store: st, llm: fake})
	br := browser.New(b, browser.Options{})
	p := consolePage(b, br, srv.URL+"/")
	startChatIn(p, "bench-browser", "assistant")
	text := strings.Repeat("word ", 40)
	ws := benchSocket(b, srv.URL, "bench-ws")

	var wsTimes, pageTimes []time.Duration
	b.ResetTimer()
	for i := range b.N {
		fake.Enqueue(llmtest.Reply{Text: text + fmt.Sprint(i)})
		start := time.Now()
		if err := ws.WriteJSON(map[string]any{"type": "user.input.submit", "text": "go"}); err != nil {
			b.Fatal(err)
		}
		for {
			var f frame
			if err := ws.ReadJSON(&f); err != nil {
				b.Fatal(err)
			}
			if f.Type == "chat.text" && f.Agent != "user" && !f.Replay {
				break
			}
		}
		wsTimes = append(wsTimes, time.Since(start))
		for { // the turn ends with the assistant waiting for the user again
			var f frame
			if err := ws.ReadJSON(&f); err != nil {
				b.Fatal(err)
			}
			if f.Type == "chat.input_request" {
				break
			}
		}

		// Timed inside the page: click Send, until the reply is rendered complete.
		fake.Enqueue(llmtest.Reply{Text: text + fmt.Sprint(i)})
		p.WaitFunc("composer enabled", `!document.getElementById("message").disabled`)
		p.Eval(fmt.Sprintf(`(() => { window.benchEnd = 0;
			const done = () => document.querySelectorAll(".msg-agent:not(.streaming)").length >= %d;
			const mo = new MutationObserver(() => { if (!window.benchEnd && done()) { window.benchEnd = performance.now(); mo.disconnect(); } });
			mo.observe(document.getElementById("transcript"), {subtree: true, childList: true, characterData: true, attributes: true});
			document.getElementById("message").value = "go";
			window.benchStart = performance.now();
			document.getElementById("send").click(); return true })()`, i+2), nil)
		p.WaitFunc("reply rendered", `window.benchEnd > 0`)
		var ms float64
		p.Eval(`window.benchEnd - window.benchStart`, &ms)
		pageTimes = append(pageTimes, time.Duration(ms*float64(time.Millisecond)))
	}
	b.StopTimer()
	reportRatio(b, "ws", wsTimes, "console", pageTimes)
}

func BenchmarkConsoleLoad(b *testing.B) {
	st := benchStore(b)
	srv := startConsole(b, consoleOpts{store: st, llm: llmtest.New(b)})
	static := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><html lang="en"><title>x</title><body data-ready="true">x</body></html>`)
	}))
	defer static.Close()
	br := browser.New(b, browser.Options{})
	p := br.NewPage(b)
	var baseTimes, pageTimes []time.Duration
	b.ResetTimer()
	// Timed by the browser from the start of navigation: the static page's
	// load event, the console's "console-ready" mark.
	msSince := func(expr string) time.Duration {
		var ms float64
		p.Eval(expr, &ms)
		return time.Duration(ms * float64(time.Millisecond))
	}
	for range b.N {
		p.Open(static.URL)
		p.WaitFunc("static loaded", `performance.getEntriesByType("navigation")[0].loadEventEnd > 0`)
		baseTimes = append(baseTimes, msSince(`performance.getEntriesByType("navigation")[0].loadEventEnd`))

		p.Open(srv.URL + "/#/")
		p.WaitFunc("console ready", `performance.getEntriesByName("console-ready").length > 0`)
		pageTimes = append(pageTimes, msSince(`performance.getEntriesByName("console-ready")[0].startTime`))
	}
	b.StopTimer()
	reportRatio(b, "static", baseTimes, "console", pageTimes)
}

func benchStore(b *testing.B) store.Store {
	st, err := sqlite.Open(context.Background(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

func benchSocket(b *testing.B, base, user string) *websocket.Conn {
	b.Helper()
	u := "ws" + strings.TrimPrefix(base, "http") + "/ws/assistant/default/bench-" + user + "/" + user
	c, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	for { // through the replay of the new chat
		var f frame
		if err := c.ReadJSON(&f); err != nil {
			b.Fatal(err)
		}
		if f.Type == "chat.input_request" { // the greeting, then the chat waits for the user
			return c
		}
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func reportRatio(b *testing.B, baseName string, base []time.Duration, name string, got []time.Duration) {
	mb, mg := median(base), median(got)
	b.ReportMetric(float64(mb.Microseconds())/1000, baseName+"-p50-ms")
	b.ReportMetric(float64(mg.Microseconds())/1000, name+"-p50-ms")
	b.ReportMetric(float64(mg)/float64(mb), name+"/"+baseName)
}
