package archtest

import (
	"go/build"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/mozaiks/mozaiks/"

// layer of a package path relative to the module root; 0 for the leaf
// helpers anything may use (uerr, buildinfo, procnet, test helpers).
func layer(pkg string) int {
	switch {
	case pkg == "cmd/mozaiks":
		return 0
	case under(pkg, "internal/cli"):
		return 1
	case under(pkg, "internal/serve"), under(pkg, "internal/install"), under(pkg, "internal/doctor"), under(pkg, "internal/app"):
		return 2
	case under(pkg, "internal/chat"), under(pkg, "internal/engine"), under(pkg, "internal/store"), under(pkg, "internal/llm"),
		under(pkg, "internal/config"), under(pkg, "internal/auth"), under(pkg, "internal/workflow"):
		return 3
	}
	return 0
}

func under(pkg, dir string) bool { return pkg == dir || strings.HasPrefix(pkg, dir+"/") }

// sideways are the imports allowed between packages of the middle layer.
var sideways = map[string][]string{
	// One client per external system: the doctor reaches compose and
	// Docker through install/stack, and probes the diag endpoints whose
	// paths and payloads serve/diag defines.
	"internal/doctor":            {"internal/install/stack", "internal/serve/diag"},
	"internal/doctor/doctortest": {"internal/serve/diag"},
	// app assembles the runtime, which is serve.
	"internal/app": {"internal/serve", "internal/serve/ws"},
}

// knownViolations exist on main and are owned elsewhere; each must still
// exist (the test says when one is fixed, so it leaves this list).
var knownViolations = map[string]string{}

type edge struct{ from, to string }

func imports(t *testing.T) []edge {
	t.Helper()
	root := filepath.Join("..", "..")
	var edges []edge
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules" || name == "dist") {
			return filepath.SkipDir
		}
		pkg, err := build.ImportDir(path, 0)
		if err != nil {
			return nil // no buildable Go files here
		}
		rel, _ := filepath.Rel(root, path)
		from := filepath.ToSlash(rel)
		for _, imp := range pkg.Imports {
			if to, ok := strings.CutPrefix(imp, module); ok {
				edges = append(edges, edge{from, to})
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(edges) < 20 {
		t.Fatalf("found only %d internal imports under %s: the walk is broken", len(edges), root)
	}
	return edges
}

func violation(e edge) string {
	lf, lt := layer(e.from), layer(e.to)
	switch {
	case under(e.to, "internal/cli") && e.from != "cmd/mozaiks":
		return "nothing but cmd/mozaiks imports internal/cli"
	case under(e.from, "internal/serve") && under(e.to, "internal/install"):
		return "serve never imports install"
	case (under(e.from, "internal/store") || under(e.from, "internal/workflow")) && under(e.to, "internal/config"):
		return "store/* and workflow take plain values, not the config package"
	case lf == 0 || lt == 0:
		return ""
	case lt < lf:
		return "a lower layer imports an upper one (cli -> {serve, install, doctor, app} -> {chat, engine, store, llm, config, auth, workflow})"
	case lf == 2 && lt == 2 && top(e.from) != top(e.to) && !slices.Contains(sideways[e.from], e.to):
		return "sideways between serve, install, doctor and app (allowed only as listed in sideways)"
	}
	return ""
}

// top is the middle-layer package a path belongs to (internal/serve/ws -> internal/serve).
func top(pkg string) string {
	parts := strings.SplitN(pkg, "/", 3)
	if len(parts) < 2 {
		return pkg
	}
	return parts[0] + "/" + parts[1]
}

// TestImportDirection fails on an import across the intended direction.
func TestImportDirection(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, e := range imports(t) {
		why := violation(e)
		if why == "" {
			continue
		}
		key := e.from + " -> " + e.to
		seen[key] = true
		if _, known := knownViolations[key]; known {
			continue
		}
		t.Errorf("%s: %s", key, why)
	}
	for k, why := range knownViolations {
		if !seen[k] {
			t.Errorf("known violation %q (%s) is gone: remove it from knownViolations", k, why)
		}
	}
}

// TestRulesCatchViolations: the rules themselves fail on what they forbid.
func TestRulesCatchViolations(t *testing.T) {
	t.Parallel()
	for _, e := range []edge{
		{"internal/serve", "internal/install/stack"},
		{"internal/store/mongo", "internal/config"},
		{"internal/workflow", "internal/config"},
		{"internal/engine", "internal/serve/ws"},
		{"internal/chat", "internal/doctor"},
		{"internal/install/initwiz", "internal/doctor"},
		{"internal/serve", "internal/cli"},
		{"internal/install/stack", "internal/cli"},
		{"internal/serve/diag", "internal/doctor"},
	} {
		if violation(e) == "" {
			t.Errorf("%s -> %s is not caught", e.from, e.to)
		}
	}
	for _, e := range []edge{
		{"internal/cli", "internal/doctor"},
		{"internal/doctor", "internal/install/stack"},
		{"internal/doctor", "internal/store/mongo"},
		{"internal/serve", "internal/chat"},
		{"cmd/mozaiks", "internal/cli"},
		{"internal/chat", "internal/uerr"},
		{"internal/serve/ws", "internal/chat"},
	} {
		if why := violation(e); why != "" {
			t.Errorf("%s -> %s is refused (%s) but intended", e.from, e.to, why)
		}
	}
}
