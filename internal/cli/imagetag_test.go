//go:build !mozaiks_runtime

package cli

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/mozaiks/mozaiks/internal/testenv"
)

// TestMakeImageTagsWhatInitPins: `make image` and `mozaiks init` of one
// version name one image (they disagreed: :dev against :latest).
func TestMakeImageTagsWhatInitPins(t *testing.T) {
	t.Parallel()
	mk := testenv.NeedCommand(t, "make", "install make (.ci/setup.d/05-make.sh)")
	for _, v := range []string{"v1.4.2", "v1.4.2-3-gabcdef", "v1.4.2-dirty", "0.9.0", "abcdef0", ""} {
		out, err := exec.Command(mk, "-s", "-C", "../..", "print-image", "VERSION="+v).CombinedOutput()
		if err != nil {
			t.Fatalf("make print-image VERSION=%s: %v\n%s", v, err, out)
		}
		if got, want := strings.TrimSpace(string(out)), "mozaiks/runtime:"+ImageTag(v); got != want {
			t.Errorf("VERSION=%q: make image tags %s, init pins %s", v, got, want)
		}
	}
}
