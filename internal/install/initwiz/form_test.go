package initwiz

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/config"
	"github.com/mozaiks/mozaiks/internal/uerr"
)

// The form runs in huh's accessible mode, reading one answer per line, in
// the order the pages ask: deployment, database, [mongo URI], base URL, key,
// model, public URL, CORS origins, app id, proxy, project name, host port,
// [k8s], [confirm].
func TestFormAnswersToFiles(t *testing.T) {
	t.Parallel()
	base := fakeLLM(t)
	cases := []struct {
		name  string
		input []string
		flags map[string]string
		check func(t *testing.T, env map[string]string, dir string)
	}{
		{
			name: "prod bundled caddy, defaults taken",
			// prod, bundled, base URL, key, model default, public URL, CORS default, app id, proxy caddy,
			// project name and host port asked (issue #15, item 7)
			input: []string{"2", "1", base, testKey, "", "https://agents.example.com/", "", "acme", "1", "Shop2", "shop2", "8102"},
			check: func(t *testing.T, env map[string]string, dir string) {
				want := map[string]string{EnvDeployment: "prod", EnvDatabase: "bundled", EnvModel: "gpt-4o-mini", EnvPublicURL: "https://agents.example.com",
					EnvCORS: "https://agents.example.com", EnvAppID: "acme", EnvProxy: "caddy", EnvAPIKey: testKey,
					EnvProject: "shop2", EnvHTTPPort: "8102"}
				for k, v := range want {
					if env[k] != v {
						t.Errorf("%s = %q, want %q", k, env[k], v)
					}
				}
				if _, err := os.Stat(filepath.Join(dir, "Caddyfile")); err != nil {
					t.Error(err)
				}
			},
		},
		{
			name: "a bad answer is asked again, flags prefill",
			// dev, embedded, base URL, key, model (prefilled by flag), public URL: bad then good, CORS, app id, proxy none
			input: []string{"1", "3", base, testKey, "", "not a url", "http://localhost:9000", "http://localhost:3000/", "", "3", "", ""},
			flags: map[string]string{EnvModel: "gpt-4o"},
			check: func(t *testing.T, env map[string]string, dir string) {
				if env[EnvDatabase] != "embedded" || env[EnvModel] != "gpt-4o" || env[EnvPublicURL] != "http://localhost:9000" ||
					env[EnvCORS] != "http://localhost:3000" || env[EnvProxy] != "none" || env[EnvMongoURI] != "" {
					t.Errorf(".env: %v", env)
				}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			r := run(t, context.Background(), Options{Dir: dir, Interactive: true, Accessible: true, Flags: c.flags,
				In: strings.NewReader(strings.Join(c.input, "\n") + "\n")})
			if r.e != nil {
				t.Fatalf("%v\n%s", r.e, r.err)
			}
			noSecrets(t, r, testKey)
			env, err := config.ReadDotEnv(filepath.Join(dir, ".env"))
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, env, dir)
		})
	}
}

// Re-running interactively offers the earlier answers as defaults and asks
// before overwriting; "no" leaves everything as it was.
func TestFormRerunConfirms(t *testing.T) {
	t.Parallel()
	base := fakeLLM(t)
	dir := t.TempDir()
	first := []string{"1", "1", base, testKey, "", "", "", "", "3", "", ""}
	if r := run(t, context.Background(), Options{Dir: dir, Interactive: true, Accessible: true, In: strings.NewReader(strings.Join(first, "\n") + "\n")}); r.e != nil {
		t.Fatalf("first: %v\n%s", r.e, r.err)
	}
	before := snapshot(t, dir)
	// Every default kept except the app id, then "n" at the confirmation.
	again := []string{"", "", "", "", "", "", "", "other-app", "", "", "", "n"}
	r := run(t, context.Background(), Options{Dir: dir, Interactive: true, Accessible: true, In: strings.NewReader(strings.Join(again, "\n") + "\n")})
	if r.code() != uerr.ExitFailed || !strings.Contains(r.e.Error(), "cancelled") {
		t.Fatalf("declined: exit %d %v\n%s", r.code(), r.e, r.err)
	}
	if !strings.Contains(r.out, "+DEFAULT_APP_ID=other-app") {
		t.Errorf("diff:\n%s", r.out)
	}
	noSecrets(t, r, testKey)
	sameSnapshot(t, before, snapshot(t, dir))

	again[len(again)-1] = "y"
	r = run(t, context.Background(), Options{Dir: dir, Interactive: true, Accessible: true, In: strings.NewReader(strings.Join(again, "\n") + "\n")})
	if r.e != nil {
		t.Fatalf("confirmed: %v", r.e)
	}
	env, _ := config.ReadDotEnv(filepath.Join(dir, ".env"))
	if env[EnvAppID] != "other-app" || env[EnvAPIKey] != testKey {
		t.Errorf(".env after confirm: %v", env)
	}
}

