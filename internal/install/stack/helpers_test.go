package stack

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// devProject copies the dev compose file into a fresh directory with a .env
// built from env, and returns the directory.
func devProject(t testing.TB, env map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join("testdata", "dev", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, DevFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	writeEnv(t, dir, env)
	return dir
}

func writeEnv(t testing.TB, dir string, env map[string]string) {
	t.Helper()
	var lines []string
	for k, v := range env {
		lines = append(lines, k+"="+v)
	}
	slices.Sort(lines)
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// freePort returns a TCP port nothing listens on right now.
func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

func loadDev(t testing.TB, dir, name string) *Project {
	t.Helper()
	p, err := LoadProject(context.Background(), ProjectOptions{Dir: dir, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
