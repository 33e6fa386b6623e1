package release

import (
	"path/filepath"
	"testing"
	"time"
)

// TestSnapshot builds only the host platform; these builds catch the code
// that compiles on linux only (syscall.Statfs and friends) before a release
// does. Windows only: it is where linux-only code breaks first, and each
// cross build of the whole dependency tree costs CI minutes (`make snapshot`
// builds all six targets).
func TestCrossCompile(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	for _, target := range []struct{ goos, goarch string }{
		{"windows", "amd64"},
	} {
		t.Run(target.goos+"/"+target.goarch, func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), "mozaiks")
			// Same flags as .goreleaser.yaml, so CI and the release share the build cache.
			run(t, 15*time.Minute, root, []string{"CGO_ENABLED=0", "GOOS=" + target.goos, "GOARCH=" + target.goarch},
				"go", "build", "-trimpath", "-o", out, "./cmd/mozaiks")
		})
	}
}
