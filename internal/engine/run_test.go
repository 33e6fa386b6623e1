package engine

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/llm"
	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
	"github.com/mozaiks/mozaiks/internal/workflow"
)

func TestPerAgentModelSettingsReachServer(t *testing.T) {
	t.Parallel()
	set := mustSet(t, map[string]string{
		"w/orchestrator.yaml": "human_in_the_loop: false\n",
		"w/agents.yaml": `agents:
  - {name: A, system_message: You are A., model: model-a, temperature: 0.7, max_tokens: 321}
  - {name: B, system_message: You are B.}
`,
		"w/handoffs.yaml": "handoff_rules:\n  - {source_agent: A, target_agent: B}\n",
	})
	c := newChat(t, set, "w")
	c.srv.SetResponder(agentResponder)
	c.run(nil)
	reqs := c.srv.ChatRequests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests", len(reqs))
	}
	a, b := reqs[0], reqs[1]
	if a.Model != "model-a" || a.Temperature == nil || *a.Temperature < 0.69 || *a.Temperature > 0.71 || a.MaxTokens == nil || *a.MaxTokens != 321 {
		t.Errorf("A request: model %s temperature %v max_tokens %v", a.Model, a.Temperature, a.MaxTokens)
	}
	if b.Model != "default-model" || b.Temperature != nil || b.MaxTokens != nil {
		t.Errorf("B request: model %s temperature %v max_tokens %v", b.Model, b.Temperature, b.MaxTokens)
	}
	if u := c.kinds(KindUsageDelta); u[0].Data["model_name"] != "model-a" || u[1].Data["model_name"] != "default-model" {
		t.Errorf("usage models: %v %v", u[0].Data, u[1].Data)
	}
}

func structuredSet(t *testing.T) *workflow.Set {
	return mustSet(t, map[string]string{
		"w/orchestrator.yaml": "human_in_the_loop: false\n",
		"w/agents.yaml":       "agents:\n  - {name: Grader, system_message: Grade it.}\n",
		"w/structured_outputs.yaml": `structured_outputs:
  models:
    Grade:
      type: model
      fields:
        score: {type: int, description: 0 to 10}
        verdict: {type: str, enum: [pass, fail]}
  registry:
    Grader: Grade
`,
	})
}

func TestStructuredOutput(t *testing.T) {
	t.Parallel()
	valid := `{"score": 7, "verdict": "pass"}`
	for _, tc := range []struct {
		name     string
		replies  []string
		requests int
		ok       bool
	}{
		{"valid", []string{valid}, 1, true},
		{"retry", []string{`{"score": "seven", "verdict": "pass"}`, valid}, 2, true},
		{"not json then valid", []string{`Sure! Here it is`, `{"score":1,"verdict":"maybe"}`, valid}, 3, true},
		{"invalid", []string{`{"score": 7}`, `{"score": 7}`, `{"score": 7}`}, 3, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newChat(t, structuredSet(t), "w")
			for _, r := range tc.replies {
				c.srv.Enqueue(llmtest.Reply{Text: r})
			}
			res := c.run(nil)
			reqs := c.srv.ChatRequests()
			if len(reqs) != tc.requests {
				t.Fatalf("%d requests, want %d", len(reqs), tc.requests)
			}
			rf := reqs[0].ResponseFormat
			if rf == nil || rf.Type != "json_schema" || rf.Name != "Grade" || !rf.Strict || !strings.Contains(string(rf.Schema), `"enum":["pass","fail"]`) {
				t.Errorf("response_format = %+v", rf)
			}
			if tc.requests > 1 {
				last := reqs[len(reqs)-1].LastUserMessage()
				if !strings.Contains(last, "does not match the required JSON schema") {
					t.Errorf("retry prompt = %q", last)
				}
				restarts := 0
				for _, p := range c.kinds(KindPrint) {
					if p.Data["restart"] == true {
						restarts++
					}
				}
				if restarts != tc.requests-1 {
					t.Errorf("%d restart prints, want %d", restarts, tc.requests-1)
				}
			}
			if tc.ok {
				text := c.lastOf(KindText).Data
				so, _ := text["structured_output"].(map[string]any)
				if res.Reason != ReasonTerminate || text["content"] != valid || so["score"] != float64(7) || so["verdict"] != "pass" {
					t.Errorf("result %+v text %v", res, text)
				}
				return
			}
			e := c.lastOf(KindError).Data
			if e["error_code"] != CodeStructuredOutputInvalid || !strings.Contains(e["message"].(string), `missing required field "verdict"`) {
				t.Errorf("error = %v", e)
			}
			if len(c.kinds(KindText)) != 0 || res.Status != StatusAwaitingInput || res.Reason != ReasonStructuredOutput ||
				c.lastOf(KindRunComplete).Data["status"] != StatusFailed {
				t.Errorf("result %+v events %v", res, kindList(c.last))
			}
		})
	}
}

