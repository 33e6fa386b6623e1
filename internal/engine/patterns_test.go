package engine

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
)

// threeAgents is a workflow of agents A, B, C with the given orchestrator
// settings and handoffs.
func threeAgents(orch, handoffs string) map[string]string {
	return map[string]string{
		"w/orchestrator.yaml": orch,
		"w/agents.yaml": `agents:
  - {name: A, system_message: "You are A.", description: first}
  - {name: B, system_message: "You are B."}
  - {name: C, system_message: "You are C."}
`,
		"w/handoffs.yaml": "handoff_rules:\n" + handoffs,
	}
}

// agentResponder answers as the agent whose system prompt it sees.
func agentResponder(r llmtest.Request) llmtest.Reply {
	sys := systemOf(r)
	if strings.HasPrefix(sys, "You are ") {
		return llmtest.Reply{Text: "hello from " + strings.TrimSuffix(strings.TrimPrefix(sys, "You are "), ".")}
	}
	return llmtest.Reply{Text: "?"}
}

func TestRoundRobinStopsAtMaxTurns(t *testing.T) {
	t.Parallel()
	set := mustSet(t, threeAgents("orchestration_pattern: RoundRobinPattern\nhuman_in_the_loop: false\nmax_turns: 5\n", "  []\n"))
	c := newChat(t, set, "w")
	c.srv.SetResponder(agentResponder)
	res := c.run(nil)
	if want := []string{"A", "B", "C", "A", "B"}; !slices.Equal(c.speakers(), want) {
		t.Errorf("speakers = %v, want %v", c.speakers(), want)
	}
	rc := c.lastOf(KindRunComplete).Data
	if rc["reason"] != ReasonMaxTurns || rc["status"] != StatusCompleted || res.Reason != ReasonMaxTurns || res.Status != StatusCompleted {
		t.Errorf("run_complete = %v, result = %+v", rc, res)
	}
	if c.lastOf(KindText).Data["content"] != "hello from B" {
		t.Errorf("last text = %v", c.lastOf(KindText).Data)
	}
	if res.Tokens == 0 || rc["total_tokens"] != res.Tokens {
		t.Errorf("tokens: result %d, run_complete %v", res.Tokens, rc["total_tokens"])
	}
}

func TestRoundRobinAsksUserAfterLastAgent(t *testing.T) {
	t.Parallel()
	set := mustSet(t, threeAgents("orchestration_pattern: RoundRobinPattern\nmax_turns: 20\n", "  []\n"))
	c := newChat(t, set, "w")
	c.srv.SetResponder(agentResponder)
	res := c.run(nil)
	if res.Status != StatusAwaitingInput || res.Reason != ReasonInputRequired {
		t.Fatalf("result = %+v", res)
	}
	ir := c.lastOf(KindInputRequest).Data
	if ir["agent"] != "C" || ir["prompt"] != "hello from C" || ir["request_id"] == "" {
		t.Errorf("input_request = %v", ir)
	}
	c.say("more")
	if want := []string{"A", "B", "C", "A", "B", "C"}; !slices.Equal(c.speakers(), want) {
		t.Errorf("speakers = %v, want %v", c.speakers(), want)
	}
}

func TestRandomPatternNeverRepeatsAndIsSeeded(t *testing.T) {
	t.Parallel()
	set := mustSet(t, threeAgents("orchestration_pattern: RandomPattern\nhuman_in_the_loop: false\nmax_turns: 12\n", "  []\n"))
	var seqs [][]string
	for range 2 {
		c := newChat(t, set, "w", seeded(7))
		c.srv.SetResponder(agentResponder)
		res := c.run(nil)
		if res.Reason != ReasonMaxTurns {
			t.Fatalf("result = %+v", res)
		}
		sp := c.speakers()
		if len(sp) != 12 || sp[0] != "A" {
			t.Fatalf("speakers = %v", sp)
		}
		seen := map[string]bool{}
		for i, s := range sp {
			seen[s] = true
			if i > 0 && sp[i-1] == s {
				t.Errorf("%s spoke twice in a row: %v", s, sp)
			}
		}
		if len(seen) != 3 {
			t.Errorf("not every agent spoke in 12 turns: %v", sp)
		}
		seqs = append(seqs, sp)
	}
	if !slices.Equal(seqs[0], seqs[1]) {
		t.Errorf("same seed, different speakers: %v vs %v", seqs[0], seqs[1])
	}
}

