package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mozaiks/mozaiks/internal/llm"
	"github.com/mozaiks/mozaiks/internal/workflow"
)

// Reasons a run ends, as Result.Reason and run_complete's reason carry them.
const (
	ReasonInputRequired    = "input_required"
	ReasonTerminate        = "terminate"
	ReasonMaxTurns         = "max_turns"
	ReasonLLMUnavailable   = "llm_unavailable"
	ReasonCancelled        = "cancelled"
	ReasonStructuredOutput = "structured_output_invalid"
	ReasonUIToolNotPending = "ui_tool_not_pending"
)

// Error codes the engine emits in error events (besides llm.Code*).
const (
	CodeStructuredOutputInvalid = "STRUCTURED_OUTPUT_INVALID"
	CodeUIToolNotPending        = "UI_TOOL_NOT_PENDING"
	// CodeEmptyReply: the model answered with neither text nor tool calls.
	CodeEmptyReply = "LLM_EMPTY_REPLY"
)

// run is one call to Engine.Run.
type run struct {
	e      *Engine
	wf     *workflow.Workflow
	req    RunRequest
	st     State
	events []StoredEvent // the transcript plus what this run emitted
	tokens int
	turns  int
	start  time.Time
	runID  string
	began  bool // run_start was emitted (or, resuming, found)
}

// errSink marks a failing sink: the run stops and Run returns the error.
type errSink struct{ err error }

func (e *errSink) Error() string { return "emit event: " + e.err.Error() }
func (e *errSink) Unwrap() error { return e.err }

func (r *run) emit(ctx context.Context, ev Event) error {
	if err := r.req.Sink.Emit(ctx, ev); err != nil {
		return &errSink{err}
	}
	if Stored(ev) {
		r.events = append(r.events, NewStoredEvent(0, ev.Kind(), ev.From(), ev.Data()))
	}
	return nil
}

func (r *run) result(status, reason string) Result {
	if r.began {
		r.st.Run = r.runID
	}
	return Result{State: r.st, Status: status, Reason: reason, Tokens: r.tokens, Duration: time.Since(r.start)}
}

// finish emits run_complete and returns the result.
func (r *run) finish(ctx context.Context, status, reason string) (Result, error) {
	res := r.result(status, reason)
	completeStatus := status
	if status == StatusAwaitingInput {
		completeStatus = StatusFailed // only failures end a run while the chat waits
	}
	err := r.emit(ctx, RunComplete{Status: completeStatus, Reason: reason, Tokens: r.tokens, Duration: res.Duration})
	return res, err
}

func (r *run) awaiting(reason string) (Result, error) {
	return r.result(StatusAwaitingInput, reason), nil
}

// stop turns an error from deep in the run into the run's result: a failing
// sink is returned; a cancelled context ends quietly.
func (r *run) stop(ctx context.Context, err error) (Result, error) {
	var se *errSink
	switch {
	case ctx.Err() != nil:
		return r.result(StatusAwaitingInput, ReasonCancelled), nil
	case errors.As(err, &se):
		return r.result(StatusFailed, "sink_failed"), err
	}
	return r.result(StatusFailed, "internal_error"), err
}

func (r *run) run(ctx context.Context) (Result, error) {
	r.initContext()
	o := r.wf.Orchestrator
	in := r.req.Input
	var speaker string
	switch {
	case in == nil:
		switch {
		case r.st.Pending != nil || (r.st.Started && !r.st.Done):
			return r.awaiting(ReasonInputRequired)
		case r.st.Done:
			return r.result(StatusCompleted, ReasonTerminate), nil
		case o.StartupMode == workflow.StartupUserDriven:
			return r.startUserDriven(ctx)
		}
		speaker = o.InitialAgent
	case in.Kind == InputUIToolResponse:
		return r.resumeUITool(ctx, in)
	case in.Kind == InputResume:
		return r.resume(ctx)
	case in.Kind == InputMessage:
		var err error
		if speaker, err = r.acceptMessage(ctx, in); err != nil {
			return r.stop(ctx, err)
		}
	default:
		return r.result(StatusFailed, "bad_input"), fmt.Errorf("run %s: unknown input kind %q", r.wf.Name, in.Kind)
	}
	r.st.Started = true
	if err := r.begin(ctx, speaker); err != nil {
		return r.stop(ctx, err)
	}
	return r.loop(ctx, speaker)
}

