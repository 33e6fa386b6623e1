package engine

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
)

// TestFirstTwoRounds pins who speaks in the first two rounds of every
// pattern, with human_in_the_loop on and off, started by the agents or by
// the user. A round is what one start (AgentDriven) or one user message
// sets off; the agents are A, B, C and A is the initial agent. A UserDriven
// chat's opening input request was asked by no agent, so its first round
// starts at the initial agent in every pattern (RoundRobin used to start at
// B, as if A had asked).
func TestFirstTwoRounds(t *testing.T) {
	t.Parallel()
	type rounds [2][]string
	tests := []struct {
		pattern string
		hitl    bool
		user    bool     // UserDriven
		picks   []string // AutoPattern: the speaker picker's answers, in order
		want    rounds
	}{
		{pattern: "DefaultPattern", hitl: true, want: rounds{{"A"}, {"A"}}},
		{pattern: "DefaultPattern", hitl: false, want: rounds{{"A"}, {"A"}}},
		{pattern: "DefaultPattern", hitl: true, user: true, want: rounds{{"A"}, {"A"}}},
		{pattern: "DefaultPattern", hitl: false, user: true, want: rounds{{"A"}, {"A"}}},

		{pattern: "RoundRobinPattern", hitl: true, want: rounds{{"A", "B", "C"}, {"A", "B", "C"}}},
		// Without the human, max_turns (5) ends each run; the rotation goes
		// on across runs.
		{pattern: "RoundRobinPattern", hitl: false, want: rounds{{"A", "B", "C", "A", "B"}, {"C", "A", "B", "C", "A"}}},
		{pattern: "RoundRobinPattern", hitl: true, user: true, want: rounds{{"A", "B", "C"}, {"A", "B", "C"}}},
		{pattern: "RoundRobinPattern", hitl: false, user: true, want: rounds{{"A", "B", "C", "A", "B"}, {"C", "A", "B", "C", "A"}}},

		// Seeded: the same every time, and the same for both startups (the
		// opening draws nothing). A starts; within a run nobody speaks twice
		// in a row; with the human in the loop, "user" is one of the draws;
		// a user message may go to any agent.
		{pattern: "RandomPattern", hitl: true, want: rounds{{"A", "B", "C", "A", "C", "B", "A"}, {"B"}}},
		{pattern: "RandomPattern", hitl: false, want: rounds{{"A", "C", "A", "B", "C"}, {"A", "C", "A", "C", "B"}}},
		{pattern: "RandomPattern", hitl: true, user: true, want: rounds{{"A", "B", "C", "A", "C", "B", "A"}, {"B"}}},
		{pattern: "RandomPattern", hitl: false, user: true, want: rounds{{"A", "C", "A", "B", "C"}, {"A", "C", "A", "C", "B"}}},

		// The picker is asked after every turn and after every user message
		// but the one that opens a UserDriven chat.
		{pattern: "AutoPattern", hitl: true, picks: []string{"C", "user", "B", "user"}, want: rounds{{"A", "C"}, {"B"}}},
		{pattern: "AutoPattern", hitl: false, picks: []string{"B", "terminate", "C", "terminate"}, want: rounds{{"A", "B"}, {"C"}}},
		{pattern: "AutoPattern", hitl: true, user: true, picks: []string{"B", "user", "C", "user"}, want: rounds{{"A", "B"}, {"C"}}},
		{pattern: "AutoPattern", hitl: false, user: true, picks: []string{"C", "terminate", "B", "terminate"}, want: rounds{{"A", "C"}, {"B"}}},
	}
	for _, tt := range tests {
		mode := "AgentDriven"
		if tt.user {
			mode = "UserDriven"
		}
		name := fmt.Sprintf("%s/hitl=%v/%s", tt.pattern, tt.hitl, mode)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			maxTurns := 10
			if !tt.hitl {
				maxTurns = 5
			}
			orch := fmt.Sprintf("orchestration_pattern: %s\nhuman_in_the_loop: %v\nstartup_mode: %s\nmax_turns: %d\n",
				tt.pattern, tt.hitl, mode, maxTurns)
			if tt.user {
				orch += "initial_message_to_user: \"Hi! What can I help you with?\"\n"
			}
			c := newChat(t, mustSet(t, threeAgents(orch, "  []\n")), "w", seeded(3))
			var (
				mu    sync.Mutex
				picks = slices.Clone(tt.picks)
			)
			c.srv.SetResponder(func(r llmtest.Request) llmtest.Reply {
				if !strings.HasPrefix(systemOf(r), "You choose who speaks next") {
					return agentResponder(r)
				}
				mu.Lock()
				defer mu.Unlock()
				if len(picks) == 0 {
					t.Errorf("an unexpected speaker pick after %v", c.speakers())
					return llmtest.Reply{Text: "terminate"}
				}
				p := picks[0]
				picks = picks[1:]
				return llmtest.Reply{Text: p}
			})

			res := c.run(nil)
			if tt.user {
				// The opening: the greeting, asked as an input request, and no turn.
				if len(c.speakers()) != 0 || res.Status != StatusAwaitingInput || c.lastOf(KindInputRequest).Data["prompt"] != "Hi! What can I help you with?" {
					t.Fatalf("opening: speakers %v, result %+v", c.speakers(), res)
				}
				res = c.say("first")
			}
			var got rounds
			got[0] = c.speakers()
			checkRoundEnd(t, c, res, tt.hitl, got[0])
			res = c.say("second")
			got[1] = c.speakers()[len(got[0]):]
			checkRoundEnd(t, c, res, tt.hitl, got[1])

			if !slices.Equal(got[0], tt.want[0]) || !slices.Equal(got[1], tt.want[1]) {
				t.Errorf("rounds %v, want %v", got, tt.want)
			}
			if len(picks) != 0 {
				t.Errorf("picks left over: %v", picks)
			}
		})
	}
}

// checkRoundEnd checks how a round ended: with the human in the loop, by
// asking the user from the last speaker; without, by max_turns or terminate.
func checkRoundEnd(t *testing.T, c *chat, res Result, hitl bool, speakers []string) {
	t.Helper()
	if len(speakers) == 0 {
		t.Fatalf("nobody spoke; result %+v", res)
	}
	if hitl {
		if res.Status != StatusAwaitingInput || res.Reason != ReasonInputRequired || c.lastOf(KindInputRequest).Agent != speakers[len(speakers)-1] {
			t.Errorf("round %v: result %+v, want the last speaker to ask the user", speakers, res)
		}
		return
	}
	if res.Status != StatusCompleted || (res.Reason != ReasonMaxTurns && res.Reason != ReasonTerminate) {
		t.Errorf("round %v: result %+v, want completed", speakers, res)
	}
}
