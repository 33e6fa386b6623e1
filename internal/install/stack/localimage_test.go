package stack

import (
	"bytes"
	"strings"
	"testing"
)

// TestUpSaysWhichLocalRuntimeImageItUses: a stale local runtime image used
// to be taken silently (issue #15, item 4); up names it and its id.
func TestUpSaysWhichLocalRuntimeImageItUses(t *testing.T) {
	t.Parallel()
	eng := newFakeEngine("mongo:7.0", "mozaiks/runtime:test")
	var progress bytes.Buffer
	if _, err := upFake(t, eng, devProject(t, fakeEnv(t)), func(o *UpOptions) { o.Err = &progress }); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(progress.String(), "using local image mozaiks/runtime:test (") {
		t.Errorf("progress does not name the local runtime image:\n%s", progress.String())
	}
	if strings.Contains(progress.String(), "using local image mongo:7.0") {
		t.Errorf("third-party images need no such note:\n%s", progress.String())
	}
}
