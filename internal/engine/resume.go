package engine

import (
	"context"

	"github.com/mozaiks/mozaiks/internal/llm"
	"github.com/mozaiks/mozaiks/internal/workflow"
)

// Recovery codes.
const (
	// CodeRunInterrupted ends a run whose process died while a tool with
	// side effects ran: whether it took effect is unknown, so it is not run
	// again; the user decides.
	CodeRunInterrupted = "RUN_INTERRUPTED"
	ReasonInterrupted  = "interrupted"
)

// resume continues the run that the transcript shows started but not
// ended, from its last stored step. The stored events are the log: the state
// is the one the previous run ended in, and replaying this run's events
// rebuilds what the run had changed (turns, context variables, handoffs).
// A stored reply is never asked for again; a reply that was being streamed
// is asked for again; a tool call with a stored result is not run again; an
// http tool without one ends the run with RUN_INTERRUPTED.
func (r *run) resume(ctx context.Context) (Result, error) {
	at := -1
	for k := len(r.events) - 1; k >= 0; k-- {
		if r.events[k].Kind == KindRunStart {
			at = k
			break
		}
	}
	if at < 0 {
		// Nothing of the run was stored: the workflow's start never ran.
		r.req.Input = nil
		return r.run(ctx)
	}
	start := r.events[at]
	r.runID, r.began = firstNonEmpty(str(start.Data, "run_id"), r.runID), true
	if r.st.Run == r.runID {
		if r.st.Done {
			return r.result(StatusCompleted, ReasonTerminate), nil
		}
		return r.awaiting(ReasonInputRequired)
	}
	r.st.Started = true
	if InputSeq(start) > 0 {
		// A message run: it settled what the chat waited for.
		r.st.Done, r.st.Pending, r.st.AutoReplies = false, nil, map[string]int{}
	} else if p := r.st.Pending; p != nil && p.Kind == "ui_tool" {
		r.st.Pending = nil // a UI tool's answer: its result is among the events
	}
	speaker := firstNonEmpty(str(start.Data, "speaker"), r.st.CurrentAgent, r.wf.Orchestrator.InitialAgent)

	var (
		out      turnOutcome
		inTurn   bool
		replied  bool // the turn's last step is a stored reply
		failed   bool
		asked    *StoredEvent
		openCall []StoredEvent
	)
	for _, ev := range r.events[at+1:] {
		switch ev.Kind {
		case KindSelectSpeaker:
			speaker = firstNonEmpty(str(ev.Data, "agent"), ev.Agent)
			r.turns++
			r.st.AutoReplies[speaker]++
			r.st.CurrentAgent = speaker
			inTurn, replied, out, openCall, asked = true, false, turnOutcome{}, nil, nil
		case KindText:
			if a := firstNonEmpty(str(ev.Data, "agent"), ev.Agent); a != "user" {
				out.lastText, replied = str(ev.Data, "content"), true
				r.applyTextTriggers(a, out.lastText)
			}
		case KindToolCall:
			openCall, replied = append(openCall, ev), false
		case KindToolResponse:
			id := str(ev.Data, "call_id")
			for k, c := range openCall {
				if str(c.Data, "call_id") == id {
					openCall = append(openCall[:k], openCall[k+1:]...)
					break
				}
			}
			r.replayResult(ev, &out)
		case KindInputRequest:
			e := ev
			asked = &e
		case KindError:
			failed = true
		case KindRunComplete:
			return r.awaiting(ReasonInputRequired) // ended after all; nothing to do
		}
	}

	switch {
	case failed:
		return r.finish(ctx, StatusAwaitingInput, ReasonLLMUnavailable)
	case asked != nil:
		r.st.Pending = &Pending{Kind: "input", RequestID: str(asked.Data, "request_id"), Agent: firstNonEmpty(str(asked.Data, "agent"), asked.Agent),
			Prompt: str(asked.Data, "prompt")}
		return r.awaiting(ReasonInputRequired)
	}
	for _, c := range openCall {
		if c.Data["awaiting_response"] == true {
			// The UI tool waits for the user, as it did before the crash.
			r.st.Pending = &Pending{Kind: "ui_tool", RequestID: str(c.Data, "eventId"), Agent: speaker, CallID: str(c.Data, "call_id"),
				ToolName: str(c.Data, "name"), Display: str(c.Data, "display")}
			return r.awaiting(ReasonInputRequired)
		}
	}
	agent, ok := r.wf.Agent(speaker)
	if !ok {
		return r.loop(ctx, r.wf.Orchestrator.InitialAgent)
	}
	for _, c := range openCall {
		t := r.tool(speaker, str(c.Data, "name"))
		if t == nil || t.Kind != workflow.ToolBuiltin {
			return r.interrupted(ctx, speaker, c)
		}
		// A builtin only changes this run's state: running it again is safe.
		call := llm.ToolCall{ID: str(c.Data, "call_id"), Name: str(c.Data, "name"), Arguments: argumentsText(c.Data["arguments"])}
		status, result := r.execute(ctx, agent, t, call, &out)
		if err := r.emit(ctx, ToolResponse{CallID: call.ID, Name: call.Name, Agent: speaker, Status: status, Result: result}); err != nil {
			return r.stop(ctx, err)
		}
	}
	if inTurn && (replied || out.terminate || out.next != "") {
		next, res, done, err := r.afterTurn(ctx, speaker, out)
		if done {
			return res, err
		}
		return r.loop(ctx, next)
	}
	if inTurn {
		// The reply was not stored (it was streaming, or the model had a
		// tool result to read): ask again, as the same turn.
		r.turns--
		r.st.AutoReplies[speaker]--
	}
	return r.loop(ctx, speaker)
}