func TestLLMFailureKeepsChatUsable(t *testing.T) {
	t.Parallel()
	set := mustSet(t, map[string]string{
		"w/orchestrator.yaml": "startup_mode: AgentDriven\n",
		"w/agents.yaml":       "agents:\n  - {name: A, system_message: You are A.}\n",
	})
	c := newChat(t, set, "w")
	c.srv.Enqueue(llmtest.Reply{Status: 503}, llmtest.Reply{Text: "back again"})
	res := c.run(nil)
	if res.Status != StatusAwaitingInput || res.Reason != ReasonLLMUnavailable {
		t.Fatalf("result = %+v", res)
	}
	e := c.lastOf(KindError).Data
	if e["error_code"] != llm.CodeUnavailable || e["retryable"] != true || e["message"] == "" {
		t.Errorf("error = %v", e)
	}
	rc := c.lastOf(KindRunComplete).Data
	if rc["status"] != StatusFailed || rc["reason"] != ReasonLLMUnavailable {
		t.Errorf("run_complete = %v", rc)
	}
	res = c.say("hello?")
	if res.Status != StatusAwaitingInput || res.Reason != ReasonInputRequired || c.lastOf(KindText).Data["content"] != "back again" {
		t.Errorf("after failure: %+v %v", res, kindList(c.last))
	}
}

func TestLLMRejectedIsNotRetryable(t *testing.T) {
	t.Parallel()
	set := mustSet(t, map[string]string{
		"w/orchestrator.yaml": "max_turns: 3\n",
		"w/agents.yaml":       "agents:\n  - {name: A, system_message: You are A.}\n",
	})
	c := newChat(t, set, "w")
	c.srv.Enqueue(llmtest.Reply{Status: 401})
	c.run(nil)
	if e := c.lastOf(KindError).Data; e["error_code"] != llm.CodeRejected || e["retryable"] != false {
		t.Errorf("error = %v", e)
	}
}