func TestAutoPatternModelPicksSpeaker(t *testing.T) {
	t.Parallel()
	set := mustSet(t, threeAgents("orchestration_pattern: AutoPattern\nmax_turns: 10\n", "  []\n"))
	c := newChat(t, set, "w")
	picks := []string{"C", " b.", "terminate"}
	c.srv.SetResponder(func(r llmtest.Request) llmtest.Reply {
		if strings.HasPrefix(systemOf(r), "You choose who speaks next") {
			p := picks[0]
			picks = picks[1:]
			return llmtest.Reply{Text: p}
		}
		return agentResponder(r)
	})
	res := c.run(nil)
	if want := []string{"A", "C", "B"}; !slices.Equal(c.speakers(), want) {
		t.Errorf("speakers = %v, want %v", c.speakers(), want)
	}
	if res.Reason != ReasonTerminate || c.lastOf(KindRunComplete).Data["reason"] != ReasonTerminate {
		t.Errorf("result = %+v", res)
	}
	// The picker sees the candidates, descriptions and the conversation.
	var pick llmtest.Request
	for _, r := range c.srv.ChatRequests() {
		if strings.HasPrefix(systemOf(r), "You choose") {
			pick = r
		}
	}
	if !strings.Contains(systemOf(pick), "- A: first") || !strings.Contains(systemOf(pick), "- terminate") ||
		!strings.Contains(pick.LastUserMessage(), "C: hello from C") {
		t.Errorf("picker request = %+v", pick.Messages)
	}
	// 3 agent turns + 3 picks, each reported.
	if n := len(c.kinds(KindUsageDelta)); n != 6 {
		t.Errorf("usage_delta events = %d, want 6", n)
	}
}

func TestDefaultPatternHandoffs(t *testing.T) {
	t.Parallel()
	// A -> B (after work), B -> C when ${go} is set, else terminate; C -> user.
	set := mustSet(t, map[string]string{
		"w/orchestrator.yaml": "max_turns: 10\n",
		"w/agents.yaml":       threeAgents("", "")["w/agents.yaml"],
		"w/context_variables.yaml": `definitions:
  - name: go
    type: boolean
    source: {type: state, default: false, triggers: [{type: agent_text, agent: A, contains: "GO NOW"}]}
`,
		"w/handoffs.yaml": `handoff_rules:
  - {source_agent: A, target_agent: B}
  - {source_agent: B, target_agent: C, handoff_type: condition, condition_type: expression, condition: "${go} == true"}
  - {source_agent: B, target_agent: terminate}
  - {source_agent: C, target_agent: user}
`,
	})
	for _, tc := range []struct {
		aSays    string
		speakers []string
		reason   string
	}{
		{"nothing yet", []string{"A", "B"}, ReasonTerminate},
		{"we go now, GO NOW", []string{"A", "B", "C"}, ReasonInputRequired},
	} {
		t.Run(tc.aSays, func(t *testing.T) {
			c := newChat(t, set, "w")
			c.srv.SetResponder(func(r llmtest.Request) llmtest.Reply {
				if systemOf(r) == "You are A." {
					return llmtest.Reply{Text: tc.aSays}
				}
				return agentResponder(r)
			})
			res := c.run(nil)
			if !slices.Equal(c.speakers(), tc.speakers) || res.Reason != tc.reason {
				t.Errorf("speakers %v reason %s, want %v %s", c.speakers(), res.Reason, tc.speakers, tc.reason)
			}
		})
	}
}

func TestLLMConditionHandoff(t *testing.T) {
	t.Parallel()
	set := mustSet(t, threeAgents("max_turns: 10\nhuman_in_the_loop: false\n", `  - {source_agent: A, target_agent: C, handoff_type: condition, condition_type: llm, condition: "the user wants a poem"}
  - {source_agent: A, target_agent: B}
  - {source_agent: B, target_agent: terminate}
  - {source_agent: C, target_agent: terminate}
`))
	for _, answer := range []string{"Yes.", "no"} {
		t.Run(answer, func(t *testing.T) {
			c := newChat(t, set, "w")
			c.srv.SetResponder(func(r llmtest.Request) llmtest.Reply {
				if strings.HasPrefix(systemOf(r), "You decide whether a condition holds") {
					return llmtest.Reply{Text: answer}
				}
				return agentResponder(r)
			})
			c.run(nil)
			want := []string{"A", "B"}
			if answer == "Yes." {
				want = []string{"A", "C"}
			}
			if !slices.Equal(c.speakers(), want) {
				t.Errorf("speakers = %v, want %v", c.speakers(), want)
			}
			judge := c.srv.ChatRequests()[1]
			if judge.MaxTokens == nil || *judge.MaxTokens != 3 || judge.Temperature == nil || *judge.Temperature > 0.001 ||
				!strings.Contains(judge.LastUserMessage(), "Condition: the user wants a poem") ||
				!strings.Contains(judge.LastUserMessage(), "A: hello from A") {
				t.Errorf("judge request: max_tokens %v temperature %v messages %+v", judge.MaxTokens, judge.Temperature, judge.Messages)
			}
			if n := len(c.kinds(KindUsageDelta)); n != 3 {
				t.Errorf("usage_delta events = %d, want 3 (two agents and the judge)", n)
			}
		})
	}
}

