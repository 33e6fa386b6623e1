package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/mozaiks/mozaiks/internal/llm"
	"github.com/mozaiks/mozaiks/internal/workflow"
)

// runTools executes the tool calls of one reply. Server-side tools run first
// so that a UI tool, which pauses the run, is the last call left open.
func (r *run) runTools(ctx context.Context, agent *workflow.Agent, msgID string, calls []llm.ToolCall, out *turnOutcome) error {
	tools := map[string]*workflow.Tool{}
	for _, t := range r.wf.ToolsFor(agent.Name) {
		tools[t.Name] = t
	}
	var ui []llm.ToolCall
	for _, c := range calls {
		if t := tools[c.Name]; t != nil && t.Kind == workflow.ToolUI {
			ui = append(ui, c)
			continue
		}
		args := parseArgs(c.Arguments)
		if err := r.emit(ctx, ToolCall{CallID: c.ID, Name: c.Name, Agent: agent.Name, Arguments: args, MessageID: msgID}); err != nil {
			return err
		}
		status, result := r.execute(ctx, agent, tools[c.Name], c, out)
		if err := r.emit(ctx, ToolResponse{CallID: c.ID, Name: c.Name, Agent: agent.Name, Status: status, Result: result}); err != nil {
			return err
		}
	}
	for i, c := range ui {
		args := parseArgs(c.Arguments)
		t := tools[c.Name]
		if i > 0 || out.terminate || out.next != "" {
			if err := r.emit(ctx, ToolCall{CallID: c.ID, Name: c.Name, Agent: agent.Name, Arguments: args, MessageID: msgID}); err != nil {
				return err
			}
			if err := r.emit(ctx, ToolResponse{CallID: c.ID, Name: c.Name, Agent: agent.Name, Status: "error",
				Result: map[string]any{"error": "only one UI tool can wait for the user at a time; call it again later"}}); err != nil {
				return err
			}
			continue
		}
		if problem := checkArgs(t, c.Arguments); problem != "" {
			if err := r.emit(ctx, ToolCall{CallID: c.ID, Name: c.Name, Agent: agent.Name, Arguments: args, MessageID: msgID}); err != nil {
				return err
			}
			if err := r.emit(ctx, ToolResponse{CallID: c.ID, Name: c.Name, Agent: agent.Name, Status: "error",
				Result: map[string]any{"error": problem}}); err != nil {
				return err
			}
			continue
		}
		eventID := newID("ui_")
		payload := args
		if m, ok := args.(map[string]any); ok && t.ComponentWorkflow != "" { // which ChatUI folder has the component
			payload = maps.Clone(m)
			payload.(map[string]any)["workflow"] = t.ComponentWorkflow
		}
		if err := r.emit(ctx, ToolCall{CallID: c.ID, Name: c.Name, Agent: agent.Name, Arguments: args, MessageID: msgID,
			UI: &UICall{EventID: eventID, Component: t.Component, Display: t.Display, Payload: payload}}); err != nil {
			return err
		}
		r.st.Pending = &Pending{Kind: "ui_tool", RequestID: eventID, Agent: agent.Name, CallID: c.ID, ToolName: c.Name, Display: t.Display}
		out.uiPending = true
	}
	return nil
}

func parseArgs(s string) any {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil || v == nil {
		if strings.TrimSpace(s) == "" {
			return map[string]any{}
		}
		return s // kept as text so the history replays what the model sent
	}
	return v
}

// checkArgs validates a call's arguments against the tool's schema, so the
// model gets a precise complaint it can correct instead of a failed request.
func checkArgs(t *workflow.Tool, args string) string {
	var v any
	if strings.TrimSpace(args) == "" {
		args = "{}"
	}
	if err := json.Unmarshal([]byte(args), &v); err != nil {
		return "arguments are not valid JSON: " + err.Error()
	}
	if errs := workflow.ValidateJSON(t.Schema(), v); len(errs) > 0 {
		return "invalid arguments: " + strings.Join(errs, "; ")
	}
	return ""
}