func TestCancelReturnsPromptly(t *testing.T) {
	t.Parallel()
	set := mustSet(t, map[string]string{
		"w/orchestrator.yaml": "max_turns: 3\n",
		"w/agents.yaml":       "agents:\n  - {name: A, system_message: You are A.}\n",
	})
	c := newChat(t, set, "w")
	c.srv.Enqueue(llmtest.Reply{Text: strings.Repeat("word ", 200), TokenDelay: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	rec := &cancelOnPrint{cancel: cancel}
	done := make(chan Result, 1)
	go func() {
		res, err := New(c.opts).Run(ctx, RunRequest{Workflow: "w", Sink: rec})
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		done <- res
	}()
	select {
	case res := <-done:
		if res.Reason != ReasonCancelled || res.Status != StatusAwaitingInput {
			t.Errorf("result = %+v", res)
		}
	case <-time.After(5 * time.Second): // far beyond the 10 s the reply would stream
		t.Fatal("Run did not return after cancel")
	}
}

// cancelOnPrint cancels the run when the first chunk arrives.
type cancelOnPrint struct {
	recorder
	cancel context.CancelFunc
}

func (c *cancelOnPrint) Emit(ctx context.Context, ev Event) error {
	if ev.Kind() == KindPrint {
		c.cancel()
	}
	return c.recorder.Emit(ctx, ev)
}

func TestSinkFailureStopsRun(t *testing.T) {
	t.Parallel()
	set := mustSet(t, map[string]string{
		"w/orchestrator.yaml": "max_turns: 3\n",
		"w/agents.yaml":       "agents:\n  - {name: A, system_message: You are A.}\n",
	})
	c := newChat(t, set, "w")
	boom := errors.New("store down")
	_, err := New(c.opts).Run(context.Background(), RunRequest{Workflow: "w", Sink: &recorder{fail: boom}})
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want %v", err, boom)
	}
	if _, err := New(c.opts).Run(context.Background(), RunRequest{Workflow: "nope", Sink: &recorder{}}); !errors.Is(err, ErrUnknownWorkflow) {
		t.Errorf("unknown workflow: err = %v", err)
	}
}

func TestHistoryFromTranscript(t *testing.T) {
	t.Parallel()
	raw := `[
	 {"kind":"run_start","data":{"run_id":"r"}},
	 {"kind":"text","agent":"user","data":{"agent":"user","role":"user","content":"hi","message_id":"u1"}},
	 {"kind":"text","agent":"A","data":{"agent":"A","role":"assistant","content":"let me look","message_id":"m1"}},
	 {"kind":"tool_call","agent":"A","data":{"call_id":"c1","name":"f","agent":"A","arguments":{"x":1},"message_id":"m1"}},
	 {"kind":"tool_call","agent":"A","data":{"call_id":"c2","name":"g","agent":"A","arguments":"not json","message_id":"m1"}},
	 {"kind":"tool_response","agent":"A","data":{"call_id":"c1","name":"f","status":"ok","result":{"y":2}}},
	 {"kind":"input_request","agent":"A","data":{"request_id":"q","prompt":"?"}},
	 {"kind":"tool_call","agent":"B","data":{"call_id":"c3","name":"h","agent":"B","arguments":{},"message_id":"m2"}},
	 {"kind":"tool_response","agent":"B","data":{"call_id":"c3","name":"h","status":"error","result":"boom"}},
	 {"kind":"usage_delta","data":{"total_tokens":5}}
	]`
	var tr []StoredEvent
	if err := json.Unmarshal([]byte(raw), &tr); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range HistoryFromTranscript(tr) {
		s := m.Role + "|" + m.Name + "|" + m.Content + "|" + m.ToolCallID
		for _, tc := range m.ToolCalls {
			s += "|" + tc.ID + ":" + tc.Name + ":" + tc.Arguments
		}
		got = append(got, s)
	}
	want := []string{
		"user||hi|",
		`assistant|A|let me look||c1:f:{"x":1}|c2:g:not json`,
		`tool||{"y":2}|c1`,
		`tool||{"error":"the tool call was interrupted and has no result"}|c2`,
		"assistant|B|||c3:h:{}",
		"tool||boom|c3",
	}
	if !slices.Equal(got, want) {
		t.Errorf("history =\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestStreamRestartIsForwarded(t *testing.T) {
	t.Parallel()
	set := mustSet(t, map[string]string{
		"w/orchestrator.yaml": "max_turns: 3\n",
		"w/agents.yaml":       "agents:\n  - {name: A, system_message: You are A.}\n",
	})
	c := newChat(t, set, "w")
	c.opts.LLM = llm.NewOpenAI(llm.Options{APIKey: "k", BaseURL: c.srv.URL(), MaxRetries: 1, BaseBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	c.srv.Enqueue(llmtest.Reply{Text: "one two three four", Cut: true, CutAfter: 2}, llmtest.Reply{Text: "the whole answer"})
	c.run(nil)
	var after strings.Builder
	restarts := 0
	for _, p := range c.kinds(KindPrint) {
		if p.Data["restart"] == true { // replaces what came before, with its own content
			restarts++
			after.Reset()
		}
		after.WriteString(p.Data["content"].(string))
	}
	text := c.lastOf(KindText).Data
	if restarts != 1 || after.String() != "the whole answer" || text["content"] != "the whole answer" {
		t.Errorf("restarts %d, streamed after restart %q, text %v", restarts, after.String(), text)
	}
}

func TestConcurrentChats(t *testing.T) {
	t.Parallel()
	set := mustSet(t, threeAgents("orchestration_pattern: RandomPattern\nhuman_in_the_loop: false\nmax_turns: 6\n", "  []\n"))
	c := newChat(t, set, "w")
	c.srv.SetResponder(agentResponder)
	eng := New(c.opts) // one engine shared by every chat, as the runtime does
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			rec := &recorder{}
			res, err := eng.Run(context.Background(), RunRequest{Workflow: "w", Sink: rec})
			if err == nil && res.Reason != ReasonMaxTurns {
				err = errors.New("reason " + res.Reason)
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestNoModelClient(t *testing.T) {
	t.Parallel()
	set := mustSet(t, map[string]string{
		"w/orchestrator.yaml": "max_turns: 3\n",
		"w/agents.yaml":       "agents:\n  - {name: A, system_message: You are A.}\n",
	})
	c := newChat(t, set, "w", func(o *Options) { o.LLM = nil })
	res := c.run(nil)
	if res.Reason != ReasonLLMUnavailable || c.lastOf(KindError).Data["error_code"] != llm.CodeNotConfigured {
		t.Errorf("result %+v events %v", res, c.last)
	}
}

func TestMessageMissingFromTranscriptStillReachesModel(t *testing.T) {
	t.Parallel()
	set := mustSet(t, map[string]string{
		"w/orchestrator.yaml": "startup_mode: UserDriven\n",
		"w/agents.yaml":       "agents:\n  - {name: A, system_message: You are A.}\n",
	})
	c := newChat(t, set, "w")
	c.run(nil)
	c.run(&Input{Kind: InputMessage, Text: "not stored"}) // not put in the transcript first
	if got := c.srv.ChatRequests()[0].LastUserMessage(); got != "not stored" {
		t.Errorf("model saw %q", got)
	}
}

func TestStateNamingRemovedAgent(t *testing.T) {
	t.Parallel()
	set := mustSet(t, map[string]string{
		"w/orchestrator.yaml": "max_turns: 3\n",
		"w/agents.yaml":       "agents:\n  - {name: A, system_message: You are A.}\n",
	})
	c := newChat(t, set, "w")
	c.stateJSON = []byte(`{"started":true,"current_agent":"Gone","pending":{"kind":"input","request_id":"r1","agent":"Gone"}}`)
	res := c.say("hi")
	if res.Status != StatusAwaitingInput || !slices.Equal(c.speakers(), []string{"A"}) {
		t.Errorf("result %+v speakers %v", res, c.speakers())
	}
}

// An empty reply is the model failing: an error the user sees, no empty
// message stored, and the chat stays usable.
func TestEmptyReplyIsAnError(t *testing.T) {
	t.Parallel()
	set := mustSet(t, map[string]string{
		"w/orchestrator.yaml": "human_in_the_loop: true\nstartup_mode: UserDriven\n",
		"w/agents.yaml":       "agents:\n  - {name: A, system_message: You are A.}\n",
	})
	c := newChat(t, set, "w")
	c.srv.Enqueue(llmtest.Reply{Text: ""})
	c.run(nil)
	c.srv.Enqueue(llmtest.Reply{Text: ""}, llmtest.Reply{Text: "back"})
	c.store(KindText, "user", map[string]any{"agent": "user", "role": "user", "content": "hi"})
	res := c.run(&Input{Kind: InputMessage, Text: "hi"})
	if e := c.lastOf(KindError); e.Data["error_code"] != CodeEmptyReply || res.Reason != ReasonLLMUnavailable {
		t.Fatalf("empty reply: error %v, result %+v", e.Data, res)
	}
	for _, ev := range c.kinds(KindText) {
		if ev.Agent == "A" {
			t.Fatalf("an empty reply was stored as a message: %+v", ev)
		}
	}
}
