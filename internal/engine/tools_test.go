package engine

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
)

func TestHTTPTool(t *testing.T) {
	t.Parallel()
	var gotAuth, gotBody string
	stop := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		b := make([]byte, 1024)
		n, _ := r.Body.Read(b)
		gotBody = string(b[:n])
		fmt.Fprint(w, `{"temperature": 21}`)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		case <-time.After(5 * time.Second):
		}
	})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "database on fire", http.StatusInternalServerError)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, strings.Repeat("x", 2000))
	})
	api := httptest.NewServer(mux)
	t.Cleanup(api.Close)
	t.Cleanup(func() { close(stop) }) // runs first: lets /slow return so Close does not wait

	for _, tc := range []struct {
		path, status, inResult string
	}{
		{"/ok", "ok", `{"temperature":21}`},
		{"/slow", "error", "timed out after 200ms"},
		{"/fail", "error", "HTTP 500"},
		{"/big", "error", "larger than 1000 bytes"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			t.Parallel()
			set := mustSet(t, map[string]string{
				"w/orchestrator.yaml": "human_in_the_loop: false\n",
				"w/agents.yaml":       "agents:\n  - {name: A, system_message: You are A.}\n",
				"w/tools.yaml": fmt.Sprintf(`tools:
  - agent: A
    name: weather
    description: Current weather for a city.
    kind: http
    url: %s%s
    timeout_ms: 200
    max_response_bytes: 1000
    headers: {Authorization: WEATHER_TOKEN}
    parameters:
      type: object
      properties: {city: {type: string}}
      required: [city]
`, api.URL, tc.path),
			})
			c := newChat(t, set, "w", func(o *Options) {
				o.Getenv = func(k string) string {
					if k == "WEATHER_TOKEN" {
						return "Bearer w-secret"
					}
					return ""
				}
			})
			c.srv.Enqueue(
				llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "call_1", Name: "weather", Arguments: `{"city":"Oslo"}`}}},
				llmtest.Reply{Text: "Done."},
			)
			res := c.run(nil)
			if res.Reason != ReasonTerminate {
				t.Fatalf("result = %+v", res)
			}
			call := c.lastOf(KindToolCall).Data
			if call["call_id"] != "call_1" || call["name"] != "weather" || call["agent"] != "A" ||
				call["arguments"].(map[string]any)["city"] != "Oslo" {
				t.Errorf("tool_call = %v", call)
			}
			resp := c.lastOf(KindToolResponse).Data
			if resp["status"] != tc.status || resp["call_id"] != "call_1" {
				t.Errorf("tool_response = %v", resp)
			}
			// The model sees the result as a tool message answering its call.
			reqs := c.srv.ChatRequests()
			if len(reqs) != 2 {
				t.Fatalf("%d chat requests", len(reqs))
			}
			msgs := reqs[1].Messages
			asst, tool := msgs[len(msgs)-2], msgs[len(msgs)-1]
			if asst.Role != "assistant" || len(asst.ToolCalls) != 1 || asst.ToolCalls[0].ID != "call_1" ||
				tool.Role != "tool" || tool.ToolCallID != "call_1" || !strings.Contains(tool.Content, tc.inResult) {
				t.Errorf("model saw %+v then %+v, want the result to contain %q", asst, tool, tc.inResult)
			}
			if len(reqs[0].Tools) != 1 || reqs[0].Tools[0].Name != "weather" || !strings.Contains(string(reqs[0].Tools[0].Parameters), `"required":["city"]`) {
				t.Errorf("tools offered = %+v", reqs[0].Tools)
			}
			if tc.path == "/ok" && (gotAuth != "Bearer w-secret" || gotBody != `{"city":"Oslo"}`) {
				t.Errorf("tool server got auth %q body %q", gotAuth, gotBody)
			}
		})
	}
}

func TestToolArgumentsValidated(t *testing.T) {
	t.Parallel()
	set := mustSet(t, map[string]string{
		"w/orchestrator.yaml": "human_in_the_loop: false\n",
		"w/agents.yaml":       "agents:\n  - {name: A, system_message: You are A.}\n",
		"w/tools.yaml":        "tools:\n  - {agent: A, name: lookup, kind: http, url: 'http://127.0.0.1:1/', parameters: {type: object, properties: {q: {type: string}}, required: [q]}}\n",
	})
	c := newChat(t, set, "w")
	c.srv.Enqueue(
		llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "c1", Name: "lookup", Arguments: `{"q": 5}`}, {ID: "c2", Name: "nosuch", Arguments: `{}`}}},
		llmtest.Reply{Text: "ok"},
	)
	c.run(nil)
	resps := c.kinds(KindToolResponse)
	if len(resps) != 2 || resps[0].Data["status"] != "error" || !strings.Contains(fmt.Sprint(resps[0].Data["result"]), "$.q: want string") ||
		!strings.Contains(fmt.Sprint(resps[1].Data["result"]), `unknown tool "nosuch"`) {
		t.Errorf("tool responses = %v", resps)
	}
}

