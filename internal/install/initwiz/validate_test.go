package initwiz

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/mozaiks/mozaiks/internal/config"
	"github.com/mozaiks/mozaiks/internal/testenv"
)

// readDotEnvForTest reads a .env with both parsers that will read ours:
// docker compose's and the runtime's; they must agree.
func readDotEnvForTest(path string) (map[string]string, error) {
	rt, err := config.ReadDotEnv(path)
	if err != nil {
		return nil, err
	}
	dc, err := dotenv.Read(path)
	if err != nil {
		return nil, err
	}
	for k, v := range rt {
		if dc[k] != v {
			dc[k] = "MISMATCH runtime=" + v + " compose=" + dc[k]
		}
	}
	return dc, nil
}

// loadCompose loads a compose file the way docker compose does: .env of
// the directory for interpolation, full validation and normalisation.
func loadCompose(t *testing.T, dir, file string, env ...string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{filepath.Join(dir, file)},
		cli.WithWorkingDirectory(dir), cli.WithName("mztest"), cli.WithEnv(env), cli.WithEnvFiles(), cli.WithDotEnv, cli.WithInterpolation(true))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("compose-go rejects %s: %v", file, err)
	}
	return p
}

func TestComposeFilesLoad(t *testing.T) {
	t.Parallel()
	for _, c := range renderCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			a, _ := c.answers.Normalize()
			dir := writeFiles(t, renderFor(t, c, RenderOptions{ImageTag: "1.2.3"}))
			dev := loadCompose(t, dir, "docker-compose.yml")
			prod := loadCompose(t, dir, "docker-compose.prod.yml")
			for _, p := range []*types.Project{dev, prod} {
				rt, ok := p.Services["runtime"]
				// Names derive from the project, so two stacks can share a host.
				if !ok || rt.ContainerName != a.Project+"-runtime" || rt.Image != "mozaiks/runtime:1.2.3" {
					t.Fatalf("runtime service: %+v", rt)
				}
				if rt.HealthCheck == nil || strings.Join(rt.HealthCheck.Test, " ") != "CMD /mozaiks healthcheck" {
					t.Errorf("runtime healthcheck = %+v", rt.HealthCheck)
				}
				_, hasMongo := p.Services["mongo"]
				if hasMongo != (a.Database == "bundled") {
					t.Errorf("mongo service present = %v for database %s", hasMongo, a.Database)
				}
				if a.Database == "bundled" {
					if rt.DependsOn["mongo"].Condition != "service_healthy" {
						t.Errorf("runtime depends_on = %+v", rt.DependsOn)
					}
					if m := p.Services["mongo"]; m.ContainerName != a.Project+"-mongo" || m.Image != MongoImage || m.HealthCheck == nil {
						t.Errorf("mongo service: %+v", m)
					}
					if _, ok := p.Volumes["mozaiksai_mongo_data"]; !ok {
						t.Errorf("volumes = %v", p.Volumes)
					}
					// Interpolated from .env: the runtime gets the generated credentials.
					if got := *rt.Environment["MONGO_URI"]; got != bundledMongoURI(testSecrets) {
						t.Errorf("MONGO_URI = %q", got)
					}
				}
				if a.Database == "embedded" {
					if got := *rt.Environment["MOZAIKS_DATA_DIR"]; got != "/data" || len(rt.Volumes) != 1 || rt.Volumes[0].Source != "mozaiksai_data" {
						t.Errorf("embedded: MOZAIKS_DATA_DIR=%q volumes=%+v", got, rt.Volumes)
					}
				}
			}
			if got := *dev.Services["runtime"].Environment["AUTH_ENABLED"]; got != "false" {
				t.Errorf("dev AUTH_ENABLED = %s", got)
			}
			prt := prod.Services["runtime"]
			if *prt.Environment["AUTH_ENABLED"] != "true" || prt.Restart != "unless-stopped" || prt.Deploy == nil || prt.Deploy.Resources.Limits == nil {
				t.Errorf("prod runtime: auth=%s restart=%q deploy=%+v", *prt.Environment["AUTH_ENABLED"], prt.Restart, prt.Deploy)
			}
			if m, ok := prod.Services["mongo"]; ok && len(m.Ports) > 0 {
				t.Errorf("prod mongo publishes %+v", m.Ports)
			}
			proxy, hasProxy := prod.Services["proxy"]
			// nginx-host: the operator's own nginx, not a compose service.
			if hasProxy != (a.Proxy == "caddy" || a.Proxy == "nginx") {
				t.Errorf("prod proxy service present = %v for proxy %s", hasProxy, a.Proxy)
			}
			if a.Proxy != "none" && (len(prt.Ports) != 1 || prt.Ports[0].HostIP != "127.0.0.1") {
				t.Errorf("behind a proxy the runtime must publish on loopback only: %+v", prt.Ports)
			}
			if hasProxy {
				e := endpointOf(a.PublicURL)
				found := false
				for _, p := range proxy.Ports {
					found = found || p.Published == strconv.Itoa(e.port)
				}
				if !found {
					t.Errorf("proxy does not publish port %d: %+v", e.port, proxy.Ports)
				}
			}
		})
	}
}

