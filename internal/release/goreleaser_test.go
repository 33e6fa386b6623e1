package release

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mozaiks/mozaiks/internal/testenv"
)

// The parts of .goreleaser.yaml the tests look at.
type goreleaserConfig struct {
	Builds []struct {
		ID      string   `yaml:"id"`
		Tags    []string `yaml:"tags"`
		Env     []string `yaml:"env"`
		Ldflags []string `yaml:"ldflags"`
		Goos    []string `yaml:"goos"`
		Goarch  []string `yaml:"goarch"`
	} `yaml:"builds"`
	Nfpms []struct {
		Formats []string `yaml:"formats"`
		Bindir  string   `yaml:"bindir"`
	} `yaml:"nfpms"`
	DockersV2 []struct {
		IDs        []string `yaml:"ids"`
		Dockerfile string   `yaml:"dockerfile"`
		Images     []string `yaml:"images"`
		Platforms  []string `yaml:"platforms"`
	} `yaml:"dockers_v2"`
}

func readConfig(t *testing.T, path string) (goreleaserConfig, map[string]any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var typed goreleaserConfig
	if err := yaml.Unmarshal(raw, &typed); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	var generic map[string]any
	if err := yaml.Unmarshal(raw, &generic); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return typed, generic
}

// The snapshot below builds only the host platform (six cross builds would
// cost CI minutes), so the full matrix and the image settings are checked here.
func TestConfigTargets(t *testing.T) {
	t.Parallel()
	cfg, _ := readConfig(t, filepath.Join(repoRoot(t), ".goreleaser.yaml"))
	if len(cfg.Builds) != 2 || cfg.Builds[0].ID != "mozaiks" || cfg.Builds[1].ID != "runtime" {
		t.Fatalf("builds: want mozaiks (the CLI) and runtime (the image's binary), got %+v", cfg.Builds)
	}
	if rt := cfg.Builds[1]; !slices.Equal(rt.Tags, []string{"mozaiks_runtime"}) || !slices.Equal(rt.Goos, []string{"linux"}) {
		t.Errorf("runtime build = %+v, want tags [mozaiks_runtime] on linux", rt)
	}
	b := cfg.Builds[0]
	if !slices.Contains(b.Env, "CGO_ENABLED=0") {
		t.Errorf("build env %v lacks CGO_ENABLED=0 (static binaries)", b.Env)
	}
	for _, os := range []string{"linux", "darwin", "windows"} {
		if !slices.Contains(b.Goos, os) {
			t.Errorf("goos %v lacks %s", b.Goos, os)
		}
	}
	for _, arch := range []string{"amd64", "arm64"} {
		if !slices.Contains(b.Goarch, arch) {
			t.Errorf("goarch %v lacks %s", b.Goarch, arch)
		}
	}
	ld := strings.Join(b.Ldflags, " ")
	for _, v := range []string{"Version", "Commit", "Date"} {
		if !strings.Contains(ld, "github.com/mozaiks/mozaiks/internal/buildinfo."+v+"=") {
			t.Errorf("ldflags %q do not set buildinfo.%s", ld, v)
		}
	}
	if len(cfg.Nfpms) != 1 || !slices.Equal(cfg.Nfpms[0].Formats, []string{"deb", "rpm"}) || cfg.Nfpms[0].Bindir != "/usr/bin" {
		t.Errorf("nfpms = %+v, want deb and rpm with bindir /usr/bin", cfg.Nfpms)
	}
	if len(cfg.DockersV2) != 1 {
		t.Fatalf("dockers_v2: got %d entries, want 1", len(cfg.DockersV2))
	}
	d := cfg.DockersV2[0]
	if !slices.Equal(d.IDs, []string{"runtime"}) {
		t.Errorf("dockers_v2 ids = %v, want [runtime] (the image's small binary)", d.IDs)
	}
	if d.Dockerfile != "infra/docker/Dockerfile.prebuilt" || !slices.Equal(d.Images, []string{"mozaiks/runtime"}) ||
		!slices.Equal(d.Platforms, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("dockers_v2 = %+v, want mozaiks/runtime from infra/docker/Dockerfile.prebuilt on linux/amd64 and linux/arm64", d)
	}
}

