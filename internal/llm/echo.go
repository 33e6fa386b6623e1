package llm

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"
)

// EchoModel is the model name the echo provider reports, so transcripts and
// usage records show plainly that no real model answered.
const EchoModel = "echo"

type echoClient struct{}

// NewEcho returns the offline stand-in selected by LLM_PROVIDER=echo: it
// answers "[echo] You said: <last user message>" word by word, the same way
// every time, and never calls a tool. For demos and smoke tests only.
func NewEcho() Client { return echoClient{} }

func (echoClient) Provider() string { return ProviderEcho }
func (echoClient) Configured() bool { return true }

func (echoClient) Models(context.Context) ([]string, error) { return []string{EchoModel}, nil }

func (echoClient) Stream(ctx context.Context, req Request, onChunk func(Chunk)) (*Response, error) {
	start := time.Now()
	reply := "[echo] You said: " + lastUserMessage(req.Messages)
	if strings.TrimSpace(lastUserMessage(req.Messages)) == "" {
		reply = "[echo] Hello! This is the offline echo model: set OPENAI_API_KEY to talk to a real one."
	}
	words := splitWords(reply)
	var b strings.Builder
	for _, w := range words {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("echo: %w", err)
		}
		b.WriteString(w)
		if onChunk != nil {
			onChunk(Chunk{Content: w})
		}
	}
	prompt := 0
	for _, m := range req.Messages {
		// A few tokens of framing per message, as real chat models count.
		prompt += len(strings.Fields(m.Content)) + 3
	}
	return &Response{
		Model:        EchoModel,
		Content:      b.String(),
		FinishReason: "stop",
		Usage:        Usage{PromptTokens: prompt, CompletionTokens: len(words), TotalTokens: prompt + len(words)},
		Duration:     time.Since(start),
		Attempts:     1,
	}, nil
}

func lastUserMessage(msgs []Message) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == "user" {
			return msgs[i].Content
		}
	}
	return ""
}

// splitWords cuts s into words that keep their trailing whitespace, so the
// pieces join back to s exactly.
func splitWords(s string) []string {
	var out []string
	start, prevSpace := 0, false
	for i, r := range s {
		sp := unicode.IsSpace(r)
		if !sp && prevSpace && i > start {
			out = append(out, s[start:i])
			start = i
		}
		prevSpace = sp
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}