// execute runs a server-side tool and returns the status and result the
// model sees. Failures are results, not errors: the agent decides what next.
func (r *run) execute(ctx context.Context, agent *workflow.Agent, t *workflow.Tool, c llm.ToolCall, out *turnOutcome) (string, any) {
	if t == nil {
		return "error", map[string]any{"error": fmt.Sprintf("unknown tool %q", c.Name)}
	}
	if problem := checkArgs(t, c.Arguments); problem != "" {
		return "error", map[string]any{"error": problem}
	}
	var args map[string]any
	_ = json.Unmarshal([]byte(firstNonEmpty(strings.TrimSpace(c.Arguments), "{}")), &args)
	switch t.Kind {
	case workflow.ToolHTTP:
		return r.httpTool(ctx, t, c.Arguments)
	case workflow.ToolBuiltin:
		return r.builtin(agent, t, args, out)
	}
	return "error", map[string]any{"error": fmt.Sprintf("tool %q cannot run on the server", c.Name)}
}

func (r *run) builtin(agent *workflow.Agent, t *workflow.Tool, args map[string]any, out *turnOutcome) (string, any) {
	switch t.Builtin {
	case workflow.BuiltinSetContext:
		name := t.Variable
		if name == "" {
			name, _ = args["name"].(string)
		}
		cv, ok := r.wf.ContextVar(name)
		if !ok || cv.Source.Type != workflow.ContextSourceState {
			return "error", map[string]any{"error": fmt.Sprintf("%q is not a state context variable", name)}
		}
		r.st.Context[name] = args["value"]
		return "ok", map[string]any{"name": name, "value": args["value"]}
	case workflow.BuiltinEnd, workflow.BuiltinTerminate:
		out.terminate = true
		return "ok", map[string]any{"status": "the conversation will end"}
	case workflow.BuiltinHandoff:
		target, _ := args["agent"].(string)
		allowed := t.Targets
		if len(allowed) == 0 {
			allowed = r.wf.AgentNames()
		}
		if indexOf(allowed, target) < 0 {
			return "error", map[string]any{"error": fmt.Sprintf("cannot hand off to %q: want one of %s", target, strings.Join(allowed, ", "))}
		}
		out.next = target
		return "ok", map[string]any{"handoff": target}
	}
	return "error", map[string]any{"error": "unknown builtin " + t.Builtin}
}

// httpTool POSTs the arguments to the tool's URL. Timeouts, non-2xx statuses
// and oversized responses come back as error results the model sees.
func (r *run) httpTool(ctx context.Context, t *workflow.Tool, args string) (string, any) {
	timeout := time.Duration(t.TimeoutMS) * time.Millisecond
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader([]byte(firstNonEmpty(strings.TrimSpace(args), "{}"))))
	if err != nil {
		return "error", map[string]any{"error": "build request: " + err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	for h, env := range t.Headers {
		if v := r.e.opts.Getenv(env); v != "" {
			req.Header.Set(h, v)
		} else {
			r.e.opts.Logger.Warn("http tool header env var is empty", "tool", t.Name, "header", h, "env", env)
		}
	}
	resp, err := r.e.opts.HTTPClient.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return "error", map[string]any{"error": fmt.Sprintf("the tool timed out after %s", timeout)}
		}
		// never echo the URL: it may carry a secret in its query
		return "error", map[string]any{"error": "the tool could not be reached"}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, t.MaxResponseBytes+1))
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return "error", map[string]any{"error": fmt.Sprintf("the tool timed out after %s", timeout)}
		}
		return "error", map[string]any{"error": "read response: " + err.Error()}
	}
	if int64(len(body)) > t.MaxResponseBytes {
		return "error", map[string]any{"error": fmt.Sprintf("the tool's response is larger than %d bytes", t.MaxResponseBytes)}
	}
	var result any = string(body)
	var parsed any
	if json.Unmarshal(body, &parsed) == nil {
		result = parsed
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		snippet := string(body)
		if len(snippet) > 500 {
			snippet = snippet[:500]
		}
		return "error", map[string]any{"error": fmt.Sprintf("the tool returned HTTP %d", resp.StatusCode), "body": snippet}
	}
	return "ok", result
}
