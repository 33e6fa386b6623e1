package cli

import (
	"context"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/config"
)

func TestServeLLMTimeoutFlags(t *testing.T) {
	t.Parallel()
	var got *ServeOptions
	cmd := NewCmdServe(IO{}, func(_ context.Context, o *ServeOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"--llm-first-byte-timeout", "7s", "--llm-idle-timeout", "8s", "--llm-timeout", "9m"})
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.LoadOptions{Flags: got.Flags, Dir: t.TempDir(), Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LLMFirstByteTimeout != 7*time.Second || cfg.LLMIdleTimeout != 8*time.Second || cfg.LLMTimeout != 9*time.Minute {
		t.Errorf("timeouts %s %s %s", cfg.LLMFirstByteTimeout, cfg.LLMIdleTimeout, cfg.LLMTimeout)
	}
}