// interrupted ends a run whose side-effecting tool call has no result.
func (r *run) interrupted(ctx context.Context, agent string, call StoredEvent) (Result, error) {
	name := str(call.Data, "name")
	if err := r.emit(ctx, ToolResponse{CallID: str(call.Data, "call_id"), Name: name, Agent: agent, Status: "error",
		Result: map[string]any{"error": "the server restarted while this tool ran; whether it took effect is unknown"}}); err != nil {
		return r.stop(ctx, err)
	}
	if err := r.emit(ctx, Error{Message: "the server restarted while the tool " + name + " was running; check its effect and ask again",
		Code: CodeRunInterrupted, Retryable: true}); err != nil {
		return r.stop(ctx, err)
	}
	return r.finish(ctx, StatusAwaitingInput, ReasonInterrupted)
}

// replayResult applies what a stored tool result did to the run's state.
func (r *run) replayResult(ev StoredEvent, out *turnOutcome) {
	if str(ev.Data, "status") != "ok" {
		return
	}
	res, _ := ev.Data["result"].(map[string]any)
	t := r.tool(firstNonEmpty(str(ev.Data, "agent"), ev.Agent), str(ev.Data, "name"))
	if t == nil {
		return
	}
	switch t.Kind {
	case workflow.ToolUI:
		r.applyUITriggers(t.Name, res)
	case workflow.ToolBuiltin:
		switch t.Builtin {
		case workflow.BuiltinSetContext:
			if name, ok := res["name"].(string); ok {
				r.st.Context[name] = res["value"]
			}
		case workflow.BuiltinEnd, workflow.BuiltinTerminate:
			out.terminate = true
		case workflow.BuiltinHandoff:
			out.next, _ = res["handoff"].(string)
		}
	}
}

func (r *run) tool(agent, name string) *workflow.Tool {
	for _, t := range r.wf.ToolsFor(agent) {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// InputSeq is the seq of the user message a stored run_start answers, 0 when
// the run answered none (a workflow's start, a UI tool's answer). The
// runtime records it (it knows the seq once the message is stored); the
// engine and the runtime read it back through here.
func InputSeq(ev StoredEvent) int64 {
	if ev.Kind != KindRunStart {
		return 0
	}
	switch n := ev.Data["input_seq"].(type) {
	case float64:
		return int64(n)
	case int64:
		return n
	case int:
		return int64(n)
	}
	return 0
}