// begin emits run_start, naming who speaks first (recovery reads it).
func (r *run) begin(ctx context.Context, speaker string) error {
	r.began = true
	return r.emit(ctx, RunStart{RunID: r.runID, Speaker: speaker})
}

func (r *run) startUserDriven(ctx context.Context) (Result, error) {
	o := r.wf.Orchestrator
	r.st.Started = true
	r.st.CurrentAgent = o.InitialAgent
	if o.InitialMessageToUser != "" {
		msg := r.render(o.InitialMessageToUser)
		if err := r.emit(ctx, Text{Agent: o.InitialAgent, Role: "assistant", Content: msg, MessageID: newID("m_")}); err != nil {
			return r.stop(ctx, err)
		}
	}
	return r.askUser(ctx, o.InitialAgent, r.render(o.InitialMessageToUser))
}

// acceptMessage settles what the chat was waiting for and picks who answers
// the user's message.
func (r *run) acceptMessage(ctx context.Context, in *Input) (string, error) {
	r.mergeInputContext(in.Context)
	if in.Text != "" && !r.endsWithUserText(in.Text) {
		// The runtime stores the message before calling Run; should it not
		// have, the model must still see what the user said.
		r.events = append(r.events, StoredEvent{Kind: KindText, Agent: "user", Data: map[string]any{"agent": "user", "role": "user", "content": in.Text}})
	}
	after := r.st.CurrentAgent
	if p := r.st.Pending; p != nil {
		after = p.Agent
		if p.Kind == "ui_tool" {
			// The user typed instead of using the component: the tool call
			// still needs a result for the model.
			if err := r.emit(ctx, ToolResponse{CallID: p.CallID, Name: p.ToolName, Agent: p.Agent, Status: "error",
				Result: map[string]any{"error": "the user replied with a message instead of using the component"}}); err != nil {
				return "", err
			}
			if err := r.emit(ctx, UIToolDone{EventID: p.RequestID, ToolName: p.ToolName, Agent: p.Agent, Status: "dismissed",
				Display: p.Display}); err != nil {
				return "", err
			}
		}
	}
	if r.st.Done || after == "" {
		after = r.wf.Orchestrator.InitialAgent
	}
	r.st.Done = false
	r.st.Pending = nil
	r.st.AutoReplies = map[string]int{}
	return r.afterUser(ctx, after)
}

func uiDoneKind(display string) string {
	if display == workflow.DisplayArtifact {
		return KindUIToolDismiss
	}
	return KindUIToolComplete
}

func (r *run) resumeUITool(ctx context.Context, in *Input) (Result, error) {
	p := r.st.Pending
	if p == nil || p.Kind != "ui_tool" || (in.RequestID != "" && in.RequestID != p.RequestID) {
		err := r.emit(ctx, Error{Message: "no UI tool is waiting for this response", Code: CodeUIToolNotPending})
		if err != nil {
			return r.stop(ctx, err)
		}
		return r.result(StatusAwaitingInput, ReasonUIToolNotPending), nil
	}
	if err := r.begin(ctx, p.Agent); err != nil {
		return r.stop(ctx, err)
	}
	resp := in.Response
	if resp == nil {
		resp = map[string]any{}
	}
	if err := r.emit(ctx, ToolResponse{CallID: p.CallID, Name: p.ToolName, Agent: p.Agent, Status: "ok", Result: resp}); err != nil {
		return r.stop(ctx, err)
	}
	if err := r.emit(ctx, UIToolDone{EventID: p.RequestID, ToolName: p.ToolName, Agent: p.Agent, Status: "completed",
		Display: p.Display}); err != nil {
		return r.stop(ctx, err)
	}
	r.applyUITriggers(p.ToolName, resp)
	r.st.Pending = nil
	return r.loop(ctx, p.Agent)
}

