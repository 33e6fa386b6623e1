package engine

import (
	"cmp"
	"context"
	"fmt"
	"strings"

	"github.com/mozaiks/mozaiks/internal/llm"
	"github.com/mozaiks/mozaiks/internal/workflow"
)

// route picks who follows speaker: the first matching condition handoff,
// else the first after-work handoff, else the orchestration pattern.
func (r *run) route(ctx context.Context, speaker string) (string, error) {
	if next, ok, err := r.handoff(ctx, speaker); err != nil || ok {
		return next, err
	}
	agents := r.wf.AgentNames()
	hitl := r.wf.HumanInTheLoop()
	switch r.wf.Orchestrator.Pattern {
	case workflow.PatternRoundRobin:
		i := indexOf(agents, speaker)
		if hitl && i == len(agents)-1 {
			return workflow.TargetUser, nil
		}
		return agents[(i+1)%len(agents)], nil
	case workflow.PatternRandom:
		return r.random(speaker, hitl), nil
	case workflow.PatternAuto:
		return r.autoPick(ctx, speaker, hitl, true)
	}
	if hitl {
		return workflow.TargetUser, nil
	}
	return workflow.TargetTerminate, nil
}

// afterUser picks who answers a user message that follows agent's turn:
// a handoff from "user", else, when no agent has spoken yet (the opening
// input request of a UserDriven chat, which no agent asked), the initial
// agent, as an AgentDriven chat starts; else the agent that asked
// (DefaultPattern), the agent after the last speaker (RoundRobinPattern), or
// the pattern's choice.
func (r *run) afterUser(ctx context.Context, agent string) (string, error) {
	next, ok, err := r.handoff(ctx, workflow.TargetUser)
	if err != nil {
		return "", err
	}
	if ok && next != workflow.TargetUser && next != workflow.TargetTerminate {
		return next, nil
	}
	if !r.agentHasSpoken() {
		return r.wf.Orchestrator.InitialAgent, nil
	}
	agents := r.wf.AgentNames()
	switch r.wf.Orchestrator.Pattern {
	case workflow.PatternRoundRobin:
		// The rotation goes on from whoever spoke last, also when the run
		// before ended (terminate, max_turns) rather than asked.
		last := cmp.Or(r.st.CurrentAgent, agent)
		return agents[(indexOf(agents, last)+1)%len(agents)], nil
	case workflow.PatternRandom:
		return r.random("", false), nil
	case workflow.PatternAuto:
		return r.autoPick(ctx, workflow.TargetUser, false, false)
	}
	return agent, nil
}

// agentHasSpoken reports whether any agent took a turn in this chat. The
// last turn is usually near the end, so the scan is short.
func (r *run) agentHasSpoken() bool {
	for i := len(r.events) - 1; i >= 0; i-- {
		if r.events[i].Kind == KindSelectSpeaker {
			return true
		}
	}
	return false
}

