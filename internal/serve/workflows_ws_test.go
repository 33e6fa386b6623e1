//go:build !windows

package serve_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
	"github.com/mozaiks/mozaiks/internal/serve/ws"
	"github.com/mozaiks/mozaiks/internal/store"
	"github.com/mozaiks/mozaiks/internal/store/sqlite"
	"github.com/mozaiks/mozaiks/internal/testutil/slowreader"
)

// The triage example end to end: Intake asks, the user answers, Intake hands
// to Specialist by a context expression, Specialist answers and terminates.
// The server restarts while the chat waits for the user.
func TestTriageExampleOverWebSocket(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, envOpts{store: st})
		e.LLM.Enqueue(llmtest.Reply{Text: "Which product area is the problem in?"})
		c := e.mustDial("triage", "app1", "tri-1", "u1", "")
		fs := c.until("chat.input_request", wait)
		if lt := lastText(fs); lt.str("agent") != "Intake" || lt.str("content") != "Which product area is the problem in?" {
			t.Fatalf("Intake did not open the chat: %s", types(fs))
		}
		req := ofType(fs, "chat.input_request")[0]
		waitStatus(t, e, "app1", "tri-1", "awaiting_input")

		// Restart while waiting: a new server on the same store.
		c.c.Close()
		e.stop()
		e2 := newEnv(t, envOpts{store: st})
		e2.LLM.Enqueue(
			llmtest.Reply{Text: "Billing export fails with a timeout. INTAKE COMPLETE"},
			llmtest.Reply{Text: "Step 1: retry the export with a smaller date range."},
		)
		c2 := e2.mustDial("triage", "app1", "tri-1", "u1", "")
		replay := c2.until("chat.resume_boundary", wait)
		if p := ofType(replay, "chat.input_request"); len(p) != 1 || p[0].str("request_id") != req.str("request_id") {
			t.Fatalf("pending request not shown on reconnect: %s", types(replay))
		}
		c2.send(map[string]any{"type": "user.input.submit", "text": "Billing export times out", "input_request_id": req.str("request_id")})
		fs = c2.until("chat.run_complete", wait)
		var speakers []string
		for _, f := range ofType(fs, "chat.select_speaker") {
			speakers = append(speakers, f.str("agent"))
		}
		if strings.Join(speakers, ",") != "Intake,Specialist" {
			t.Fatalf("speakers %v, want Intake then Specialist", speakers)
		}
		rc := ofType(fs, "chat.run_complete")[0]
		if rc.str("reason") != "terminate" || lastText(fs).str("agent") != "Specialist" {
			t.Fatalf("run_complete %s", rc.raw)
		}
		// The Specialist's prompt had the config variable rendered in.
		reqs := e2.LLM.ChatRequests()
		if sys := reqs[len(reqs)-1].Messages[0].Content; !strings.Contains(sys, "Mozaiks support specialist") {
			t.Fatalf("Specialist system prompt %q", sys)
		}
		waitStatus(t, e2, "app1", "tri-1", "completed")
	})
}

// The approval example: a UI tool round trip through a real WebSocket
// client, with a restart while the tool waits and the answer sent over REST.
func TestApprovalUIToolOverWebSocket(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, envOpts{store: st})
		e.LLM.Enqueue(
			llmtest.Reply{Text: "1. Venue 2. Agenda", ToolCalls: []llmtest.ToolCall{{Name: "request_approval",
				Arguments: `{"workflow_title":"Offsite","workflow_description":"1. Venue 2. Agenda","suggested_features":[{"feature_title":"Venue","description":"Book it"}]}`}}},
			llmtest.Reply{Text: "Thanks, the plan is approved."},
			llmtest.Reply{Text: "Booking the venue, then writing the agenda."},
		)
		c := e.mustDial("approval", "app1", "appr-1", "u1", "")
		fs := c.until("chat.tool_call", wait)
		call := ofType(fs, "chat.tool_call")[0]
		if call.Data["awaiting_response"] != true || call.str("component_type") != "ActionPlan" || call.str("eventId") == "" {
			t.Fatalf("ui tool call %s", call.raw)
		}
		// ChatUI's WorkflowUIRouter loads src/workflows/<payload.workflow>/components:
		// Generator ships ActionPlan (ChatUI/src/core/WorkflowUIRouter.js, workflowName).
		payload, _ := call.Data["payload"].(map[string]any)
		if payload["workflow_description"] != "1. Venue 2. Agenda" || payload["workflow"] != "Generator" {
			t.Fatalf("payload %v", call.Data["payload"])
		}
		eventID := call.str("eventId")
		// A response to another event is refused; the chat keeps waiting.
		c.send(map[string]any{"type": "ui_tool_response", "eventId": "ui_other", "response": map[string]any{"approved": true}})
		if f, _ := c.next(wait); f.str("error_code") != "UI_TOOL_NOT_FOUND" {
			t.Fatalf("wrong event id answered: %s", f.raw)
		}
		// What ActionPlan's Accept button answers (ChatUI/src/workflows/Generator/components/ActionPlan.js handleAction).
		c.send(map[string]any{"type": "ui_tool_response", "eventId": eventID, "response": map[string]any{"status": "success",
			"action": "accept_workflow", "data": map[string]any{"action": "accept_workflow"}}})
		fs = c.until("chat.run_complete", wait)
		if len(ofType(fs, "chat.tool_response")) != 1 || len(ofType(fs, "chat.ui_tool_complete")) != 1 {
			t.Fatalf("frames after the response: %s", types(fs))
		}
		if lt := lastText(fs); lt.str("agent") != "Executor" {
			t.Fatalf("approved plan did not reach the Executor: %s", types(fs))
		}
		// A second answer to the same event is refused.
		c.send(map[string]any{"type": "ui_tool_response", "eventId": eventID, "response": map[string]any{"approved": false}})
		if f, _ := c.next(wait); f.str("error_code") != "UI_TOOL_NOT_FOUND" {
			t.Fatalf("second answer: %s", f.raw)
		}
	})
}

