//go:build !mozaiks_runtime

package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mozaiks/mozaiks/internal/config"
	"github.com/mozaiks/mozaiks/internal/uerr"
)

func TestInitFlagsBecomeAnswers(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		want map[string]string
		opts InitOptions
	}{
		{args: nil, want: map[string]string{}, opts: InitOptions{Dir: "."}},
		{
			args: []string{"--dir", "/srv/mz", "--non-interactive", "--force", "--skip-checks", "--deployment", "prod", "--database", "external",
				"--mongo-uri", "mongodb://h/db", "--openai-api-key", "sk-x", "--openai-base-url", "http://l/v1", "--model", "m",
				"--public-url", "https://a.example.com", "--cors-origins", "https://b.example.com", "--app-id", "acme", "--proxy", "nginx", "--k8s"},
			want: map[string]string{"MOZAIKS_DEPLOYMENT": "prod", "MOZAIKS_DATABASE": "external", "MONGO_URI": "mongodb://h/db",
				"OPENAI_API_KEY": "sk-x", "OPENAI_BASE_URL": "http://l/v1", "DEFAULT_LLM_MODEL": "m", "MOZAIKS_PUBLIC_URL": "https://a.example.com",
				"CORS_ORIGINS": "https://b.example.com", "DEFAULT_APP_ID": "acme", "MOZAIKS_PROXY": "nginx", "MOZAIKS_K8S": "true"},
			opts: InitOptions{Dir: "/srv/mz", NonInteractive: true, Force: true, SkipChecks: true},
		},
		// An explicit empty or false flag is still an answer: it overrides the .env.
		{args: []string{"--openai-base-url=", "--k8s=false"}, want: map[string]string{"OPENAI_BASE_URL": "", "MOZAIKS_K8S": "false"}, opts: InitOptions{Dir: "."}},
	}
	for _, c := range cases {
		var got *InitOptions
		cmd := NewCmdInit(IO{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}, func(_ context.Context, o *InitOptions) error {
			got = o
			return nil
		})
		cmd.SetArgs(c.args)
		if err := cmd.Execute(); err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		if got.Dir != c.opts.Dir || got.NonInteractive != c.opts.NonInteractive || got.Force != c.opts.Force || got.SkipChecks != c.opts.SkipChecks {
			t.Errorf("%v: options %+v", c.args, got)
		}
		if len(got.Answers) != len(c.want) {
			t.Errorf("%v: answers %v, want %v", c.args, got.Answers, c.want)
		}
		for k, v := range c.want {
			if a, ok := got.Answers[k]; !ok || a != v {
				t.Errorf("%v: %s = %q (set %v), want %q", c.args, k, a, ok, v)
			}
		}
	}
}

// Through Main, as a script runs it: stdin is not a terminal, so the run is
// non-interactive, prints no secret, and exits with the spec's codes.
func TestInitThroughMain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var out, errb bytes.Buffer
	stdio := IO{In: strings.NewReader(""), Out: &out, Err: &errb}
	code := Main(context.Background(), []string{"init", "--dir", dir}, stdio)
	if code != uerr.ExitUsage || !strings.Contains(errb.String(), "--deployment") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Fatalf("files written on a usage error: %v", entries)
	}

	out.Reset()
	errb.Reset()
	const key = "sk-through-main-SECRET"
	code = Main(context.Background(), []string{"init", "--dir", dir, "--deployment", "dev", "--database", "embedded",
		"--openai-api-key", key, "--skip-checks"}, stdio)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if strings.Contains(out.String()+errb.String(), key) {
		t.Errorf("the key was printed:\n%s%s", out.String(), errb.String())
	}
	env, err := config.ReadDotEnv(filepath.Join(dir, ".env"))
	if err != nil || env["OPENAI_API_KEY"] != key || env["MOZAIKS_DATABASE"] != "embedded" {
		t.Errorf(".env: %v %v", env, err)
	}
}

func TestImageTag(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"": "dev", "v1.2.3": "1.2.3", "1.2.3": "1.2.3", "v1.2.3-rc.1": "dev",
		"v0.0.0-20250101-abcdef": "dev", "(devel)": "dev", "v1.2.3+dirty": "dev"} {
		if got := imageTag(in); got != want {
			t.Errorf("imageTag(%q) = %q, want %q", in, got, want)
		}
	}
}
