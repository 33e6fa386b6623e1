// Package testenv decides what a test does when something it needs from the
// machine (Docker, nginx, Chromium, ...) is missing: skip with a message
// locally, fail under CI=true, so a CI run can never pass by skipping.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run under CI (CI=true).
func InCI() bool {
	v := os.Getenv("CI")
	return v == "true" || v == "1"
}

// Need skips (locally) or fails (CI) the test when ok is false.
// what names the missing thing; hint says how to get it.
func Need(t testing.TB, ok bool, what, hint string) {
	t.Helper()
	if ok {
		return
	}
	if InCI() {
		t.Fatalf("needs %s, which is missing: %s", what, hint)
	}
	t.Skipf("skipping: needs %s (%s)", what, hint)
}

// NeedCommand requires an executable on PATH and returns its path.
func NeedCommand(t testing.TB, name, hint string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	Need(t, err == nil, name+" on PATH", hint)
	return p
}