// Ctrl-C (the context cancelled) in the middle of the form writes nothing,
// also over an existing deployment.
func TestFormInterruptedLeavesDirectoryUnchanged(t *testing.T) {
	t.Parallel()
	for _, existing := range []bool{false, true} {
		dir := t.TempDir()
		if existing {
			os.WriteFile(filepath.Join(dir, ".env"), []byte("MOZAIKS_DEPLOYMENT=dev\nCUSTOM=1\n"), 0o600)
		}
		before := snapshot(t, dir)
		pr, pw := io.Pipe()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan result, 1)
		go func() { done <- run(t, ctx, Options{Dir: dir, Interactive: true, Accessible: true, In: pr}) }()
		// Answer the first page, then interrupt while the form waits for the base URL.
		for _, line := range []string{"2\n", "1\n"} {
			if _, err := pw.Write([]byte(line)); err != nil {
				t.Fatal(err)
			}
		}
		cancel()
		var r result
		select {
		case r = <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the form did not return after cancellation")
		}
		pw.Close()
		if r.code() != uerr.ExitInterrupted {
			t.Fatalf("exit %d, want 130: %v", r.code(), r.e)
		}
		sameSnapshot(t, before, snapshot(t, dir))
	}
}

// A rejected key in the form: the error is shown (not the key), the operator
// changes only the key, and the run completes.
func TestFormRetriesAfterFailedCheck(t *testing.T) {
	t.Parallel()
	base := fakeLLM(t)
	dir := t.TempDir()
	const wrong = "sk-WRONG-key-000"
	input := []string{"1", "1", base, wrong, "", "", "", "", "3", "", "",
		"y",                                             // change the answers and check again
		"", "", "", testKey, "", "", "", "", "", "", "", // every page again, defaults kept but the key
	}
	r := run(t, context.Background(), Options{Dir: dir, Interactive: true, Accessible: true, In: strings.NewReader(strings.Join(input, "\n") + "\n")})
	if r.e != nil {
		t.Fatalf("%v\n%s", r.e, r.err)
	}
	if !strings.Contains(r.err, "Error: the LLM endpoint "+base+" rejected the API key (HTTP 401)") {
		t.Errorf("the failed check was not shown:\n%s", r.err)
	}
	noSecrets(t, r, wrong, testKey)
	env, _ := config.ReadDotEnv(filepath.Join(dir, ".env"))
	if env[EnvAPIKey] != testKey {
		t.Errorf("key = %q", env[EnvAPIKey])
	}

	// Declining the retry ends with the check's own error and writes nothing.
	dir2 := t.TempDir()
	input = []string{"1", "1", base, wrong, "", "", "", "", "3", "", "", "n"}
	r = run(t, context.Background(), Options{Dir: dir2, Interactive: true, Accessible: true, In: strings.NewReader(strings.Join(input, "\n") + "\n")})
	if r.code() != uerr.ExitFailed || !strings.Contains(r.e.Error(), "rejected") {
		t.Fatalf("exit %d: %v", r.code(), r.e)
	}
	if entries, _ := os.ReadDir(dir2); len(entries) != 0 {
		t.Errorf("files written: %v", entries)
	}
}
