package initwiz

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkRender renders every file of the largest answer set (k8s, nginx).
func BenchmarkRender(b *testing.B) {
	a, _ := renderCases[2].answers.Normalize()
	for b.Loop() {
		if _, err := Render(a, testSecrets, nil, RenderOptions{ImageTag: "1.2.3"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteAllAtomic is writeAll (temp file, chmod, fsync, rename, for
// every file); BenchmarkWritePlain writes the same files with os.WriteFile,
// the baseline that shows what all-or-nothing costs.
func BenchmarkWriteAllAtomic(b *testing.B) {
	files, dir := benchFiles(b)
	for b.Loop() {
		if err := writeAll(dir, files); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWritePlain(b *testing.B) {
	files, dir := benchFiles(b)
	for _, f := range files {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(f.Path)), 0o755)
	}
	for b.Loop() {
		for _, f := range files {
			if err := os.WriteFile(filepath.Join(dir, f.Path), f.Data, f.Mode); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func benchFiles(b *testing.B) ([]File, string) {
	a, _ := renderCases[2].answers.Normalize()
	files, err := Render(a, testSecrets, nil, RenderOptions{ImageTag: "1.2.3"})
	if err != nil {
		b.Fatal(err)
	}
	return files, b.TempDir()
}
