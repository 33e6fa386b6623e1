package engine

import (
	"slices"
	"strings"
	"testing"

	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
	"github.com/mozaiks/mozaiks/workflows"
)

func TestExampleAssistant(t *testing.T) {
	t.Parallel()
	c := newChat(t, mustSetFS(t, workflows.FS), "assistant")
	res := c.run(nil) // a fresh UserDriven chat only greets and waits
	if res.Status != StatusAwaitingInput || len(c.srv.ChatRequests()) != 0 {
		t.Fatalf("result = %+v", res)
	}
	if got := kindList(c.last); !slices.Equal(got, []string{KindText, KindInputRequest}) || c.last[0].Agent != "Assistant" ||
		c.last[0].Data["content"] != "Hi! What can I help you with?" || res.State.Pending.RequestID != c.last[1].Data["request_id"] {
		t.Errorf("events = %v", c.last)
	}
	if again := c.run(nil); again.Status != StatusAwaitingInput || len(c.last) != 0 {
		t.Errorf("a second start (reconnect) must do nothing: %+v %v", again, c.last)
	}
	c.srv.Enqueue(llmtest.Reply{Text: "Paris is the capital of France."})
	res = c.say("What is the capital of France?")
	if res.Status != StatusAwaitingInput || c.lastOf(KindInputRequest).Data["prompt"] != "Paris is the capital of France." {
		t.Fatalf("result = %+v, events %v", res, kindList(c.last))
	}
	text := c.lastOf(KindText)
	var streamed strings.Builder
	for _, p := range c.kinds(KindPrint) {
		if p.Data["message_id"] != text.Data["message_id"] {
			t.Errorf("print message_id %v != text %v", p.Data["message_id"], text.Data["message_id"])
		}
		streamed.WriteString(p.Data["content"].(string))
	}
	if streamed.String() != text.Data["content"] || len(c.kinds(KindPrint)) < 2 {
		t.Errorf("streamed %q in %d chunks, text %q", streamed.String(), len(c.kinds(KindPrint)), text.Data["content"])
	}
	u := c.lastOf(KindUsageDelta).Data
	if u["agent_name"] != "Assistant" || u["model_name"] != "default-model" || u["total_tokens"].(int) <= 0 || u["chat_id"] != "c1" {
		t.Errorf("usage_delta = %v", u)
	}
	req := c.srv.ChatRequests()[0]
	if !strings.HasPrefix(systemOf(req), "You are a helpful, concise assistant.") || req.Messages[1].Role != "assistant" || req.LastUserMessage() != "What is the capital of France?" {
		t.Errorf("request = %+v", req.Messages)
	}
}

func TestExampleTriage(t *testing.T) {
	t.Parallel()
	c := newChat(t, mustSetFS(t, workflows.FS), "triage", func(o *Options) {
		o.Getenv = func(k string) string {
			if k == "TRIAGE_PRODUCT_NAME" {
				return "Widget"
			}
			return ""
		}
	})
	c.srv.Enqueue(
		llmtest.Reply{Text: "Hi, what is the problem?"},
		llmtest.Reply{Text: "Which version do you run?"},
		llmtest.Reply{Text: "Login fails on v2 after a reset. INTAKE COMPLETE"},
		llmtest.Reply{Text: "Clear the cache, then log in again."},
	)
	res := c.run(nil)
	if res.Status != StatusAwaitingInput || c.lastOf(KindInputRequest).Agent != "Intake" {
		t.Fatalf("start: %+v", res)
	}
	first := c.srv.ChatRequests()[0]
	if !strings.Contains(systemOf(first), "intake agent of Widget support") || first.Messages[1].Content != "A user has opened a support chat." {
		t.Errorf("first request = %+v", first.Messages)
	}
	if res = c.say("I cannot log in"); c.lastOf(KindInputRequest).Agent != "Intake" {
		t.Fatalf("second: %+v", res)
	}
	res = c.say("v2")
	if res.Status != StatusCompleted || res.Reason != ReasonTerminate || !res.State.Done || res.State.Context["intake_complete"] != true {
		t.Fatalf("end: %+v", res)
	}
	if want := []string{"Intake", "Intake", "Intake", "Specialist"}; !slices.Equal(c.speakers(), want) {
		t.Errorf("speakers = %v", c.speakers())
	}
	spec := c.srv.ChatRequests()[3]
	if !strings.Contains(systemOf(spec), "Widget support specialist") || spec.Temperature == nil || *spec.Temperature != 0.2 {
		t.Errorf("specialist request: %q temperature %v", systemOf(spec), spec.Temperature)
	}
	if got := len(spec.Messages); got != 7 { // system, initial message, 3 Intake texts, 2 user answers
		t.Errorf("specialist saw %d messages: %+v", got, spec.Messages)
	}
}

func TestExampleApproval(t *testing.T) {
	t.Parallel()
	for _, approved := range []bool{true, false} {
		t.Run(map[bool]string{true: "approved", false: "rejected"}[approved], func(t *testing.T) {
			t.Parallel()
			c := newChat(t, mustSetFS(t, workflows.FS), "approval")
			c.srv.Enqueue(
				llmtest.Reply{Text: "1. Book venue", ToolCalls: []llmtest.ToolCall{{Name: "request_approval",
					Arguments: `{"workflow_title":"Offsite","workflow_description":"1. Book venue","suggested_features":[]}`}}},
				llmtest.Reply{Text: "Noted."},
				llmtest.Reply{Text: "Booking the venue now."},
			)
			res := c.run(nil)
			p := res.State.Pending
			if p == nil || p.Kind != "ui_tool" || c.lastOf(KindToolCall).Data["component_type"] != "ActionPlan" {
				t.Fatalf("start: %+v", res)
			}
			res = c.run(&Input{Kind: InputUIToolResponse, RequestID: p.RequestID, Response: map[string]any{"approved": approved}})
			if c.lastOf(KindUIToolComplete).Data["eventId"] != p.RequestID {
				t.Errorf("ui_tool_complete = %v", c.lastOf(KindUIToolComplete).Data)
			}
			if approved {
				if res.Reason != ReasonTerminate || !slices.Equal(c.speakers(), []string{"Planner", "Planner", "Executor"}) {
					t.Errorf("approved: %+v speakers %v", res, c.speakers())
				}
			} else if res.Status != StatusAwaitingInput || c.lastOf(KindInputRequest).Agent != "Planner" || res.State.Context["approved"] != false {
				t.Errorf("rejected: %+v", res)
			}
		})
	}
}
