package release

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// runtimeBlock returns the final stage's instructions that shape the running
// container (everything but FROM, ARG and COPY), continuation lines joined.
func runtimeBlock(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var instrs []string
	var cur strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			cur.WriteString(strings.TrimSuffix(line, `\`) + " ")
			continue
		}
		cur.WriteString(line)
		instrs = append(instrs, strings.Join(strings.Fields(cur.String()), " "))
		cur.Reset()
	}
	var block []string
	for _, in := range instrs {
		keyword, _, _ := strings.Cut(in, " ")
		switch strings.ToUpper(keyword) {
		case "FROM":
			block = nil // only the final stage counts
		case "ARG", "COPY", "RUN":
		default:
			block = append(block, in)
		}
	}
	return block
}

// The source build and the prebuilt build must make the same image; only how
// the binary arrives differs.
func TestDockerfilesAgree(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(repoRoot(t), "infra", "docker")
	source := runtimeBlock(t, filepath.Join(dir, "Dockerfile"))
	prebuilt := runtimeBlock(t, filepath.Join(dir, "Dockerfile.prebuilt"))
	if !slices.Equal(source, prebuilt) {
		t.Fatalf("runtime settings differ:\nDockerfile:\n  %s\nDockerfile.prebuilt:\n  %s",
			strings.Join(source, "\n  "), strings.Join(prebuilt, "\n  "))
	}
	for _, want := range []string{"USER 65532:65532", "EXPOSE 8000", `ENTRYPOINT ["/mozaiks", "serve"]`} {
		if !slices.Contains(source, want) {
			t.Errorf("final stage lacks %q: %q", want, source)
		}
	}
}
