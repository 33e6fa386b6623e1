package initwiz

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/config"
	"github.com/mozaiks/mozaiks/internal/doctor/doctortest"
	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
	"github.com/mozaiks/mozaiks/internal/uerr"
)

const testKey = "sk-live-SECRET-0123456789"

// result is one Run with what it printed.
type result struct {
	out, err string
	e        error
}

func (r result) code() int {
	if r.e == nil {
		return 0
	}
	if u, ok := uerr.As(r.e); ok {
		return u.ExitCode()
	}
	return -1
}

func run(t *testing.T, ctx context.Context, o Options) result {
	t.Helper()
	var out, errb bytes.Buffer
	o.Out, o.Err = &out, &errb
	if o.In == nil {
		o.In = strings.NewReader("")
	}
	if o.MongoTimeout == 0 {
		o.MongoTimeout = 2 * time.Second
	}
	e := Run(ctx, o)
	return result{out: out.String(), err: errb.String(), e: e}
}

// fakeLLM starts the OpenAI-compatible fake accepting testKey.
func fakeLLM(t *testing.T) string {
	return llmtest.New(t, llmtest.WithAPIKey(testKey), llmtest.WithModels("gpt-4o-mini", "gpt-4o")).URL()
}

// snapshot is every file under dir with its content and mode, to prove "nothing written".
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		fi, _ := d.Info()
		rel, _ := filepath.Rel(dir, p)
		data, _ := os.ReadFile(p)
		m[rel] = fi.Mode().String() + " " + string(data)
		return nil
	})
	return m
}

