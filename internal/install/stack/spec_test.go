package stack

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

func baseEnv(t testing.TB) map[string]string {
	return map[string]string{"MONGO_IMAGE": "mongo:7.0", "RUNTIME_IMAGE": "mozaiks/runtime:test", "PORT": "18000", "MONGO_PORT": "17017"}
}

func TestConfigHash(t *testing.T) {
	t.Parallel()
	base := baseEnv(t)
	hashes := func(env map[string]string) (mongo, runtime string) {
		p := loadDev(t, devProject(t, env), "hash")
		m, err := ConfigHash(p.Services["mongo"])
		if err != nil {
			t.Fatal(err)
		}
		r, err := ConfigHash(p.Services["runtime"])
		if err != nil {
			t.Fatal(err)
		}
		return m, r
	}
	m1, r1 := hashes(base)
	m2, r2 := hashes(base)
	if m1 != m2 || r1 != r2 {
		t.Fatalf("hash not stable across loads of the same files: %s/%s vs %s/%s", m1, r1, m2, r2)
	}
	if m1 == r1 {
		t.Fatal("different services hash the same")
	}
	changed := baseEnv(t)
	changed["LOG_LEVEL"] = "debug"
	m3, r3 := hashes(changed)
	if m3 != m1 {
		t.Error("mongo hash changed although only the runtime's env did")
	}
	if r3 == r1 {
		t.Error("runtime hash did not change with its environment")
	}

	// What a container does not depend on leaves the hash alone.
	p := loadDev(t, devProject(t, base), "hash")
	s := p.Services["runtime"]
	h0, _ := ConfigHash(s)
	s.DependsOn = nil
	scale := 1
	s.Scale = &scale
	s.PullPolicy = "always"
	if h, _ := ConfigHash(s); h != h0 {
		t.Error("depends_on / scale / pull_policy changed the hash")
	}
	s.MemLimit = 512 << 20
	if h, _ := ConfigHash(s); h == h0 {
		t.Error("mem_limit did not change the hash")
	}
}

func TestBuildSpec(t *testing.T) {
	t.Parallel()
	dir := devProject(t, baseEnv(t))
	p := loadDev(t, dir, "specproj")
	spec, err := BuildSpec(p, p.Services["runtime"], "sha256:abc")
	if err != nil {
		t.Fatal(err)
	}
	l := spec.Config.Labels
	wantLabels := map[string]string{
		LabelProject: "specproj", LabelService: "runtime", LabelNumber: "1", LabelOneoff: "False",
		LabelImage: "sha256:abc", LabelWorkingDir: dir, LabelConfigFiles: filepath.Join(dir, DevFile),
		LabelDependsOn: "mongo:service_healthy:false", "ai.mozaiks.role": "runtime",
	}
	for k, v := range wantLabels {
		if l[k] != v {
			t.Errorf("label %s = %q, want %q", k, l[k], v)
		}
	}
	if h, _ := ConfigHash(p.Services["runtime"]); l[LabelConfigHash] != h || len(h) != 64 {
		t.Errorf("config-hash label %q, want %q", l[LabelConfigHash], h)
	}
	if spec.Name != "specproj-runtime-1" {
		t.Errorf("name = %q", spec.Name)
	}
	if spec.Config.Image != "mozaiks/runtime:test" {
		t.Errorf("image = %q", spec.Config.Image)
	}
	wantEnv := []string{"LLM_PROVIDER=echo", "LOG_LEVEL=info", "MOZAIKS_DATA_DIR=/data"}
	if !slices.Equal(spec.Config.Env, wantEnv) {
		t.Errorf("env = %v, want %v", spec.Config.Env, wantEnv)
	}
	hc := spec.Config.Healthcheck
	if hc == nil || !slices.Equal(hc.Test, []string{"CMD", "/mozaiks", "healthcheck"}) || hc.Interval != time.Second || hc.Retries != 30 {
		t.Errorf("healthcheck = %+v", hc)
	}
	if spec.Host.RestartPolicy.Name != container.RestartPolicyUnlessStopped {
		t.Errorf("restart = %q", spec.Host.RestartPolicy.Name)
	}
	if spec.Host.Memory != 256<<20 {
		t.Errorf("memory = %d", spec.Host.Memory)
	}
	var bound []string
	for port, bs := range spec.Host.PortBindings {
		for _, b := range bs {
			bound = append(bound, b.HostPort+"->"+port.String())
		}
	}
	if !slices.Equal(bound, []string{"18000->8000/tcp"}) {
		t.Errorf("ports = %v", bound)
	}
	if len(spec.Host.Mounts) != 1 || spec.Host.Mounts[0] != (mount.Mount{Type: mount.TypeVolume, Source: "specproj_runtime-data", Target: "/data"}) {
		t.Errorf("mounts = %+v", spec.Host.Mounts)
	}
	if string(spec.Host.NetworkMode) != "specproj_default" {
		t.Errorf("network mode = %q", spec.Host.NetworkMode)
	}
	if ep := spec.Networking.EndpointsConfig["specproj_default"]; ep == nil || !slices.Contains(ep.Aliases, "runtime") {
		t.Errorf("endpoint = %+v", ep)
	}
}

func TestBuildSpecOptions(t *testing.T) {
	t.Parallel()
	compose := `services:
  job:
    image: busybox
    container_name: custom-job
    command: ["echo", "hi"]
    entrypoint: ["/bin/sh", "-c"]
    restart: on-failure:3
    user: "1000"
    stop_grace_period: 3s
    deploy:
      resources:
        limits: {memory: 64m, cpus: "0.5", pids: 64}
    volumes:
      - ./conf:/conf:ro
      - type: tmpfs
        target: /scratch
    healthcheck:
      disable: true
`
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "c.yml"), compose)
	p, err := LoadProject(t.Context(), ProjectOptions{Dir: dir, File: "c.yml", Name: "opts"})
	if err != nil {
		t.Fatal(err)
	}
	spec, err := BuildSpec(p, p.Services["job"], "sha256:x")
	if err != nil {
		t.Fatal(err)
	}
	c, h := spec.Config, spec.Host
	checks := []struct {
		what string
		ok   bool
	}{
		{"container_name", spec.Name == "custom-job"},
		{"command", slices.Equal(c.Cmd, []string{"echo", "hi"})},
		{"entrypoint", slices.Equal(c.Entrypoint, []string{"/bin/sh", "-c"})},
		{"restart", h.RestartPolicy == container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 3}},
		{"user", c.User == "1000"},
		{"stop grace", c.StopTimeout != nil && *c.StopTimeout == 3},
		{"cpus", h.NanoCPUs == 5e8},
		{"pids", h.PidsLimit != nil && *h.PidsLimit == 64},
		{"deploy memory", h.Memory == 64<<20},
		{"bind", len(h.Mounts) == 1 && h.Mounts[0].Type == mount.TypeBind && h.Mounts[0].Source == filepath.Join(dir, "conf") && h.Mounts[0].ReadOnly},
		{"tmpfs", h.Tmpfs != nil && strings.Contains(strings.Join(slices.Collect(mapsKeys(h.Tmpfs)), ","), "/scratch")},
		{"health disabled", c.Healthcheck != nil && slices.Equal(c.Healthcheck.Test, []string{"NONE"})},
	}
	for _, ch := range checks {
		if !ch.ok {
			t.Errorf("%s not applied: config %+v host %+v", ch.what, c, h)
		}
	}
}