// Not parallel: it runs before the parallel tests, so the cold build of
// goreleaser happens once and TestSnapshot finds it cached.
func TestGoreleaserCheck(t *testing.T) {
	root := repoRoot(t)
	testenv.NeedCommand(t, "git", "apt-get install git")
	run(t, 15*time.Minute, root, nil, "go", "run", goreleaserPkg, "check")
}

// hostOnlyConfig writes a copy of the repository's config that builds only
// the host platform into dist.
func hostOnlyConfig(t *testing.T, root, dist string) string {
	t.Helper()
	_, cfg := readConfig(t, filepath.Join(root, ".goreleaser.yaml"))
	cfg["dist"] = dist
	// Only the CLI build: the runtime build feeds the image, which a
	// snapshot with --skip=docker does not make.
	builds, _ := cfg["builds"].([]any)
	var kept []any
	for _, b := range builds {
		m := b.(map[string]any)
		if m["id"] != "mozaiks" {
			continue
		}
		m["goos"] = []string{runtime.GOOS}
		m["goarch"] = []string{runtime.GOARCH}
		kept = append(kept, m)
	}
	cfg["builds"] = kept
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "goreleaser.yaml")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSnapshot(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	testenv.NeedCommand(t, "git", "apt-get install git")
	testenv.Need(t, runtime.GOOS == "linux", "a linux host", "the packages and the binary are checked by running them")
	dist := filepath.Join(t.TempDir(), "dist")
	cfg := hostOnlyConfig(t, root, dist)
	run(t, 20*time.Minute, root, nil, "go", "run", goreleaserPkg,
		"release", "--config", cfg, "--snapshot", "--clean", "--skip=publish,sign,docker")

	var meta struct {
		Version string `json:"version"`
		Commit  string `json:"commit"`
	}
	raw, err := os.ReadFile(filepath.Join(dist, "metadata.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(meta.Version, "snapshot") {
		t.Fatalf("metadata version %q is not a snapshot version", meta.Version)
	}
	base := "mozaiks_" + meta.Version + "_" + runtime.GOOS + "_" + runtime.GOARCH
	archive := filepath.Join(dist, base+".tar.gz")

	t.Run("binary is static and stamped", func(t *testing.T) {
		bin := filepath.Join(t.TempDir(), "mozaiks")
		extractFile(t, archive, "mozaiks", bin)
		assertStatic(t, bin)
		assertVersion(t, bin, meta.Version, meta.Commit)
	})

	t.Run("archive contents", func(t *testing.T) {
		got := tarNames(t, archive)
		want := []string{"LICENSE", "README.md", "completions/mozaiks.bash", "completions/mozaiks.fish", "completions/mozaiks.zsh", "mozaiks"}
		if !slices.Equal(got, want) {
			t.Errorf("%s holds %v, want %v", filepath.Base(archive), got, want)
		}
		// The before hook ran the binary: each script must be its shell's, for mozaiks.
		heads := map[string]string{
			"completions/mozaiks.bash": "# bash completion V2 for mozaiks",
			"completions/mozaiks.zsh":  "#compdef mozaiks",
			"completions/mozaiks.fish": "# fish completion for mozaiks",
		}
		walkTar(t, archive, func(h *tar.Header, r io.Reader) bool {
			if head, ok := heads[h.Name]; ok {
				body, err := io.ReadAll(r)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(string(body), head) {
					t.Errorf("%s does not start with %q", h.Name, head)
				}
			}
			return true
		})
	})

	t.Run("checksums cover every artifact", func(t *testing.T) {
		sums := readChecksums(t, filepath.Join(dist, "checksums.txt"))
		debs, _ := filepath.Glob(filepath.Join(dist, "*.deb"))
		rpms, _ := filepath.Glob(filepath.Join(dist, "*.rpm"))
		if len(debs) != 1 || len(rpms) != 1 {
			t.Fatalf("want one deb and one rpm in dist, got %v %v", debs, rpms)
		}
		for _, f := range []string{archive, debs[0], rpms[0]} {
			want, ok := sums[filepath.Base(f)]
			if !ok {
				t.Errorf("checksums.txt lacks %s", filepath.Base(f))
				continue
			}
			if got := sha256File(t, f); got != want {
				t.Errorf("%s: sha256 %s, checksums.txt says %s", filepath.Base(f), got, want)
			}
		}
		if len(sums) != 3 {
			t.Errorf("checksums.txt lists %d files, want 3: %v", len(sums), sums)
		}
	})

	t.Run("deb", func(t *testing.T) {
		dpkgDeb := testenv.NeedCommand(t, "dpkg-deb", "apt-get install dpkg")
		debs, _ := filepath.Glob(filepath.Join(dist, "*.deb"))
		if len(debs) != 1 {
			t.Fatalf("want one deb, got %v", debs)
		}
		info := run(t, time.Minute, "", nil, dpkgDeb, "--info", debs[0])
		for _, want := range []string{"Package: mozaiks", "Architecture: " + runtime.GOARCH} {
			if !strings.Contains(info, want) {
				t.Errorf("dpkg-deb --info lacks %q:\n%s", want, info)
			}
		}
		contents := run(t, time.Minute, "", nil, dpkgDeb, "--contents", debs[0])
		for _, want := range []string{
			"./usr/bin/mozaiks",
			"./usr/share/bash-completion/completions/mozaiks",
			"./usr/share/zsh/vendor-completions/_mozaiks",
			"./usr/share/fish/vendor_completions.d/mozaiks.fish",
			"./usr/share/doc/mozaiks/copyright",
		} {
			if !strings.Contains(contents, want+"\n") {
				t.Errorf("deb lacks %s:\n%s", want, contents)
			}
		}
		dir := t.TempDir()
		run(t, time.Minute, "", nil, dpkgDeb, "-x", debs[0], dir)
		assertVersion(t, filepath.Join(dir, "usr/bin/mozaiks"), meta.Version, meta.Commit)
	})

	t.Run("rpm", func(t *testing.T) {
		rpm := testenv.NeedCommand(t, "rpm", "apt-get install rpm")
		rpms, _ := filepath.Glob(filepath.Join(dist, "*.rpm"))
		if len(rpms) != 1 {
			t.Fatalf("want one rpm, got %v", rpms)
		}
		list := run(t, time.Minute, "", nil, rpm, "-qpl", rpms[0])
		for _, want := range []string{"/usr/bin/mozaiks", "/usr/share/bash-completion/completions/mozaiks"} {
			if !strings.Contains(list, want+"\n") {
				t.Errorf("rpm lacks %s:\n%s", want, list)
			}
		}
	})
}

// assertVersion runs `bin version --json` and compares it with goreleaser's metadata.
func assertVersion(t *testing.T, bin, version, commit string) {
	t.Helper()
	out := run(t, time.Minute, "", nil, bin, "version", "--json")
	var info struct {
		Version string `json:"version"`
		Commit  string `json:"commit"`
		Date    string `json:"date"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("version --json: %v\n%s", err, out)
	}
	if info.Version != version {
		t.Errorf("%s version = %q, want the snapshot version %q", bin, info.Version, version)
	}
	if commit != "" && info.Commit != commit {
		t.Errorf("%s commit = %q, want %q", bin, info.Commit, commit)
	}
	if _, err := time.Parse(time.RFC3339, info.Date); err != nil {
		t.Errorf("%s date %q is not the injected RFC 3339 build date: %v", bin, info.Date, err)
	}
}

// assertStatic fails when the ELF binary asks for a dynamic loader.
func assertStatic(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked (has PT_INTERP)", bin)
		}
	}
}

func tarNames(t *testing.T, path string) []string {
	t.Helper()
	var names []string
	walkTar(t, path, func(h *tar.Header, _ io.Reader) bool {
		if h.Typeflag == tar.TypeReg {
			names = append(names, h.Name)
		}
		return true
	})
	slices.Sort(names)
	return names
}

func extractFile(t *testing.T, archive, name, dst string) {
	t.Helper()
	found := false
	walkTar(t, archive, func(h *tar.Header, r io.Reader) bool {
		if h.Name != name {
			return true
		}
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(f, r); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		found = true
		return false
	})
	if !found {
		t.Fatalf("%s not in %s", name, archive)
	}
}

func walkTar(t *testing.T, path string, fn func(*tar.Header, io.Reader) bool) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if !fn(h, tr) {
			return
		}
	}
}

func readChecksums(t *testing.T, path string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("%s: malformed line %q", path, line)
		}
		sums[name] = sum
	}
	return sums
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