func TestMaxConsecutiveAutoReply(t *testing.T) {
	t.Parallel()
	set := mustSet(t, map[string]string{
		"w/orchestrator.yaml": "max_turns: 50\n",
		"w/agents.yaml":       "agents:\n  - {name: A, system_message: You are A., max_consecutive_auto_reply: 3}\n",
		"w/handoffs.yaml":     "handoff_rules:\n  - {source_agent: A, target_agent: A}\n",
	})
	c := newChat(t, set, "w")
	c.srv.SetResponder(agentResponder)
	res := c.run(nil)
	if len(c.speakers()) != 3 || res.Reason != ReasonMaxTurns {
		t.Errorf("speakers %v, result %+v", c.speakers(), res)
	}
	// Completed by the bound; a new user message starts again and is bounded again.
	res = c.say("again")
	if len(c.speakers()) != 6 || res.Reason != ReasonMaxTurns {
		t.Errorf("after a new message: speakers %v, result %+v", c.speakers(), res)
	}
}

func TestSpeakersAcrossUserTurnsAndRestarts(t *testing.T) {
	t.Parallel()
	// user -> B is an explicit rule; A asks the user first.
	set := mustSet(t, threeAgents("max_turns: 10\n", `  - {source_agent: A, target_agent: user}
  - {source_agent: user, target_agent: B}
  - {source_agent: B, target_agent: user}
`))
	c := newChat(t, set, "w")
	c.srv.SetResponder(agentResponder)
	c.run(nil)
	for i := range 3 {
		res := c.say(fmt.Sprintf("answer %d", i))
		if res.Status != StatusAwaitingInput || c.lastOf(KindInputRequest).Agent != "B" {
			t.Fatalf("turn %d: result %+v", i, res)
		}
	}
	if want := []string{"A", "B", "B", "B"}; !slices.Equal(c.speakers(), want) {
		t.Errorf("speakers = %v, want %v", c.speakers(), want)
	}
	// The last request carries the whole conversation, rebuilt from the transcript.
	reqs := c.srv.ChatRequests()
	last := reqs[len(reqs)-1]
	var got []string
	for _, m := range last.Messages[1:] {
		got = append(got, m.Role+":"+m.Name+":"+m.Content)
	}
	want := []string{"assistant:A:hello from A", "user::answer 0", "assistant:B:hello from B", "user::answer 1", "assistant:B:hello from B", "user::answer 2"}
	if !slices.Equal(got, want) {
		t.Errorf("history =\n %v\nwant\n %v", got, want)
	}
}

func TestAutoPatternAfterUserAndMessageContext(t *testing.T) {
	t.Parallel()
	set := mustSet(t, map[string]string{
		"w/orchestrator.yaml": "orchestration_pattern: AutoPattern\nmax_turns: 10\n",
		"w/agents.yaml":       "agents:\n  - {name: A, system_message: 'You are A.'}\n  - {name: B, system_message: 'You are B. Topic {topic}, key {key}.'}\n",
		"w/context_variables.yaml": `definitions:
  - {name: topic, source: {type: state, default: none}}
  - {name: key, source: {type: config, env_var: THE_KEY, default: k0}}
`,
	})
	c := newChat(t, set, "w")
	picks := []string{"user", "B", "user"}
	c.srv.SetResponder(func(r llmtest.Request) llmtest.Reply {
		if strings.HasPrefix(systemOf(r), "You choose who speaks next") {
			p := picks[0]
			picks = picks[1:]
			return llmtest.Reply{Text: p}
		}
		return llmtest.Reply{Text: "ok"}
	})
	if res := c.run(nil); res.Reason != ReasonInputRequired || c.lastOf(KindInputRequest).Agent != "A" {
		t.Fatalf("start: %+v", res)
	}
	// Context sent with a message may set state variables, never config.
	c.store(KindText, "user", map[string]any{"agent": "user", "role": "user", "content": "go"})
	res := c.run(&Input{Kind: InputMessage, Text: "go", Context: map[string]any{"topic": "boats", "key": "stolen"}})
	if res.Reason != ReasonInputRequired || !slices.Equal(c.speakers(), []string{"A", "B"}) {
		t.Fatalf("after user: %+v speakers %v", res, c.speakers())
	}
	reqs := c.srv.ChatRequests()
	if got := systemOf(reqs[len(reqs)-2]); got != "You are B. Topic boats, key k0." {
		t.Errorf("B prompt = %q", got)
	}
}

func TestRandomPatternWithHumanInTheLoop(t *testing.T) {
	t.Parallel()
	set := mustSet(t, threeAgents("orchestration_pattern: RandomPattern\nmax_turns: 50\n", "  []\n"))
	c := newChat(t, set, "w", seeded(3))
	c.srv.SetResponder(agentResponder)
	res := c.run(nil)
	sp := c.speakers()
	if res.Reason != ReasonInputRequired || c.lastOf(KindInputRequest).Agent != sp[len(sp)-1] {
		t.Fatalf("result %+v speakers %v", res, sp)
	}
	// The answer goes to a random agent and the chat carries on.
	res = c.say("hi")
	if len(c.speakers()) <= len(sp) || res.Status == StatusFailed {
		t.Errorf("after answer: %+v speakers %v", res, c.speakers())
	}
}