func TestBuiltinTools(t *testing.T) {
	t.Parallel()
	set := mustSet(t, map[string]string{
		"w/orchestrator.yaml":      "max_turns: 10\n",
		"w/agents.yaml":            "agents:\n  - {name: A, system_message: 'You are A. Mode {mode}.'}\n  - {name: B, system_message: 'You are B. Mode ${mode}.'}\n",
		"w/context_variables.yaml": "definitions:\n  - {name: mode, type: string, source: {type: state, default: normal}}\n",
		"w/tools.yaml": `tools:
  - {agent: A, name: set_context_variable, kind: builtin}
  - {agent: A, name: transfer, kind: builtin, builtin: handoff}
  - {agent: B, name: end_conversation, kind: builtin}
`,
		"w/handoffs.yaml": "handoff_rules:\n  - {source_agent: A, target_agent: user}\n  - {source_agent: B, target_agent: user}\n",
	})
	c := newChat(t, set, "w")
	c.srv.Enqueue(
		llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "c1", Name: "set_context_variable", Arguments: `{"name":"mode","value":"turbo"}`}}},
		llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "c2", Name: "transfer", Arguments: `{"agent":"B"}`}}},
		llmtest.Reply{Text: "B here, wrapping up", ToolCalls: []llmtest.ToolCall{{ID: "c3", Name: "end_conversation", Arguments: `{}`}}},
	)
	res := c.run(nil)
	if res.Reason != ReasonTerminate || !res.State.Done || res.State.Context["mode"] != "turbo" {
		t.Fatalf("result = %+v", res)
	}
	if want := []string{"A", "B"}; !slices.Equal(c.speakers(), want) {
		t.Errorf("speakers = %v", c.speakers())
	}
	reqs := c.srv.ChatRequests()
	if systemOf(reqs[0]) != "You are A. Mode normal." || systemOf(reqs[2]) != "You are B. Mode turbo." {
		t.Errorf("prompts: %q, %q", systemOf(reqs[0]), systemOf(reqs[2]))
	}
	var enum []any
	for _, tl := range reqs[0].Tools {
		if tl.Name == "transfer" {
			var s map[string]any
			_ = json.Unmarshal(tl.Parameters, &s)
			enum = s["properties"].(map[string]any)["agent"].(map[string]any)["enum"].([]any)
		}
	}
	if fmt.Sprint(enum) != "[A B]" {
		t.Errorf("handoff enum = %v", enum)
	}
	// An unknown variable is an error the model sees, not a crash.
	c2 := newChat(t, set, "w")
	c2.srv.Enqueue(
		llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "c1", Name: "set_context_variable", Arguments: `{"name":"secret","value":1}`}}},
		llmtest.Reply{Text: "hm"},
	)
	c2.run(nil)
	if r := c2.lastOf(KindToolResponse).Data; r["status"] != "error" {
		t.Errorf("tool_response = %v", r)
	}
}