func sameSnapshot(t *testing.T, before, after map[string]string) {
	t.Helper()
	var diffs []string
	for k, v := range before {
		if after[k] != v {
			diffs = append(diffs, "changed or removed: "+k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			diffs = append(diffs, "added: "+k)
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Errorf("the directory changed: %v", diffs)
	}
}

var hexSecret = regexp.MustCompile(`[0-9a-f]{32,}`)

// noSecrets fails if output holds a secret: the given ones, or anything
// that looks like a generated one.
func noSecrets(t *testing.T, r result, secrets ...string) {
	t.Helper()
	all := r.out + r.err
	if r.e != nil {
		all += r.e.Error()
		if u, ok := uerr.As(r.e); ok {
			all += u.Msg + u.Hint
		}
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(all, s) {
			t.Errorf("output contains the secret %q:\n%s", s, all)
		}
	}
	if m := hexSecret.FindString(all); m != "" {
		t.Errorf("output contains what looks like a generated secret %q:\n%s", m, all)
	}
}

func prodFlags(base string) map[string]string {
	return map[string]string{EnvDeployment: "prod", EnvPublicURL: "https://agents.example.com", EnvAPIKey: testKey, EnvBaseURL: base}
}

func TestRunNonInteractiveListsMissing(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "deploy")
	for _, c := range []struct {
		flags map[string]string
		want  []string
	}{
		{nil, []string{"--deployment", "--openai-api-key"}},
		{map[string]string{EnvDeployment: "prod", EnvDatabase: "external"}, []string{"--mongo-uri", "--openai-api-key", "--public-url"}},
	} {
		r := run(t, context.Background(), Options{Dir: dir, NonInteractive: true, Flags: c.flags})
		if r.code() != uerr.ExitUsage {
			t.Fatalf("exit %d (%v), want 2", r.code(), r.e)
		}
		for _, w := range c.want {
			if !strings.Contains(r.e.Error(), w) {
				t.Errorf("error %q does not name %s", r.e, w)
			}
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("dir was created: %v", err)
		}
	}
}

func TestRunRejectsBadAnswers(t *testing.T) {
	t.Parallel()
	base := fakeLLM(t)
	closed := closedPort(t)
	reject := llmtest.New(t, llmtest.WithAPIKey("sk-the-right-one")).URL()
	fileAsDir := filepath.Join(t.TempDir(), "a-file")
	os.WriteFile(fileAsDir, []byte("x"), 0o644)
	with := func(kv ...string) map[string]string {
		m := prodFlags(base)
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	cases := []struct {
		name  string
		flags map[string]string
		dir   string
		skip  bool
		code  int
		want  string
	}{
		{"public URL without scheme", with(EnvPublicURL, "agents.example.com"), "", false, uerr.ExitUsage, "--public-url"},
		{"public URL with a query", with(EnvPublicURL, "https://a.example.com/?x=1"), "", false, uerr.ExitUsage, "--public-url"},
		{"base URL malformed", with(EnvBaseURL, "localhost:8000/v1"), "", false, uerr.ExitUsage, "--openai-base-url"},
		{"star origin in prod", with(EnvCORS, "https://app.example.com,*"), "", false, uerr.ExitUsage, `"*" is not allowed in prod`},
		{"origin with a path", with(EnvCORS, "https://app.example.com/app"), "", false, uerr.ExitUsage, "--cors-origins"},
		{"unknown deployment", with(EnvDeployment, "staging"), "", false, uerr.ExitUsage, "--deployment"},
		{"unknown proxy", with(EnvProxy, "traefik"), "", false, uerr.ExitUsage, "--proxy"},
		{"bad app id", with(EnvAppID, "my app"), "", false, uerr.ExitUsage, "--app-id"},
		{"k8s without external db", with(EnvK8s, "true"), "", false, uerr.ExitUsage, "--k8s"},
		{"mongo URI not mongo", with(EnvDatabase, "external", EnvMongoURI, "postgres://u:pw@h/db"), "", false, uerr.ExitUsage, "--mongo-uri"},
		{"mongo unreachable", with(EnvDatabase, "external", EnvMongoURI, "mongodb://app:hunter2pw@"+closed+"/mz"), "", false, uerr.ExitPrerequisite, "cannot reach MongoDB at mongodb://app:xxxxx@" + closed},
		{"llm key rejected", with(EnvBaseURL, reject), "", false, uerr.ExitFailed, "rejected the API key (HTTP 401)"},
		{"llm wrong path", with(EnvBaseURL, strings.TrimSuffix(base, "/v1")), "", false, uerr.ExitFailed, "/v1"},
		{"llm unreachable", with(EnvBaseURL, "http://"+closed+"/v1"), "", false, uerr.ExitPrerequisite, "cannot reach the LLM endpoint"},
		{"dir is a file", prodFlags(base), fileAsDir, false, uerr.ExitUsage, "is a file"},
		{"dir under a file", prodFlags(base), filepath.Join(fileAsDir, "sub"), true, uerr.ExitFailed, "cannot write the deployment files"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := c.dir
			if dir == "" {
				dir = t.TempDir()
			}
			before := snapshot(t, filepath.Dir(dir))
			r := run(t, context.Background(), Options{Dir: dir, NonInteractive: true, Flags: c.flags, SkipChecks: c.skip})
			if r.code() != c.code {
				t.Fatalf("exit %d, want %d: %v", r.code(), c.code, r.e)
			}
			u, _ := uerr.As(r.e)
			if !strings.Contains(u.Msg+"\n"+u.Hint, c.want) {
				t.Errorf("message %q (hint %q) does not say %q", u.Msg, u.Hint, c.want)
			}
			sameSnapshot(t, before, snapshot(t, filepath.Dir(dir)))
			noSecrets(t, r, testKey, "hunter2pw", "sk-the-right-one")
		})
	}
}

// closedPort is a 127.0.0.1 port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestRunWritesThenRerunKeepsSecretsAndUnknownKeys(t *testing.T) {
	t.Parallel()
	base := fakeLLM(t)
	dir := filepath.Join(t.TempDir(), "deploy")
	flags := prodFlags(base)

	r := run(t, context.Background(), Options{Dir: dir, NonInteractive: true, Flags: flags})
	if r.e != nil {
		t.Fatalf("first run: %v\n%s", r.e, r.err)
	}
	noSecrets(t, r, testKey)
	fi, err := os.Stat(filepath.Join(dir, ".env"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf(".env mode: %v %v", fi, err)
	}
	env1, err := config.ReadDotEnv(filepath.Join(dir, ".env"))
	if err != nil {
		t.Fatal(err)
	}
	if len(env1[envJWTSecret]) != 64 || len(env1[envMongoPass]) != 48 || env1[EnvAPIKey] != testKey || env1[EnvProxy] != "caddy" ||
		env1[EnvCORS] != "https://agents.example.com" || env1[EnvMongoURI] != bundledMongoURI(Secrets{MongoRootUser: "mozaiks", MongoRootPassword: env1[envMongoPass]}) {
		t.Errorf("first .env: %v", env1)
	}
	// The runtime reads the same file into a valid configuration.
	if _, err := config.Load(config.LoadOptions{Dir: dir, Environ: []string{}}); err != nil {
		t.Errorf("the runtime rejects the generated .env: %v", err)
	}
	for _, f := range []string{"docker-compose.yml", "docker-compose.prod.yml", "Caddyfile"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s not written: %v", f, err)
		}
	}

	// Same answers, nothing to do.
	r = run(t, context.Background(), Options{Dir: dir, NonInteractive: true, Flags: flags})
	if r.e != nil || !strings.Contains(r.err, "Nothing to change") || r.out != "" {
		t.Fatalf("idempotent re-run: %v out=%q err=%q", r.e, r.out, r.err)
	}

	// The operator adds keys of their own; the answers now come from the .env alone.
	f, _ := os.OpenFile(filepath.Join(dir, ".env"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("LOG_LEVEL=debug\nAZURE_CLIENT_SECRET=azure-SECRET-value\n")
	f.Close()
	before := snapshot(t, dir)
	newKey := "sk-live-NEWKEY-9876543210"
	r = run(t, context.Background(), Options{Dir: dir, NonInteractive: true, SkipChecks: true,
		Flags: map[string]string{EnvModel: "gpt-4o", EnvAPIKey: newKey, EnvBaseURL: base}})
	if r.code() != uerr.ExitFailed || !strings.Contains(r.e.Error(), "would change") {
		t.Fatalf("changes without --force: exit %d %v", r.code(), r.e)
	}
	sameSnapshot(t, before, snapshot(t, dir))
	for _, want := range []string{"-DEFAULT_LLM_MODEL=gpt-4o-mini", "+DEFAULT_LLM_MODEL=gpt-4o", "-OPENAI_API_KEY=<old OPENAI_API_KEY>",
		"+OPENAI_API_KEY=<new OPENAI_API_KEY>", "AZURE_CLIENT_SECRET=<redacted>", "+# Kept from the previous .env"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("diff lacks %q:\n%s", want, r.out)
		}
	}
	noSecrets(t, r, testKey, newKey, "azure-SECRET-value", env1[envJWTSecret], env1[envMongoPass])

	// The new key must pass the LLM check: the fake accepts only testKey.
	r = run(t, context.Background(), Options{Dir: dir, NonInteractive: true, Force: true,
		Flags: map[string]string{EnvModel: "gpt-4o", EnvAPIKey: newKey, EnvBaseURL: base}})
	if r.code() != uerr.ExitFailed || !strings.Contains(r.e.Error(), "rejected") {
		t.Fatalf("new key against the fake: exit %d %v", r.code(), r.e)
	}
	sameSnapshot(t, before, snapshot(t, dir))

	r = run(t, context.Background(), Options{Dir: dir, NonInteractive: true, Force: true,
		Flags: map[string]string{EnvModel: "gpt-4o", EnvAPIKey: newKey, EnvBaseURL: base}, SkipChecks: true})
	if r.e != nil {
		t.Fatalf("--force: %v", r.e)
	}
	noSecrets(t, r, newKey, testKey, "azure-SECRET-value")
	env2, _ := config.ReadDotEnv(filepath.Join(dir, ".env"))
	for _, k := range []string{envJWTSecret, envMongoPass, envMongoUser, EnvMongoURI, EnvPublicURL, EnvDeployment} {
		if env2[k] != env1[k] {
			t.Errorf("%s changed across re-runs: %q -> %q", k, env1[k], env2[k])
		}
	}
	if env2[EnvAPIKey] != newKey || env2[EnvModel] != "gpt-4o" || env2["LOG_LEVEL"] != "debug" || env2["AZURE_CLIENT_SECRET"] != "azure-SECRET-value" {
		t.Errorf("second .env: %v", env2)
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".*.tmp-*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

// A write that fails half-way (k8s/ cannot be created) changes nothing.
func TestRunWriteFailureLeavesDirectoryUnchanged(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ".env"), []byte("DEFAULT_APP_ID=old\nCUSTOM=1\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "k8s"), []byte("a file where the k8s directory would go"), 0o644)
	before := snapshot(t, dir)
	flags := prodFlags("")
	flags[EnvDatabase], flags[EnvMongoURI], flags[EnvK8s] = "external", "mongodb://db.example.com/mz", "true"
	r := run(t, context.Background(), Options{Dir: dir, NonInteractive: true, Force: true, SkipChecks: true, Flags: flags})
	if r.code() != uerr.ExitFailed || !strings.Contains(r.e.Error(), "nothing was changed") {
		t.Fatalf("exit %d: %v", r.code(), r.e)
	}
	sameSnapshot(t, before, snapshot(t, dir))
}

func TestRunEnvironmentAnswers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	environ := []string{"MOZAIKS_DEPLOYMENT=dev", "OPENAI_API_KEY=" + testKey, "DEFAULT_APP_ID=from-env", "MONGO_URI=mongodb://ignored-for-bundled/x"}
	r := run(t, context.Background(), Options{Dir: dir, NonInteractive: true, SkipChecks: true, Environ: environ,
		Flags: map[string]string{EnvAppID: "from-flag"}})
	if r.e != nil {
		t.Fatal(r.e)
	}
	env, _ := config.ReadDotEnv(filepath.Join(dir, ".env"))
	if env[EnvAppID] != "from-flag" || env[EnvAPIKey] != testKey || env[EnvDeployment] != "dev" || strings.Contains(env[EnvMongoURI], "ignored") {
		t.Errorf(".env: %v", env)
	}
}

// TestRunOutputReadsAsDocumented pins the first-run stderr: the files and the next step.
func TestRunOutputReadsAsDocumented(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := run(t, context.Background(), Options{Dir: dir, NonInteractive: true, SkipChecks: true,
		Flags: map[string]string{EnvDeployment: "dev", EnvAPIKey: testKey, EnvDatabase: "embedded"}})
	if r.e != nil {
		t.Fatal(r.e)
	}
	for _, want := range []string{"Wrote into " + dir, "  .env\n", "  docker-compose.yml\n", "mozaiks up --dir " + dir} {
		if !strings.Contains(r.err, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.err)
		}
	}
	if _, err := io.WriteString(io.Discard, r.out); r.out != "" || err != nil {
		t.Errorf("a first run prints no diff on stdout: %q", r.out)
	}
}

func TestRunMalformedEnvIsNotOverwritten(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ".env"), []byte("OPENAI_API_KEY=sk-old-SECRET\nthis is not a dotenv line\n"), 0o600)
	before := snapshot(t, dir)
	r := run(t, context.Background(), Options{Dir: dir, NonInteractive: true, Force: true, SkipChecks: true, Flags: prodFlags("")})
	if r.code() != uerr.ExitFailed || !strings.Contains(r.e.Error(), "cannot parse") {
		t.Fatalf("exit %d: %v", r.code(), r.e)
	}
	sameSnapshot(t, before, snapshot(t, dir))
	noSecrets(t, r, "sk-old-SECRET", testKey)
}