func TestUIToolSurvivesRestartAnsweredOverREST(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOpts{store: st})
	e.LLM.Enqueue(llmtest.Reply{ToolCalls: []llmtest.ToolCall{{Name: "request_approval",
		Arguments: `{"workflow_title":"x","workflow_description":"x","suggested_features":[]}`}}})
	c := e.mustDial("approval", "app1", "appr-2", "u1", "")
	call := ofType(c.until("chat.tool_call", wait), "chat.tool_call")[0]
	waitStatus(t, e, "app1", "appr-2", "awaiting_input")
	c.c.Close()
	e.stop()
	st.Close()

	st2, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st2.Close() })
	e2 := newEnv(t, envOpts{store: st2})
	e2.LLM.Enqueue(llmtest.Reply{Text: "Rejected: what should change?"})
	c2 := e2.mustDial("approval", "app1", "appr-2", "u1", "")
	c2.until("chat.resume_boundary", wait)
	var out map[string]string
	if code := e2.do("POST", "/api/ui-tool/submit", map[string]any{"event_id": call.str("eventId"), "app_id": "app1",
		"response_data": map[string]any{"approved": false}}, &out); code != 200 || out["status"] != "success" {
		t.Fatalf("ui-tool submit = %d %v", code, out)
	}
	fs := c2.until("chat.input_request", wait)
	if lt := lastText(fs); lt.str("agent") != "Planner" || !strings.Contains(lt.str("content"), "what should change") {
		t.Fatalf("rejected plan should go back to the user via Planner: %s", types(fs))
	}
	if code := e2.do("POST", "/api/ui-tool/submit", map[string]any{"event_id": call.str("eventId"), "app_id": "app1",
		"response_data": map[string]any{"approved": true}}, nil); code != 404 {
		t.Fatalf("answered event submitted again: %d, want 404", code)
	}
}

func TestClientResumeAndCancel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	e.LLM.Enqueue(llmtest.Reply{Text: "short answer"})
	c := greet(t, e, "chat-rc")
	c.send(map[string]any{"type": "user.input.submit", "text": "q1"})
	fs := c.until("chat.input_request", wait)
	var all []int64
	for _, f := range fs {
		if f.Seq > 0 {
			all = append(all, f.Seq)
		}
	}
	// client.resume from an earlier position replays exactly what came after it.
	from := all[1]
	c.send(map[string]any{"type": "client.resume", "chat_id": "chat-rc", "lastClientIndex": from})
	rs := c.until("chat.resume_boundary", wait)
	var replayed []int64
	for _, f := range rs {
		if f.Seq > 0 {
			if !f.Replay {
				t.Fatalf("resume frame not marked replay: %s", f.raw)
			}
			replayed = append(replayed, f.Seq)
		}
	}
	if len(replayed) == 0 || replayed[0] != from+1 || replayed[len(replayed)-1] < all[len(all)-1] {
		t.Fatalf("resume after %d replayed %v (live seqs %v)", from, replayed, all)
	}
	for i := 1; i < len(replayed); i++ {
		if replayed[i] != replayed[i-1]+1 {
			t.Fatalf("resume skipped or repeated a seq: %v", replayed)
		}
	}
	// chat.cancel stops a slow run; the chat stays usable.
	e.LLM.Enqueue(llmtest.Reply{Text: strings.Repeat("slow ", 500), TokenDelay: 20 * time.Millisecond}, llmtest.Reply{Text: "after cancel"})
	c.send(map[string]any{"type": "user.input.submit", "text": "q2"})
	c.until("chat.print", wait)
	c.send(map[string]any{"type": "chat.cancel", "chat_id": "chat-rc"})
	rc := ofType(c.until("chat.run_complete", wait), "chat.run_complete")[0]
	if rc.str("reason") != "cancelled" {
		t.Fatalf("run_complete after cancel: %s", rc.raw)
	}
	c.send(map[string]any{"type": "user.input.submit", "text": "q3"})
	if lt := lastText(c.until("chat.input_request", wait)); lt.str("content") != "after cancel" {
		t.Fatalf("chat unusable after cancel: %s", lt.raw)
	}
}

