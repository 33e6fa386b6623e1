package app

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/config"
	"github.com/mozaiks/mozaiks/internal/llm"
	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
)

// The model timeouts reach the client: a silent model fails at the
// configured first-byte timeout, an endless stream at the call timeout.
func TestLLMClientTakesTheTimeouts(t *testing.T) {
	t.Parallel()
	srv := llmtest.New(t)
	srv.Enqueue(
		llmtest.Reply{Text: "never", FirstByteDelay: time.Hour},
		llmtest.Reply{Text: strings.Repeat("slow ", 1000), TokenDelay: 10 * time.Millisecond},
	)
	cfg, err := config.Load(config.LoadOptions{Dir: t.TempDir(), Environ: []string{
		"OPENAI_BASE_URL=" + srv.URL(), "LLM_FIRST_BYTE_TIMEOUT=150ms", "LLM_IDLE_TIMEOUT=1h", "LLM_TIMEOUT=2s",
	}})
	if err != nil {
		t.Fatal(err)
	}
	client, err := LLMClient(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.Stream(context.Background(), llm.Request{Messages: []llm.Message{{Role: "user", Content: "hi"}}}, nil)
	var e *llm.Error
	if !errors.As(err, &e) || e.Code != llm.CodeUnavailable || !strings.Contains(e.Msg, "no complete reply within 2s, 2 attempts") {
		t.Errorf("error %v, want the second attempt cut by the 2s call timeout", err)
	}
	// Two requests: the silent one was given up at the first-byte timeout.
	if n := len(srv.ChatRequests()); n != 2 {
		t.Errorf("%d requests", n)
	}
}