// The Kubernetes Secret changes with the key; its diff shows that, not the values.
func TestRunK8sSecretDiffIsRedacted(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const pw = "mongo-PASSWORD-42"
	flags := prodFlags("")
	flags[EnvDatabase], flags[EnvMongoURI], flags[EnvK8s] = "external", "mongodb://app:"+pw+"@db.example.com/mz", "true"
	if r := run(t, context.Background(), Options{Dir: dir, NonInteractive: true, SkipChecks: true, Flags: flags}); r.e != nil {
		t.Fatal(r.e)
	}
	fi, err := os.Stat(filepath.Join(dir, "k8s", "secret.yaml"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("k8s/secret.yaml: %v %v", fi, err)
	}
	const newKey = "sk-live-ROTATED-55555"
	r := run(t, context.Background(), Options{Dir: dir, NonInteractive: true, SkipChecks: true, Flags: map[string]string{EnvAPIKey: newKey}})
	if r.code() != uerr.ExitFailed {
		t.Fatalf("exit %d: %v", r.code(), r.e)
	}
	for _, want := range []string{"+++ b/k8s/secret.yaml", `-  openai-api-key: "<old OPENAI_API_KEY>"`, `+  openai-api-key: "<new OPENAI_API_KEY>"`, `mongo-uri: "<redacted:MONGO_URI>"`} {
		if !strings.Contains(r.out, want) {
			t.Errorf("diff lacks %q:\n%s", want, r.out)
		}
	}
	noSecrets(t, r, testKey, newKey, pw)
}

// A .env written by hand as DEPLOYMENT.md shows: its values become the
// answers, its MONGO_URI decides the database, its other keys stay.
func TestRunAdoptsHandWrittenEnv(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ uri, database, wantURI string }{
		{"mongodb+srv://app:atlas-PW-1@cluster0.example.net/MozaiksAI", "external", "mongodb+srv://app:atlas-PW-1@cluster0.example.net/MozaiksAI"},
		{"mongodb://mongo:27017/MozaiksAI", "bundled", ""},
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, ".env"), []byte("# Required\nOPENAI_API_KEY="+testKey+"\n\nMONGO_URI="+c.uri+
			"\nAZURE_KEYVAULT_NAME=vault1\nDEFAULT_APP_ID=acme\n"), 0o644)
		r := run(t, context.Background(), Options{Dir: dir, NonInteractive: true, Force: true, SkipChecks: true,
			Flags: map[string]string{EnvDeployment: "prod", EnvPublicURL: "https://agents.example.com"}})
		if r.e != nil {
			t.Fatalf("%s: %v", c.uri, r.e)
		}
		noSecrets(t, r, testKey, "atlas-PW-1")
		env, _ := config.ReadDotEnv(filepath.Join(dir, ".env"))
		if env[EnvDatabase] != c.database || env[EnvAPIKey] != testKey || env[EnvAppID] != "acme" || env["AZURE_KEYVAULT_NAME"] != "vault1" {
			t.Errorf("%s: .env %v", c.uri, env)
		}
		if c.wantURI != "" && env[EnvMongoURI] != c.wantURI {
			t.Errorf("%s: MONGO_URI = %q", c.uri, env[EnvMongoURI])
		}
		if c.database == "bundled" && !strings.Contains(env[EnvMongoURI], "@mongo:27017") {
			t.Errorf("bundled URI = %q", env[EnvMongoURI])
		}
		if fi, _ := os.Stat(filepath.Join(dir, ".env")); fi.Mode().Perm() != 0o600 {
			t.Errorf(".env mode %v", fi.Mode())
		}
	}
}

