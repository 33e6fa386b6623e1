package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestPrecedence(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write(".env", "PORT=7002\nDEFAULT_APP_ID=from-dotenv\nLOG_LEVEL=warn\n")
	file := write("mozaiks.yaml", "port: 7001\ndefault_app_id: from-file\nlog_level: error\ndefault_llm_model: file-model\ncors_origins: [\"https://a.example.com\", \"https://b.example.com:443/\"]\n")
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	BindFlags(fs)
	if err := fs.Parse([]string{"--port", "7004"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(LoadOptions{Flags: fs, ConfigFile: file, Dir: dir, Environ: []string{"PORT=7003", "DEFAULT_APP_ID=from-env"}})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		key, got, want string
		src            Source
	}{
		{"port", cfg.Addr, ":7004", SourceFlag},
		{"default_app_id", cfg.DefaultAppID, "from-env", SourceEnv},
		{"log_level", cfg.LogLevel, "warn", SourceDotEnv},
		{"default_llm_model", cfg.DefaultLLMModel, "file-model", SourceFile},
		{"data_dir", cfg.DataDir, "./data", SourceDefault},
		{"cors_origins", strings.Join(cfg.CORSOrigins, ","), "https://a.example.com,https://b.example.com", SourceFile},
	}
	for _, c := range checks {
		if c.got != c.want || cfg.Sources[c.key] != c.src {
			t.Errorf("%s = %q from %s, want %q from %s", c.key, c.got, cfg.Sources[c.key], c.want, c.src)
		}
	}
}

func TestInvalidValuesNameSettingAndSource(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  string
		want string
	}{
		{"PORT=abc", `PORT="abc" (from environment)`},
		{"MONGO_URI=postgres://x", `MONGO_URI="(redacted)"`},
		{"LLM_PROVIDER=gpt", "LLM_PROVIDER"},
		{"CORS_ORIGINS=example.com", "CORS_ORIGINS"},
		{"LOG_FORMAT=xml", "LOG_FORMAT"},
		{"AUTH_ENABLED=true", "AUTH_JWT_SECRET or AUTH_ISSUER"},
		{"OPENAI_BASE_URL=localhost:11434", "OPENAI_BASE_URL"},
		{"DEFAULT_APP_ID=a b", "DEFAULT_APP_ID"},
		{"MOZAIKS_SHUTDOWN_TIMEOUT=soon", "MOZAIKS_SHUTDOWN_TIMEOUT"},
		{"LLM_FIRST_BYTE_TIMEOUT=30", `LLM_FIRST_BYTE_TIMEOUT="30" (from environment)`},
		{"LLM_IDLE_TIMEOUT=0s", "LLM_IDLE_TIMEOUT"},
		{"LLM_TIMEOUT=-1m", "LLM_TIMEOUT"},
		{"STREAM_CHUNK_INTERVAL=15", "STREAM_CHUNK_INTERVAL"},
		{"STREAM_CHUNK_INTERVAL=-1ms", "STREAM_CHUNK_INTERVAL"},
	} {
		_, err := Load(LoadOptions{Dir: t.TempDir(), Environ: []string{tc.env}})
		var ie *InvalidError
		if !errors.As(err, &ie) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want an InvalidError mentioning %q", tc.env, err, tc.want)
		}
	}
}

func TestOriginsAndIDs(t *testing.T) {
	t.Parallel()
	got, err := ParseOrigins(" https://App.Example.com:443/ , http://localhost:3000,*")
	if err != nil || strings.Join(got, " ") != "https://app.example.com http://localhost:3000 *" {
		t.Fatalf("ParseOrigins = %v, %v", got, err)
	}
	for _, bad := range []string{"example.com", "ftp://x", "https://x/path", "https://u:p@x"} {
		if _, err := NormalizeOrigin(bad); err == nil {
			t.Errorf("NormalizeOrigin(%q) accepted", bad)
		}
	}
	for id, ok := range map[string]bool{"chat_1.a:b@c-d": true, "": false, "..": false, "../x": false, "a b": false,
		strings.Repeat("a", 128): true, strings.Repeat("a", 129): false, "ü": false} {
		if ValidID(id) != ok {
			t.Errorf("ValidID(%q) = %v", id, !ok)
		}
	}
	if DatabaseName("mongodb://h:27017/Custom?x=1") != "Custom" || DatabaseName("mongodb://h:27017") != "MozaiksAI" {
		t.Error("DatabaseName")
	}
	if r := RedactURI("mongodb://user:s3cret@h/db"); strings.Contains(r, "s3cret") {
		t.Errorf("RedactURI leaked: %s", r)
	}
}

// ChatUI's dev servers are opened as localhost or 127.0.0.1 alike; both forms
// are allowed by default, and the Ask-mode settings have their defaults.
func TestChatUIDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := Load(LoadOptions{Dir: t.TempDir(), Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []string{"http://localhost:3000", "http://127.0.0.1:3000", "http://localhost:5173", "http://127.0.0.1:5173",
		"http://localhost:8000", "http://127.0.0.1:8000"} {
		if !slices.Contains(cfg.CORSOrigins, o) {
			t.Errorf("default CORS origins %v lack %s", cfg.CORSOrigins, o)
		}
	}
	if cfg.DefaultWorkflow != "assistant" || cfg.GeneralWorkflow != "assistant" || cfg.UploadMaxBytes != 5<<20 {
		t.Errorf("defaults: workflow %q general %q upload %d", cfg.DefaultWorkflow, cfg.GeneralWorkflow, cfg.UploadMaxBytes)
	}
	if _, err := Load(LoadOptions{Dir: t.TempDir(), Environ: []string{"DEFAULT_WORKFLOW=no/slash"}}); err == nil ||
		!strings.Contains(err.Error(), "DEFAULT_WORKFLOW") {
		t.Errorf("bad DEFAULT_WORKFLOW accepted or error does not name it: %v", err)
	}
}
