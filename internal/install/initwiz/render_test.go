package initwiz

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files and infra/compose from the templates")

var testSecrets = Secrets{
	JWTSecret:         "jwt0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab",
	MongoRootUser:     "mozaiks",
	MongoRootPassword: "mongopw0123456789abcdef0123456789abcdef0123",
	DiagToken:         "d1a9d1a9d1a9d1a9d1a9d1a9d1a9d1a9",
}

// renderCase is one answer set whose files are compared with testdata/golden/<name>/.
type renderCase struct {
	name    string
	answers Answers
	unknown []KV
}

var renderCases = []renderCase{
	{name: "dev-bundled", answers: Answers{Deployment: "dev", Database: "bundled", OpenAIAPIKey: "sk-test-dev-0001",
		Model: "gpt-4o-mini", PublicURL: "http://localhost:8000", CORSOrigins: "http://localhost:3000, http://LOCALHOST:5173/", AppID: "default", Proxy: "none"}},
	{name: "prod-bundled-caddy", answers: Answers{Deployment: "prod", Database: "bundled", OpenAIAPIKey: "sk-test-prod-0002",
		Model: "gpt-4o", PublicURL: "https://agents.example.com/", CORSOrigins: "https://app.example.com:443", AppID: "acme", Proxy: "caddy"},
		unknown: []KV{{"LOG_LEVEL", "debug"}, {"AZURE_CLIENT_SECRET", "keep me # and 'quote'"}}},
	{name: "prod-external-nginx-k8s", answers: Answers{Deployment: "prod", Database: "external",
		MongoURI:     "mongodb+srv://app:s3cret@cluster0.example.net/MozaiksAI?retryWrites=true&w=majority",
		OpenAIAPIKey: "sk-test-prod-0003", OpenAIBaseURL: "https://llm.example.com/v1", Model: "llama3.1-70b",
		PublicURL: "https://agents.example.com:8443", CORSOrigins: "https://app.example.com,https://admin.example.com",
		AppID: "acme", Proxy: "nginx", K8s: true}},
	{name: "prod-embedded-none", answers: Answers{Deployment: "prod", Database: "embedded", OpenAIBaseURL: "http://10.0.0.5:8000/v1",
		Model: "qwen2.5", PublicURL: "http://203.0.113.7:8080", CORSOrigins: "http://203.0.113.7:8080", AppID: "default", Proxy: "none"}},
	{name: "dev-external-nginx-http", answers: Answers{Deployment: "dev", Database: "external", MongoURI: "mongodb://db.internal:27017/mz",
		OpenAIAPIKey: "sk-test-dev-0005", Model: "gpt-4o-mini", PublicURL: "http://localhost:8080", CORSOrigins: "*", AppID: "default", Proxy: "nginx"}},
	{name: "prod-embedded-nginx-host", answers: Answers{Deployment: "prod", Database: "embedded", OpenAIAPIKey: "sk-test-prod-0006",
		Model: "gpt-4o-mini", PublicURL: "https://agents.example.com", CORSOrigins: "https://app.example.com", AppID: "default", Proxy: "nginx-host",
		Project: "agents2", HTTPPort: "8100"}},
}

// renderFor normalises the answers (as Run does) and renders them.
func renderFor(t *testing.T, c renderCase, o RenderOptions) []File {
	t.Helper()
	a, probs := c.answers.Normalize()
	if len(probs) > 0 {
		t.Fatalf("answers of %s do not validate: %v", c.name, probs)
	}
	files, err := Render(a, testSecrets, c.unknown, o)
	if err != nil {
		t.Fatalf("render %s: %v", c.name, err)
	}
	return files
}

// writeFiles puts rendered files into a fresh directory, as Run would.
func writeFiles(t *testing.T, files []File) string {
	t.Helper()
	dir := t.TempDir()
	if err := writeAll(dir, files); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestRenderGolden(t *testing.T) {
	t.Parallel()
	for _, c := range renderCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			files := renderFor(t, c, RenderOptions{ImageTag: "1.2.3"})
			goldenDir := filepath.Join("testdata", "golden", c.name)
			if *update {
				os.RemoveAll(goldenDir)
			}
			want := map[string]bool{}
			for _, f := range files {
				want[f.Path] = true
				compareGolden(t, filepath.Join(goldenDir, filepath.FromSlash(f.Path)), f.Data)
			}
			// A golden file the answers no longer produce is stale.
			filepath.WalkDir(goldenDir, func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					rel, _ := filepath.Rel(goldenDir, p)
					if !want[filepath.ToSlash(rel)] {
						t.Errorf("golden %s is no longer generated (run go test -update)", p)
					}
				}
				return nil
			})
		})
	}
}

func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run go test -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from what the templates render (review, then go test -update):\n%s", path,
			unifiedDiff(change{File: File{Path: path, Data: got}, Old: want, Exists: true}, newRedactor(nil, nil)))
	}
}

// The repository's infra/compose files are the bundled dev and prod (no
// proxy) renderings with the image built from the repo: regenerate, never drift.
func TestInfraComposeMatchesInit(t *testing.T) {
	t.Parallel()
	for _, c := range infraCases() {
		files := renderFor(t, c, RenderOptions{ImageTag: "dev", Repo: true})
		for _, f := range files {
			if f.Path != c.name {
				continue
			}
			compareGolden(t, filepath.Join(infraDir(), f.Path), f.Data)
		}
	}
}

func infraCases() []renderCase {
	base := Answers{Database: "bundled", OpenAIAPIKey: "unused", Model: "gpt-4o-mini", AppID: "default", Proxy: "none",
		PublicURL: "http://localhost:8000", CORSOrigins: "http://localhost:3000"}
	dev, prod := base, base
	dev.Deployment, prod.Deployment = "dev", "prod"
	return []renderCase{{name: "docker-compose.yml", answers: dev}, {name: "docker-compose.prod.yml", answers: prod}}
}

func infraDir() string { return filepath.Join("..", "..", "..", "infra", "compose") }

func TestEnvLineRoundTrip(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"", "plain", "sk-abc_123", "mongodb://u:p@h:1/db?a=b&c=d", "has space", "hash # mark",
		"dollar $HOME ${X}", `back\slash`, "single ' quote", "both ' and $X"} {
		line := envLine("K", v)
		dir := t.TempDir()
		p := filepath.Join(dir, ".env")
		if err := os.WriteFile(p, []byte(line+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := readDotEnvForTest(p)
		if err != nil {
			t.Fatalf("%q -> %s: %v", v, line, err)
		}
		if got["K"] != v {
			t.Errorf("%q written as %s reads back as %q", v, line, got["K"])
		}
		if strings.Contains(v, "$") && !strings.Contains(line, "'") && !strings.Contains(line, `\$`) {
			t.Errorf("%q written as %s would be interpolated", v, line)
		}
	}
}
