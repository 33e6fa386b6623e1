package stack

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/moby/moby/api/types/container"
)

// TestInfraComposeFiles converts the compose files `mozaiks init` writes
// (kept equal to infra/compose) into containers, so `up` handles what init
// produces: env_file, container_name, deploy limits, logging, stop grace.
func TestInfraComposeFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, f := range []string{DevFile, ProdFile} {
		b, err := os.ReadFile(filepath.Join("..", "..", "..", "infra", "compose", f))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, f), string(b))
	}
	writeEnv(t, dir, map[string]string{"MONGO_ROOT_USERNAME": "root", "MONGO_ROOT_PASSWORD": "pw", "MONGO_URI": "mongodb://root:pw@mongo:27017/MozaiksAI?authSource=admin"})

	for _, prod := range []bool{false, true} {
		p, err := LoadProject(t.Context(), ProjectOptions{Dir: dir, Prod: prod, Name: "infra"})
		if err != nil {
			t.Fatalf("prod=%v: %v", prod, err)
		}
		order, err := StartOrder(p.Services)
		if err != nil || len(order) != 2 || order[0] != "mongo" {
			t.Fatalf("prod=%v: order %v, %v", prod, order, err)
		}
		specs := map[string]ContainerSpec{}
		for _, name := range order {
			spec, err := BuildSpec(p, p.Services[name], "sha256:x")
			if err != nil {
				t.Fatalf("prod=%v %s: %v", prod, name, err)
			}
			specs[name] = spec
		}
		if specs["mongo"].Name != "mozaiksai-mongo" || specs["runtime"].Name != "mozaiksai-runtime" {
			t.Errorf("prod=%v: names %s, %s", prod, specs["mongo"].Name, specs["runtime"].Name)
		}
		if m := specs["mongo"].Host.Mounts; len(m) != 1 || m[0].Source != "infra_mozaiksai_mongo_data" || m[0].Target != "/data/db" {
			t.Errorf("prod=%v: mongo mounts %+v", prod, m)
		}
		if !prod {
			continue
		}
		rt := specs["runtime"]
		if len(specs["mongo"].Host.PortBindings) != 0 {
			t.Error("prod mongo publishes a host port")
		}
		if rt.Config.StopTimeout == nil || *rt.Config.StopTimeout != 30 {
			t.Errorf("stop grace = %v", rt.Config.StopTimeout)
		}
		if rt.Host.Memory != 2<<30 || rt.Host.NanoCPUs != 1e9 || rt.Host.MemoryReservation != 512<<20 {
			t.Errorf("resources = %+v", rt.Host.Resources)
		}
		if rt.Host.RestartPolicy.Name != container.RestartPolicyUnlessStopped {
			t.Errorf("restart = %+v", rt.Host.RestartPolicy)
		}
		if rt.Host.LogConfig.Type != "json-file" || rt.Host.LogConfig.Config["max-size"] != "10m" {
			t.Errorf("logging = %+v", rt.Host.LogConfig)
		}
		env := map[string]bool{}
		for _, e := range rt.Config.Env {
			env[e] = true
		}
		if !env["AUTH_ENABLED=true"] || !env["MONGO_ROOT_USERNAME=root"] {
			t.Errorf("env (from environment: and env_file) = %v", rt.Config.Env)
		}
	}
}