func TestInfraComposeLoads(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, f := range []string{"docker-compose.yml", "docker-compose.prod.yml"} {
		data, err := os.ReadFile(filepath.Join(infraDir(), f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A fresh clone has no .env: the dev file must still load (Mongo without auth).
	dev := loadCompose(t, dir, "docker-compose.yml")
	rt := dev.Services["runtime"]
	if rt.Build == nil || rt.Build.Dockerfile != "infra/docker/Dockerfile" {
		t.Errorf("runtime build = %+v", rt.Build)
	}
	if got := *rt.Environment["MONGO_URI"]; got != "mongodb://mongo:27017/MozaiksAI" {
		t.Errorf("MONGO_URI without .env = %q", got)
	}
	if len(dev.Services["mongo"].Ports) != 1 || dev.Services["mongo"].Ports[0].Published != "27017" || rt.Ports[0].Published != "8000" {
		t.Errorf("ports: mongo %+v runtime %+v", dev.Services["mongo"].Ports, rt.Ports)
	}
	// The dev stack says localhost and binds only loopback (issue #15, item 8):
	// auth is off there.
	if dev.Services["mongo"].Ports[0].HostIP != "127.0.0.1" || rt.Ports[0].HostIP != "127.0.0.1" {
		t.Errorf("dev ports bind beyond loopback: mongo %+v runtime %+v", dev.Services["mongo"].Ports, rt.Ports)
	}
	// The prod file refuses to start without credentials, naming them.
	opts, _ := cli.NewProjectOptions([]string{filepath.Join(dir, "docker-compose.prod.yml")}, cli.WithWorkingDirectory(dir), cli.WithName("mztest"), cli.WithEnvFiles(), cli.WithDotEnv)
	if _, err := opts.LoadProject(context.Background()); err == nil || !strings.Contains(err.Error(), "MONGO_ROOT_") {
		t.Errorf("prod without .env: err = %v", err)
	}
	files := renderFor(t, renderCases[0], RenderOptions{})
	for _, f := range files {
		if f.Path == ".env" {
			os.WriteFile(filepath.Join(dir, ".env"), f.Data, 0o600)
		}
	}
	prod := loadCompose(t, dir, "docker-compose.prod.yml")
	if prod.Services["runtime"].Build == nil || len(prod.Services["mongo"].Ports) != 0 {
		t.Errorf("prod: %+v", prod.Services)
	}
}

func TestNginxConfigPassesNginxT(t *testing.T) {
	t.Parallel()
	nginx := testenv.NeedCommand(t, "nginx", "apt-get install nginx (.ci/setup.d/20-nginx-caddy.sh)")
	for _, c := range renderCases {
		if c.answers.Proxy != "nginx" && c.answers.Proxy != "nginx-host" {
			continue
		}
		confPath := filepath.Join("nginx", "mozaiks.conf")
		if c.answers.Proxy == "nginx-host" {
			confPath = NginxHostConf
		}
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := writeFiles(t, renderFor(t, c, RenderOptions{}))
			// The conf is an http-level include, as in the nginx image's conf.d;
			// certificates are looked up relative to the main config's directory.
			root := t.TempDir()
			writeSelfSigned(t, filepath.Join(root, "certs"))
			os.MkdirAll(filepath.Join(root, "logs"), 0o755)
			main := "pid " + filepath.Join(root, "nginx.pid") + ";\nerror_log stderr;\nevents {}\nhttp {\n  access_log off;\n  include " +
				filepath.Join(dir, confPath) + ";\n}\n"
			if err := os.WriteFile(filepath.Join(root, "nginx.conf"), []byte(main), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(nginx, "-t", "-e", "stderr", "-p", root+"/", "-c", filepath.Join(root, "nginx.conf")).CombinedOutput()
			if err != nil {
				t.Fatalf("nginx -t: %v\n%s", err, out)
			}
			conf, _ := os.ReadFile(filepath.Join(dir, confPath))
			for _, want := range []string{"location = /metrics", "$http_x_mozaiks_diag", "proxy_http_version 1.1;", "proxy_set_header Upgrade $http_upgrade;", "proxy_set_header Connection $mozaiks_connection_upgrade;",
				"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "proxy_read_timeout 3600s;", "proxy_buffering off;"} {
				if !bytes.Contains(conf, []byte(want)) {
					t.Errorf("nginx conf lacks %q", want)
				}
			}
		})
	}
}

func writeSelfSigned(t *testing.T, dir string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "agents.example.com"},
		DNSNames: []string{"agents.example.com"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "fullchain.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(filepath.Join(dir, "privkey.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
}

func TestCaddyfilePassesCaddyValidate(t *testing.T) {
	t.Parallel()
	caddy := testenv.NeedCommand(t, "caddy", "apt-get install caddy (.ci/setup.d/20-nginx-caddy.sh)")
	for _, c := range append(renderCases, renderCase{name: "http-caddy", answers: Answers{Deployment: "prod", Database: "bundled",
		OpenAIAPIKey: "k", Model: "m", PublicURL: "http://agents.example.com:8080", CORSOrigins: "http://agents.example.com:8080", AppID: "a", Proxy: "caddy"}}) {
		if c.answers.Proxy != "caddy" {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := writeFiles(t, renderFor(t, c, RenderOptions{}))
			home := t.TempDir()
			cmd := exec.Command(caddy, "validate", "--config", filepath.Join(dir, "Caddyfile"), "--adapter", "caddyfile")
			// Caddy provisions its storage while validating: keep it in the test's directory.
			cmd.Env = append(os.Environ(), "HOME="+home, "XDG_DATA_HOME="+home, "XDG_CONFIG_HOME="+home)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("caddy validate: %v\n%s", err, out)
			}
		})
	}
}

