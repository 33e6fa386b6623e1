package llmtest

import (
	"encoding/json"
	"fmt"
	"strings"
)

// wireRequest is the chat completion request body as OpenAI documents it.
type wireRequest struct {
	Model    string `json:"model"`
	Messages []struct {
		Role      string          `json:"role"`
		Content   json.RawMessage `json:"content"`
		Name      string          `json:"name"`
		ToolCalls []struct {
			ID       string `json:"id"`
			Function struct {
				Name      string `json:"name"`
				Arguments string `json:"arguments"`
			} `json:"function"`
		} `json:"tool_calls"`
		ToolCallID string `json:"tool_call_id"`
	} `json:"messages"`
	Tools []struct {
		Type     string `json:"type"`
		Function struct {
			Name        string          `json:"name"`
			Description string          `json:"description"`
			Parameters  json.RawMessage `json:"parameters"`
		} `json:"function"`
	} `json:"tools"`
	ToolChoice          json.RawMessage `json:"tool_choice"`
	Temperature         *float64        `json:"temperature"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	ResponseFormat      *struct {
		Type       string `json:"type"`
		JSONSchema *struct {
			Name   string          `json:"name"`
			Schema json.RawMessage `json:"schema"`
			Strict bool            `json:"strict"`
		} `json:"json_schema"`
	} `json:"response_format"`
	Stream        bool `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

// parseChatRequest fills the chat fields of r from a request body, and says
// what is wrong with it in the words OpenAI would use.
func parseChatRequest(body []byte, r *Request) error {
	var w wireRequest
	if err := json.Unmarshal(body, &w); err != nil {
		//lint:ignore ST1005 OpenAI's own wording: it is the body of the 400 the fake answers
		return fmt.Errorf("We could not parse the JSON body of your request. (%v)", err)
	}
	if w.Model == "" {
		return fmt.Errorf("you must provide a model parameter")
	}
	if len(w.Messages) == 0 {
		return fmt.Errorf("'messages' must contain at least one message")
	}
	r.Model = w.Model
	for i, m := range w.Messages {
		if m.Role == "" {
			return fmt.Errorf("messages[%d]: missing required parameter 'role'", i)
		}
		text, err := contentText(m.Content)
		if err != nil {
			return fmt.Errorf("messages[%d].content: %v", i, err)
		}
		msg := Message{Role: m.Role, Content: text, Name: m.Name, ToolCallID: m.ToolCallID}
		for _, tc := range m.ToolCalls {
			msg.ToolCalls = append(msg.ToolCalls, ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
		}
		r.Messages = append(r.Messages, msg)
	}
	for _, t := range w.Tools {
		r.Tools = append(r.Tools, Tool{Type: t.Type, Name: t.Function.Name, Description: t.Function.Description, Parameters: t.Function.Parameters})
	}
	r.ToolChoice = w.ToolChoice
	r.Temperature = w.Temperature
	r.MaxTokens = w.MaxTokens
	if w.MaxCompletionTokens != nil {
		r.MaxTokens = w.MaxCompletionTokens
	}
	if rf := w.ResponseFormat; rf != nil {
		r.ResponseFormat = &ResponseFormat{Type: rf.Type}
		if rf.JSONSchema != nil {
			r.ResponseFormat.Name = rf.JSONSchema.Name
			r.ResponseFormat.Schema = rf.JSONSchema.Schema
			r.ResponseFormat.Strict = rf.JSONSchema.Strict
		}
		if rf.Type == "json_schema" && rf.JSONSchema == nil {
			//lint:ignore ST1005 OpenAI's own wording: it is the body of the 400 the fake answers
			return fmt.Errorf("Missing required parameter: 'response_format.json_schema'.")
		}
	}
	r.Stream = w.Stream
	r.IncludeUsage = w.StreamOptions != nil && w.StreamOptions.IncludeUsage
	if w.StreamOptions != nil && !w.Stream {
		//lint:ignore ST1005 OpenAI's own wording: it is the body of the 400 the fake answers
		return fmt.Errorf("The 'stream_options' parameter is only allowed when 'stream' is enabled.")
	}
	return nil
}

// contentText accepts the string form and the array-of-parts form of
// message content.
func contentText(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", fmt.Errorf("want a string or an array of content parts")
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type == "text" {
			b.WriteString(p.Text)
		}
	}
	return b.String(), nil
}