// loop runs agent turns until the workflow needs the user or ends.
func (r *run) loop(ctx context.Context, speaker string) (Result, error) {
	maxTurns := r.wf.Orchestrator.MaxTurns
	for {
		if ctx.Err() != nil {
			return r.stop(ctx, ctx.Err())
		}
		agent, ok := r.wf.Agent(speaker)
		if !ok {
			// State from before the workflow was edited may name an agent
			// that no longer exists: start over at the entry point.
			r.e.opts.Logger.Warn("unknown agent in chat state", "workflow", r.wf.Name, "agent", speaker)
			speaker = r.wf.Orchestrator.InitialAgent
			agent, _ = r.wf.Agent(speaker)
		}
		if r.turns >= maxTurns || (agent.MaxConsecutiveAutoReply > 0 && r.st.AutoReplies[speaker] >= agent.MaxConsecutiveAutoReply) {
			r.st.Done = true
			return r.finish(ctx, StatusCompleted, ReasonMaxTurns)
		}
		r.turns++
		r.st.AutoReplies[speaker]++
		r.st.CurrentAgent = speaker
		out, err := r.turn(ctx, agent)
		if err != nil {
			return r.stop(ctx, err)
		}
		next, res, done, err := r.afterTurn(ctx, speaker, out)
		if done {
			return res, err
		}
		speaker = next
	}
}

// afterTurn decides what follows speaker's finished turn: the next speaker,
// or the run's end (done).
func (r *run) afterTurn(ctx context.Context, speaker string, out turnOutcome) (next string, res Result, done bool, err error) {
	end := func(res Result, err error) (string, Result, bool, error) { return "", res, true, err }
	{
		switch {
		case out.failure != nil:
			return end(r.fail(ctx, out.failure))
		case out.uiPending:
			return end(r.awaiting(ReasonInputRequired))
		case out.terminate:
			r.st.Done = true
			return end(r.finish(ctx, StatusCompleted, ReasonTerminate))
		}
		next := out.next
		if next == "" {
			if next, err = r.route(ctx, speaker); err != nil {
				var le *llm.Error
				if errors.As(err, &le) {
					return end(r.fail(ctx, &failure{code: le.Code, msg: le.Msg, retryable: le.Retryable, reason: ReasonLLMUnavailable}))
				}
				return end(r.stop(ctx, err))
			}
		}
		switch next {
		case workflow.TargetTerminate:
			r.st.Done = true
			return end(r.finish(ctx, StatusCompleted, ReasonTerminate))
		case workflow.TargetUser:
			return end(r.askUser(ctx, speaker, out.lastText))
		}
		return next, Result{}, false, nil
	}
}

func (r *run) askUser(ctx context.Context, agent, prompt string) (Result, error) {
	id := newID("req_")
	if err := r.emit(ctx, InputRequest{RequestID: id, Prompt: prompt, Agent: agent}); err != nil {
		return r.stop(ctx, err)
	}
	r.st.Pending = &Pending{Kind: "input", RequestID: id, Agent: agent, Prompt: prompt}
	return r.awaiting(ReasonInputRequired)
}

// failure is a model or output failure that ends the run but not the chat.
type failure struct {
	code, msg string
	retryable bool
	reason    string
}

func (r *run) fail(ctx context.Context, f *failure) (Result, error) {
	if err := r.emit(ctx, Error{Message: f.msg, Code: f.code, Retryable: f.retryable}); err != nil {
		return r.stop(ctx, err)
	}
	return r.finish(ctx, StatusAwaitingInput, f.reason)
}

// endsWithUserText reports whether the last text of the transcript is the
// user's message text.
func (r *run) endsWithUserText(text string) bool {
	for i := len(r.events) - 1; i >= 0; i-- {
		ev := r.events[i]
		if ev.Kind != KindText {
			continue
		}
		return (str(ev.Data, "role") == "user" || str(ev.Data, "agent") == "user") && str(ev.Data, "content") == text
	}
	return false
}