// Loaded by compose-go, the repository's files and init's bundled output
// describe the same services; only how the image is obtained (build from the
// repo) and whether .env may be absent differ.
func TestInfraComposeEquivalentToInitOutput(t *testing.T) {
	t.Parallel()
	for _, c := range infraCases() {
		dir := t.TempDir()
		infra, err := os.ReadFile(filepath.Join(infraDir(), c.name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "infra.yml"), infra, 0o644)
		for _, f := range renderFor(t, c, RenderOptions{ImageTag: "dev"}) {
			switch f.Path {
			case c.name:
				os.WriteFile(filepath.Join(dir, "init.yml"), f.Data, 0o644)
			case ".env":
				os.WriteFile(filepath.Join(dir, ".env"), f.Data, 0o600)
			}
		}
		fromInfra, fromInit := loadCompose(t, dir, "infra.yml"), loadCompose(t, dir, "init.yml")
		for name, s := range fromInfra.Services {
			if (s.Build != nil) != (name == "runtime") {
				t.Errorf("%s: infra service %s: built from the repo = %v", c.name, name, s.Build != nil)
			}
			s.Build = nil
			for i := range s.EnvFiles {
				s.EnvFiles[i].Required = true
			}
			fromInfra.Services[name] = s
		}
		for name, s := range fromInit.Services {
			for i := range s.EnvFiles {
				s.EnvFiles[i].Required = true
			}
			fromInit.Services[name] = s
		}
		if !reflect.DeepEqual(fromInfra.Services, fromInit.Services) || !reflect.DeepEqual(fromInfra.Volumes, fromInit.Volumes) {
			t.Errorf("%s: infra/compose and init output differ:\ninfra: %+v\ninit:  %+v", c.name, fromInfra.Services, fromInit.Services)
		}
	}
}