// Same answers over a .env others can read: the mode is tightened without a prompt.
func TestRunTightensEnvMode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	flags := map[string]string{EnvDeployment: "dev", EnvAPIKey: testKey}
	if r := run(t, context.Background(), Options{Dir: dir, NonInteractive: true, SkipChecks: true, Flags: flags}); r.e != nil {
		t.Fatal(r.e)
	}
	envPath := filepath.Join(dir, ".env")
	os.Chmod(envPath, 0o644)
	r := run(t, context.Background(), Options{Dir: dir, NonInteractive: true, SkipChecks: true, Flags: flags})
	if r.e != nil || !strings.Contains(r.err, ".env is mode -rw-r--r--") || r.out != "" {
		t.Fatalf("%v out=%q err=%q", r.e, r.out, r.err)
	}
	if fi, _ := os.Stat(envPath); fi.Mode().Perm() != 0o600 {
		t.Errorf(".env mode %v", fi.Mode())
	}
}

// External Mongo checked with a real ping: FerretDB speaks the MongoDB wire protocol.
func TestRunExternalMongoPing(t *testing.T) {
	t.Parallel()
	uri := doctortest.StartMongo(t) + "MozaiksAI"
	dir := t.TempDir()
	flags := prodFlags(fakeLLM(t))
	flags[EnvDatabase], flags[EnvMongoURI], flags[EnvK8s], flags[EnvProxy] = "external", uri, "true", "nginx"
	r := run(t, context.Background(), Options{Dir: dir, NonInteractive: true, Flags: flags})
	if r.e != nil {
		t.Fatalf("%v\n%s", r.e, r.err)
	}
	if !strings.Contains(r.err, "Checking MongoDB at") {
		t.Errorf("no Mongo check reported:\n%s", r.err)
	}
	env, _ := config.ReadDotEnv(filepath.Join(dir, ".env"))
	if env[EnvMongoURI] != uri || env[envMongoPass] != "" {
		t.Errorf(".env: %v", env)
	}
	for _, f := range []string{"nginx/mozaiks.conf", "k8s/deployment.yaml", "k8s/secret.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
}

// A directory without write permission (root ignores the bits: the
// file-as-parent case in TestRunRejectsBadAnswers covers it there).
func TestRunReadOnlyDirectory(t *testing.T) {
	t.Parallel()
	if os.Geteuid() == 0 {
		t.Skip("root writes into read-only directories")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ".env"), []byte("CUSTOM=1\n"), 0o600)
	os.Chmod(dir, 0o555)
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	before := snapshot(t, dir)
	r := run(t, context.Background(), Options{Dir: dir, NonInteractive: true, Force: true, SkipChecks: true,
		Flags: map[string]string{EnvDeployment: "dev", EnvAPIKey: testKey}})
	if r.code() != uerr.ExitFailed || !strings.Contains(r.e.Error(), "cannot write the deployment files") {
		t.Fatalf("exit %d: %v", r.code(), r.e)
	}
	sameSnapshot(t, before, snapshot(t, dir))
}
