package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/mozaiks/mozaiks/internal/llm"
	"github.com/mozaiks/mozaiks/internal/workflow"
)

const (
	maxToolRounds         = 10 // model calls per turn while it keeps calling tools
	maxStructuredAttempts = 3  // first try plus retries for invalid structured output
)

// turnOutcome is how an agent's turn ended.
type turnOutcome struct {
	lastText  string
	next      string // forced by a handoff tool; "" routes by handoffs/pattern
	terminate bool
	uiPending bool
	failure   *failure
}

func (r *run) turn(ctx context.Context, agent *workflow.Agent) (turnOutcome, error) {
	if err := r.emit(ctx, SelectSpeaker{Agent: agent.Name}); err != nil {
		return turnOutcome{}, err
	}
	var out turnOutcome
	for round := 0; round < maxToolRounds; round++ {
		msgID := newID("m_")
		resp, structured, f, err := r.reply(ctx, agent, msgID)
		if err != nil || f != nil {
			out.failure = f
			return out, err
		}
		if strings.TrimSpace(resp.Content) == "" && len(resp.ToolCalls) == 0 {
			// Nothing to show or store: an empty reply is the model
			// failing, not an empty message.
			out.failure = &failure{code: CodeEmptyReply, msg: agent.Name + "'s model returned an empty reply", retryable: true,
				reason: ReasonLLMUnavailable}
			return out, nil
		}
		if resp.Content != "" || len(resp.ToolCalls) == 0 {
			if err := r.emit(ctx, Text{Agent: agent.Name, Role: "assistant", Content: resp.Content, MessageID: msgID,
				Structured: structured}); err != nil {
				return out, err
			}
			out.lastText = resp.Content
			r.applyTextTriggers(agent.Name, resp.Content)
		}
		if len(resp.ToolCalls) == 0 {
			return out, nil
		}
		if err := r.runTools(ctx, agent, msgID, resp.ToolCalls, &out); err != nil {
			return out, err
		}
		if out.uiPending || out.terminate || out.next != "" {
			return out, nil
		}
	}
	return out, nil
}

// request builds the model request for an agent from the conversation so far.
func (r *run) request(agent *workflow.Agent) llm.Request {
	recent := RecentHistory(r.events, r.e.opts.HistoryMessages)
	n := 0 // at most a message per event that adds to the history
	for i := range recent {
		if inHistory(recent[i].Kind) {
			n++
		}
	}
	msgs := make([]llm.Message, 1, 2+n)
	msgs[0] = llm.Message{Role: "system", Content: r.systemPrompt(agent)}
	o := r.wf.Orchestrator
	if o.StartupMode == workflow.StartupAgentDriven && o.InitialMessage != "" {
		msgs = append(msgs, llm.Message{Role: "user", Content: r.render(o.InitialMessage)})
	}
	msgs = historyInto(msgs, recent)
	req := llm.Request{
		Model:       firstNonEmpty(agent.Model, r.e.opts.DefaultModel),
		Messages:    msgs,
		Temperature: agent.Temperature,
		MaxTokens:   agent.MaxTokens,
	}
	for _, t := range r.wf.ToolsFor(agent.Name) {
		req.Tools = append(req.Tools, llm.Tool{Name: t.Name, Description: t.Description, Parameters: t.Schema()})
	}
	if schema := r.wf.ResponseSchema(agent.Name); schema != nil {
		req.ResponseFormat = &llm.ResponseFormat{Name: r.wf.ResponseModel(agent.Name), Schema: schema, Strict: true}
	}
	return req
}