func TestUIToolRoundTrip(t *testing.T) {
	t.Parallel()
	set := mustSet(t, map[string]string{
		"w/orchestrator.yaml":      "max_turns: 10\n",
		"w/agents.yaml":            "agents:\n  - {name: A, system_message: You are A.}\n  - {name: B, system_message: You are B.}\n",
		"w/tools.yaml":             "tools:\n  - {agent: A, name: pick_color, kind: ui, component: ColorPicker, display: artifact, parameters: {type: object, properties: {options: {type: array}}}}\n",
		"w/context_variables.yaml": "definitions:\n  - {name: color, source: {type: state, triggers: [{type: ui_response, tool: pick_color, response_key: color}]}}\n",
		"w/handoffs.yaml": `handoff_rules:
  - {source_agent: A, target_agent: B, condition: '${color} == "red"'}
  - {source_agent: A, target_agent: user}
  - {source_agent: B, target_agent: terminate}
`,
	})
	c := newChat(t, set, "w")
	c.srv.Enqueue(
		llmtest.Reply{Text: "Pick one.", ToolCalls: []llmtest.ToolCall{{ID: "call_ui", Name: "pick_color", Arguments: `{"options":["red","blue"]}`}}},
		llmtest.Reply{Text: "Red it is."},
		llmtest.Reply{Text: "B: painting it red."},
	)
	res := c.run(nil)
	if res.Status != StatusAwaitingInput || res.State.Pending == nil || res.State.Pending.Kind != "ui_tool" {
		t.Fatalf("result = %+v", res)
	}
	call := c.lastOf(KindToolCall).Data
	p := res.State.Pending
	if call["component_type"] != "ColorPicker" || call["display"] != "artifact" || call["awaiting_response"] != true ||
		call["tool_name"] != "pick_color" || call["corr"] != p.RequestID || p.CallID != "call_ui" || p.Agent != "A" ||
		fmt.Sprint(call["payload"]) != "map[options:[red blue]]" {
		t.Errorf("tool_call = %v, pending = %+v", call, p)
	}
	if len(c.kinds(KindRunComplete)) != 0 || len(c.kinds(KindInputRequest)) != 0 {
		t.Errorf("a waiting UI tool must not end the run or ask for text: %v", kindList(c.last))
	}
	// A response to something else is refused and changes nothing.
	res = c.run(&Input{Kind: InputUIToolResponse, RequestID: "ui_other", Response: map[string]any{"color": "red"}})
	if res.Reason != ReasonUIToolNotPending || c.lastOf(KindError).Data["error_code"] != CodeUIToolNotPending || c.state().Pending == nil {
		t.Fatalf("wrong response accepted: %+v", res)
	}
	res = c.run(&Input{Kind: InputUIToolResponse, RequestID: p.RequestID, Response: map[string]any{"color": "red"}})
	if res.Reason != ReasonTerminate {
		t.Fatalf("result = %+v", res)
	}
	if got := kindList(c.last)[:4]; !slices.Equal(got, []string{KindRunStart, KindToolResponse, KindUIToolDismiss, KindSelectSpeaker}) {
		t.Errorf("events = %v", kindList(c.last))
	}
	dis := c.lastOf(KindUIToolDismiss).Data
	if dis["eventId"] != p.RequestID || dis["ui_tool_id"] != "pick_color" || dis["status"] != "completed" {
		t.Errorf("ui_tool_dismiss = %v", dis)
	}
	if want := []string{"A", "A", "B"}; !slices.Equal(c.speakers(), want) {
		t.Errorf("speakers = %v", c.speakers())
	}
	reqs := c.srv.ChatRequests()
	msgs := reqs[1].Messages
	if last := msgs[len(msgs)-1]; last.Role != "tool" || last.ToolCallID != "call_ui" || last.Content != `{"color":"red"}` {
		t.Errorf("model saw %+v", last)
	}
	if asst := msgs[len(msgs)-2]; asst.Content != "Pick one." || len(asst.ToolCalls) != 1 {
		t.Errorf("assistant turn = %+v", asst)
	}
}

func TestUIToolAnsweredByMessage(t *testing.T) {
	t.Parallel()
	set := mustSet(t, map[string]string{
		"w/orchestrator.yaml": "max_turns: 10\n",
		"w/agents.yaml":       "agents:\n  - {name: A, system_message: You are A.}\n",
		"w/tools.yaml":        "tools:\n  - {agent: A, name: confirm, kind: ui, component: Confirm}\n",
	})
	c := newChat(t, set, "w")
	c.srv.Enqueue(llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "cu", Name: "confirm", Arguments: `{}`}}}, llmtest.Reply{Text: "fine"})
	c.run(nil)
	res := c.say("never mind")
	if res.Status != StatusAwaitingInput || c.lastOf(KindInputRequest).Agent != "A" {
		t.Fatalf("result = %+v", res)
	}
	if r := c.kinds(KindToolResponse); len(r) != 1 || r[0].Data["status"] != "error" || c.lastOf(KindUIToolComplete).Data["status"] != "dismissed" {
		t.Errorf("events = %v", c.last)
	}
	reqs := c.srv.ChatRequests()
	var roles []string
	for _, m := range reqs[1].Messages {
		roles = append(roles, m.Role)
	}
	if want := []string{"system", "assistant", "tool", "user"}; !slices.Equal(roles, want) {
		t.Errorf("roles = %v, want %v", roles, want)
	}
}
