package initwiz

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mozaiks/mozaiks/internal/config"
)

// TestRedactorReplacesWholeValuesOnly: a short secret used to be cut out of
// every other value that contained it (issue #15, item 8).
func TestRedactorReplacesWholeValuesOnly(t *testing.T) {
	t.Parallel()
	r := newRedactor(
		map[string]string{envMongoPass: "pw1", EnvAPIKey: "sk-old"},
		map[string]string{envMongoPass: "pw1", EnvAPIKey: "sk-new-key"},
	)
	tests := []struct{ in, wantOld, wantNew string }{
		{"MONGO_URI=mongodb://u:pw1@mongo:27017/db", "MONGO_URI=mongodb://u:<redacted:MONGO_ROOT_PASSWORD>@mongo:27017/db", "MONGO_URI=mongodb://u:<redacted:MONGO_ROOT_PASSWORD>@mongo:27017/db"},
		{"DEFAULT_APP_ID=apw1x", "DEFAULT_APP_ID=apw1x", "DEFAULT_APP_ID=apw1x"},
		{"MOZAIKS_PROJECT=pw1-stack", "MOZAIKS_PROJECT=pw1-stack", "MOZAIKS_PROJECT=pw1-stack"},
		{`  OPENAI_API_KEY: "sk-old"`, `  OPENAI_API_KEY: "<old OPENAI_API_KEY>"`, `  OPENAI_API_KEY: "sk-old"`},
		{`  OPENAI_API_KEY: "sk-new-key"`, `  OPENAI_API_KEY: "sk-new-key"`, `  OPENAI_API_KEY: "<new OPENAI_API_KEY>"`},
		{"OPENAI_API_KEY=sk-new-key", "OPENAI_API_KEY=sk-new-key", "OPENAI_API_KEY=<new OPENAI_API_KEY>"},
	}
	for _, tt := range tests {
		if got := r.old.Replace(tt.in); got != tt.wantOld {
			t.Errorf("old side of %q = %q, want %q", tt.in, got, tt.wantOld)
		}
		if got := r.new.Replace(tt.in); got != tt.wantNew {
			t.Errorf("new side of %q = %q, want %q", tt.in, got, tt.wantNew)
		}
	}
	if strings.Contains(r.new.Replace("x pw1 y"), "pw1") {
		t.Error("a secret standing alone is not redacted")
	}
}

// TestRerunOverAnOlderInitKeepsTheProjectName: a .env written before init
// named the project keeps docker compose's name for it (the directory's),
// so the re-run's compose files address the same containers and volumes.
func TestRerunOverAnOlderInitKeepsTheProjectName(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "Acme_Prod")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	old := "MOZAIKS_DEPLOYMENT=dev\nMOZAIKS_DATABASE=embedded\nMOZAIKS_PROXY=none\nOPENAI_API_KEY=sk-test-old-0001\n"
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(t, context.Background(), Options{Dir: dir, NonInteractive: true, Force: true, SkipChecks: true})
	if r.e != nil {
		t.Fatalf("%v\n%s", r.e, r.err)
	}
	env, err := config.ReadDotEnv(filepath.Join(dir, ".env"))
	if err != nil {
		t.Fatal(err)
	}
	if env[EnvProject] != "acme_prod" {
		t.Errorf("MOZAIKS_PROJECT = %q, want the name compose gave the directory (acme_prod)", env[EnvProject])
	}
	// A fresh directory gets the default.
	fresh := t.TempDir()
	r = run(t, context.Background(), Options{Dir: fresh, NonInteractive: true, SkipChecks: true,
		Flags: map[string]string{EnvDeployment: "dev", EnvAPIKey: "sk-test-new-0002"}})
	if r.e != nil {
		t.Fatalf("%v\n%s", r.e, r.err)
	}
	if env, _ := config.ReadDotEnv(filepath.Join(fresh, ".env")); env[EnvProject] != DefaultProject {
		t.Errorf("fresh MOZAIKS_PROJECT = %q, want %s", env[EnvProject], DefaultProject)
	}
}