// reply gets one reply from the agent's model, streaming it as print events,
// and for agents with a structured-output model checks it against the schema,
// asking again a bounded number of times.
func (r *run) reply(ctx context.Context, agent *workflow.Agent, msgID string) (*llm.Response, map[string]any, *failure, error) {
	req := r.request(agent)
	schema := r.wf.ResponseSchema(agent.Name)
	var problems []string
	for attempt := 1; attempt <= maxStructuredAttempts; attempt++ {
		if attempt > 1 {
			if err := r.emit(ctx, Print{Agent: agent.Name, MessageID: msgID, Restart: true}); err != nil {
				return nil, nil, nil, err
			}
		}
		resp, err := r.call(ctx, agent.Name, req, msgID)
		if err != nil {
			f, err := r.llmFailure(ctx, err)
			return nil, nil, f, err
		}
		if schema == nil || len(resp.ToolCalls) > 0 {
			return resp, nil, nil, nil
		}
		var v any
		if err := json.Unmarshal([]byte(resp.Content), &v); err != nil {
			problems = []string{"the reply is not JSON: " + err.Error()}
		} else if problems = workflow.ValidateJSON(schema, v); len(problems) == 0 {
			obj, _ := v.(map[string]any)
			return resp, obj, nil, nil
		}
		req.Messages = append(req.Messages,
			llm.Message{Role: "assistant", Name: agent.Name, Content: resp.Content},
			llm.Message{Role: "user", Content: "Your reply does not match the required JSON schema: " + strings.Join(problems, "; ") + ". Reply again with only a JSON object that matches it."})
	}
	return nil, nil, &failure{
		code:   CodeStructuredOutputInvalid,
		msg:    fmt.Sprintf("%s did not produce valid structured output after %d attempts: %s", agent.Name, maxStructuredAttempts, strings.Join(problems, "; ")),
		reason: ReasonStructuredOutput,
	}, nil
}

// llmFailure maps a model error to a run failure; cancellation and sink
// errors stay errors.
func (r *run) llmFailure(ctx context.Context, err error) (*failure, error) {
	var se *errSink
	if ctx.Err() != nil || errors.As(err, &se) {
		return nil, err
	}
	f := &failure{code: llm.CodeUnavailable, msg: "the model is unavailable", retryable: true, reason: ReasonLLMUnavailable}
	var le *llm.Error
	if errors.As(err, &le) {
		f.code, f.msg, f.retryable = le.Code, le.Msg, le.Retryable
	}
	r.e.opts.Logger.Warn("llm call failed", "workflow", r.wf.Name, "chat_id", r.req.ChatID, "err", err)
	return f, nil
}

// call runs one streamed completion and reports its usage. msgID "" means
// not streamed (judging conditions, picking speakers).
func (r *run) call(ctx context.Context, agent string, req llm.Request, msgID string) (*llm.Response, error) {
	var onChunk func(llm.Chunk)
	var sinkErr error
	callCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if msgID != "" {
		onChunk = func(c llm.Chunk) {
			if sinkErr != nil {
				return
			}
			if err := r.emit(ctx, Print{Agent: agent, MessageID: msgID, Content: c.Content, Restart: c.Restart}); err != nil {
				sinkErr = err
				cancel()
			}
		}
	}
	if msgID != "" {
		req.OnStatus = func(st llm.Status) {
			if sinkErr != nil {
				return
			}
			if err := r.emit(ctx, Status{Agent: agent, MessageID: msgID, State: st.Kind, Attempt: st.Attempt, Waited: st.Waited,
				RetryIn: st.RetryIn, Cause: st.Cause}); err != nil {
				sinkErr = err
				cancel()
			}
		}
	}
	if r.e.opts.LLM == nil {
		return nil, &llm.Error{Code: llm.CodeNotConfigured, Msg: "no model client is configured"}
	}
	resp, err := r.e.opts.LLM.Stream(callCtx, req, onChunk)
	if sinkErr != nil {
		return nil, sinkErr
	}
	if err != nil {
		return nil, err
	}
	r.tokens += resp.Usage.TotalTokens
	if err := r.emit(ctx, Usage{AppID: r.req.AppID, UserID: r.req.UserID, ChatID: r.req.ChatID, Workflow: r.wf.Name,
		Agent: agent, Model: firstNonEmpty(resp.Model, req.Model), PromptTokens: resp.Usage.PromptTokens,
		CompletionTokens: resp.Usage.CompletionTokens, TotalTokens: resp.Usage.TotalTokens, Duration: resp.Duration}); err != nil {
		return nil, err
	}
	return resp, nil
}