func (r *run) handoff(ctx context.Context, source string) (string, bool, error) {
	for _, h := range r.wf.Handoffs {
		if h.SourceAgent != source || h.HandoffType != workflow.HandoffCondition {
			continue
		}
		ok := false
		if h.ConditionType == workflow.ConditionExpression {
			ok = h.Expr.Eval(r.st.Context)
		} else {
			var err error
			if ok, err = r.judge(ctx, source, h.Condition); err != nil {
				return "", false, err
			}
		}
		if ok {
			return h.TargetAgent, true, nil
		}
	}
	for _, h := range r.wf.Handoffs {
		if h.SourceAgent == source && h.HandoffType == workflow.HandoffAfterWork {
			return h.TargetAgent, true, nil
		}
	}
	return "", false, nil
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

func (r *run) random(speaker string, withUser bool) string {
	var cands []string
	for _, a := range r.wf.AgentNames() {
		if a != speaker {
			cands = append(cands, a)
		}
	}
	if len(cands) == 0 {
		cands = []string{speaker}
	}
	if withUser {
		cands = append(cands, workflow.TargetUser)
	}
	return cands[r.e.intn(len(cands))]
}

// transcriptText renders the recent conversation for the judge and the
// speaker picker, which see it as one block of text.
func (r *run) transcriptText(limit int) string {
	msgs := HistoryFromTranscript(RecentHistory(r.events, 2*limit))
	if len(msgs) > limit {
		msgs = msgs[len(msgs)-limit:]
	}
	var b strings.Builder
	for _, m := range msgs {
		who := m.Name
		switch {
		case m.Role == "user":
			who = "user"
		case m.Role == "tool":
			who = "tool result"
		case m.Content == "" && len(m.ToolCalls) > 0:
			fmt.Fprintf(&b, "%s: (calls %s)\n", who, m.ToolCalls[0].Name)
			continue
		}
		fmt.Fprintf(&b, "%s: %s\n", who, m.Content)
	}
	return b.String()
}

func (r *run) utilityModel(agent string) string {
	if a, ok := r.wf.Agent(agent); ok && a.Model != "" {
		return a.Model
	}
	return r.e.opts.DefaultModel
}

// judge asks the model whether a natural-language handoff condition holds.
// It is short and not streamed; its tokens are reported like any call.
func (r *run) judge(ctx context.Context, agent, condition string) (bool, error) {
	zero := float32(0)
	req := llm.Request{
		Model:       r.utilityModel(agent),
		Temperature: &zero,
		MaxTokens:   3,
		Messages: []llm.Message{
			{Role: "system", Content: "You decide whether a condition holds for a conversation. Answer with exactly one word: yes or no."},
			{Role: "user", Content: "Conversation:\n" + r.transcriptText(20) + "\nCondition: " + condition + "\nDoes the condition hold? Answer yes or no."},
		},
	}
	resp, err := r.call(ctx, agent, req, "")
	if err != nil {
		return false, err
	}
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(resp.Content)), "yes"), nil
}

// autoPick asks the model who speaks next (AutoPattern).
func (r *run) autoPick(ctx context.Context, speaker string, withUser, withTerminate bool) (string, error) {
	var b strings.Builder
	var cands []string
	for _, a := range r.wf.Agents {
		cands = append(cands, a.Name)
		fmt.Fprintf(&b, "- %s", a.Name)
		if a.Description != "" {
			fmt.Fprintf(&b, ": %s", a.Description)
		}
		b.WriteByte('\n')
	}
	if withUser {
		cands = append(cands, workflow.TargetUser)
		b.WriteString("- user: the human, when the agents need their input\n")
	}
	if withTerminate {
		cands = append(cands, workflow.TargetTerminate)
		b.WriteString("- terminate: the conversation is finished\n")
	}
	zero := float32(0)
	req := llm.Request{
		Model:       r.utilityModel(speaker),
		Temperature: &zero,
		MaxTokens:   20,
		Messages: []llm.Message{
			{Role: "system", Content: "You choose who speaks next in a multi-agent conversation. Reply with one name from the list and nothing else.\n\nCandidates:\n" + b.String()},
			{Role: "user", Content: "Conversation:\n" + r.transcriptText(20) + "\nWho speaks next?"},
		},
	}
	resp, err := r.call(ctx, firstNonEmpty(r.st.CurrentAgent, speaker), req, "")
	if err != nil {
		return "", err
	}
	answer := strings.Trim(strings.TrimSpace(resp.Content), ".\"'`* ")
	for _, c := range cands {
		if strings.EqualFold(answer, c) {
			return c, nil
		}
	}
	for _, c := range cands {
		if strings.Contains(strings.ToLower(answer), strings.ToLower(c)) {
			return c, nil
		}
	}
	// An unusable answer falls back to the next agent in order.
	agents := r.wf.AgentNames()
	return agents[(indexOf(agents, speaker)+1)%len(agents)], nil
}