func TestHeartbeatSlowConsumerAndShutdown(t *testing.T) {
	t.Parallel()
	t.Run("pings", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOpts{ws: wsOpts(100*time.Millisecond, 5*time.Second, 0)})
		c := e.mustDial("assistant", "app1", "chat-hb", "u1", "")
		deadline := time.After(wait)
		for seen := 0; seen < 3; {
			select {
			case f := <-c.ch:
				if f.Type == "ping" {
					seen++
				}
			case <-deadline:
				t.Fatal("no ping frames")
			}
		}
	})
	t.Run("silent peer dropped", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOpts{ws: wsOpts(50*time.Millisecond, 300*time.Millisecond, 0)})
		// A raw client that never reads cannot answer pings.
		d := websocket.Dialer{}
		conn, _, err := d.Dial(e.wsURL("assistant", "app1", "chat-silent", "u1", ""), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		time.Sleep(time.Second)
		var h struct {
			Connections int `json:"connections"`
		}
		for deadline := time.Now().Add(wait); ; time.Sleep(50 * time.Millisecond) {
			e.do("GET", "/api/health", nil, &h)
			if h.Connections == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("silent peer still connected")
			}
		}
	})
	t.Run("slow consumer closed with 1013", func(t *testing.T) {
		t.Parallel()
		// A queue of 2 frames: a run's end alone (its reply, the input
		// request, the usage) overflows it while the writer is blocked on
		// the unread socket. With 8, the lagging chunks merged into one
		// frame and the end's frames sometimes fitted (1 run in 12 under
		// load, and once in CI): no 1013.
		o := wsOpts(0, 0, 2)
		o.WriteTimeout = time.Minute
		e := newEnv(t, envOpts{ws: o})
		// ~6 MB streamed in 2 KB chunks: more than the kernel buffers of
		// both ends hold, so the server's per-socket buffer must overflow.
		e.LLM.Enqueue(llmtest.Reply{Text: strings.Repeat(strings.Repeat("x", 1023)+" ", 6000), Chunks: 3000})
		// A client that does not read while a long reply streams, with a
		// small receive buffer.
		slow, _, err := slowreader.Dialer().Dial(e.wsURL("assistant", "app1", "chat-slow", "u1", ""), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer slow.Close()
		waitStatus(t, e, "app1", "chat-slow", "awaiting_input")
		if code := e.do("POST", "/chat/app1/chat-slow/u1/input", map[string]any{"message": "flood"}, nil); code != 202 {
			t.Fatalf("input %d", code)
		}
		// The 202 came after the message was stored with the chat in
		// progress; it is awaiting input again once the run is over.
		waitStatus(t, e, "app1", "chat-slow", "awaiting_input")
		// The chat finished regardless of the slow socket, which ends with 1013.
		_ = slow.SetReadDeadline(time.Now().Add(wait))
		n, bytes := 0, 0
		defer func() { t.Logf("slow socket read %d frames, %d bytes", n, bytes) }()
		for {
			_, msg, err := slow.ReadMessage()
			n++
			bytes += len(msg)
			if err != nil {
				if !websocket.IsCloseError(err, websocket.CloseTryAgainLater) {
					t.Fatalf("slow socket ended with %v, want 1013", err)
				}
				break
			}
		}
	})
	t.Run("shutdown sends 1001", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOpts{})
		c := greet(t, e, "chat-bye")
		go e.stop()
		if code := c.closed(wait); code != websocket.CloseGoingAway {
			t.Fatalf("close code %d, want 1001", code)
		}
	})
}

func wsOpts(ping, pong time.Duration, buffer int) ws.Options {
	return ws.Options{PingInterval: ping, PongTimeout: pong, SendBuffer: buffer}
}
