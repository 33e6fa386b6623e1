package llm

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestEcho(t *testing.T) {
	t.Parallel()
	c := NewEcho()
	if c.Provider() != "echo" || !c.Configured() {
		t.Fatalf("provider %q configured %v", c.Provider(), c.Configured())
	}
	models, err := c.Models(context.Background())
	if err != nil || len(models) != 1 || models[0] != "echo" {
		t.Errorf("models %v %v", models, err)
	}
	tests := []struct {
		name   string
		req    Request
		chunks []string
	}{
		{"last user message", Request{
			Messages: []Message{{Role: "user", Content: "first"}, {Role: "assistant", Content: "a"}, {Role: "user", Content: "hello  world"}},
			// Tools are offered but echo only ever answers text.
			Tools: []Tool{{Name: "f", Parameters: json.RawMessage(`{"type":"object"}`)}},
		}, []string{"[echo] ", "You ", "said: ", "hello  ", "world"}},
		{"no user message", Request{Messages: []Message{{Role: "system", Content: "s"}}},
			strings.SplitAfter("[echo] Hello! This is the offline echo model: set OPENAI_API_KEY to talk to a real one.", " ")},
	}
	for _, tt := range tests {
		var runs [2][]string
		var res [2]*Response
		for i := range runs {
			var rec recorder
			r, err := c.Stream(context.Background(), tt.req, rec.on)
			if err != nil {
				t.Fatal(err)
			}
			runs[i], res[i] = rec.texts(), r
		}
		if strings.Join(runs[0], "|") != strings.Join(tt.chunks, "|") {
			t.Errorf("%s: chunks %q, want %q", tt.name, runs[0], tt.chunks)
		}
		if strings.Join(runs[0], "|") != strings.Join(runs[1], "|") || res[0].Content != res[1].Content || res[0].Usage != res[1].Usage {
			t.Errorf("%s: not deterministic: %q vs %q", tt.name, runs[0], runs[1])
		}
		r := res[0]
		if r.Model != "echo" || r.Content != strings.Join(tt.chunks, "") || r.FinishReason != "stop" || len(r.ToolCalls) != 0 || r.Attempts != 1 {
			t.Errorf("%s: response %+v", tt.name, r)
		}
		if u := r.Usage; u.CompletionTokens != len(tt.chunks) || u.PromptTokens <= 0 || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
			t.Errorf("%s: usage %+v", tt.name, u)
		}
	}
}

func TestEchoHonoursCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := NewEcho().Stream(ctx, Request{Messages: []Message{{Role: "user", Content: "x"}}}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v", err)
	}
}
