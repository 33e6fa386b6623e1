package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestLLMTimeouts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "mozaiks.yaml")
	if err := os.WriteFile(file, []byte("llm_idle_timeout: 45s\nllm_timeout: 10m\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	BindFlags(fs, "llm_first_byte_timeout", "llm_idle_timeout", "llm_timeout")
	if err := fs.Parse([]string{"--llm-timeout", "2m"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		flags   *pflag.FlagSet
		file    string
		environ []string
		want    [3]time.Duration
		src     [3]Source
	}{
		{"defaults", nil, "", []string{}, [3]time.Duration{30 * time.Second, 30 * time.Second, 5 * time.Minute},
			[3]Source{SourceDefault, SourceDefault, SourceDefault}},
		{"flag > env > file", fs, file, []string{"LLM_FIRST_BYTE_TIMEOUT=10s", "LLM_TIMEOUT=1m"},
			[3]time.Duration{10 * time.Second, 45 * time.Second, 2 * time.Minute},
			[3]Source{SourceEnv, SourceFile, SourceFlag}},
	}
	for _, tt := range tests {
		cfg, err := Load(LoadOptions{Flags: tt.flags, ConfigFile: tt.file, Dir: dir, Environ: tt.environ})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		got := [3]time.Duration{cfg.LLMFirstByteTimeout, cfg.LLMIdleTimeout, cfg.LLMTimeout}
		src := [3]Source{cfg.Sources["llm_first_byte_timeout"], cfg.Sources["llm_idle_timeout"], cfg.Sources["llm_timeout"]}
		if got != tt.want || src != tt.src {
			t.Errorf("%s: timeouts %v from %v, want %v from %v", tt.name, got, src, tt.want, tt.src)
		}
	}
}
