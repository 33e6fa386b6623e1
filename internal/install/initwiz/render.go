package initwiz

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"text/template"

	"github.com/mozaiks/mozaiks/templates"
)

// Images the generated compose files pin, to a minor version so that a
// re-pull brings fixes but never a new major (Mongo's on-disk format).
const (
	MongoImage = "mongo:7.0"
	CaddyImage = "caddy:2.8"
	NginxImage = "nginx:1.27"
)

// NginxHostConf is the nginx config for an nginx on the host
// (--proxy nginx-host); --proxy nginx writes nginx/mozaiks.conf for the
// compose proxy service instead. The two differ in the upstream only:
// 127.0.0.1:MOZAIKS_HTTP_PORT against runtime:8000 through Docker's DNS.
const NginxHostConf = "nginx/mozaiks-host.conf"

// File is one generated file, by path relative to the target directory.
type File struct {
	Path string
	Data []byte
	Mode fs.FileMode
}

// RenderOptions are the inputs that are not answers.
type RenderOptions struct {
	ImageTag string // mozaiks/runtime tag
	// Repo renders the repository's own infra/compose variant: the image is
	// built from infra/docker/Dockerfile and .env is optional.
	Repo bool
}

// view is what the templates see.
type view struct {
	Answers
	Secrets
	MongoURI    string // the URI the runtime uses (generated for bundled)
	K8sValue    string
	Unknown     []KV
	ImageTag    string
	Repo        bool
	MongoImage  string
	CaddyImage  string
	NginxImage  string
	HTTPS       bool
	Host        string
	ListenPort  int
	SiteAddress string
	ProxyPorts  []int
	// HostNginx renders the nginx config for an nginx on the host (upstream
	// 127.0.0.1:HTTPPort) rather than the compose proxy service.
	HostNginx bool
}

// Render produces every file for the answers, .env first. a must be normalised.
func Render(a Answers, s Secrets, unknown []KV, o RenderOptions) ([]File, error) {
	v := newView(a, s, unknown, o)
	type spec struct {
		tmpl, path string
		mode       fs.FileMode
		when       bool
	}
	specs := []spec{
		{"env.tmpl", ".env", 0o600, !o.Repo},
		{"compose/docker-compose.yml.tmpl", "docker-compose.yml", 0o644, true},
		{"compose/docker-compose.prod.yml.tmpl", "docker-compose.prod.yml", 0o644, true},
		{"proxy/Caddyfile.tmpl", "Caddyfile", 0o644, a.Proxy == "caddy"},
		{"proxy/nginx.conf.tmpl", "nginx/mozaiks.conf", 0o644, a.Proxy == "nginx"},
		{"proxy/nginx.conf.tmpl", NginxHostConf, 0o644, a.Proxy == "nginx-host"},
		{"k8s/deployment.yaml.tmpl", "k8s/deployment.yaml", 0o644, a.K8s},
		{"k8s/service.yaml.tmpl", "k8s/service.yaml", 0o644, a.K8s},
		{"k8s/secret.yaml.tmpl", "k8s/secret.yaml", 0o600, a.K8s},
		{"k8s/hpa.yaml.tmpl", "k8s/hpa.yaml", 0o644, a.K8s},
		{"k8s/pdb.yaml.tmpl", "k8s/pdb.yaml", 0o644, a.K8s},
		{"cloudrun/service.yaml.tmpl", "cloudrun/service.yaml", 0o644, a.CloudRun},
		{"azure/containerapp.yaml.tmpl", "azure/containerapp.yaml", 0o644, a.ContainerApps},
	}
	var files []File
	for _, sp := range specs {
		if !sp.when {
			continue
		}
		sv := v
		sv.HostNginx = sp.path == NginxHostConf
		data, err := renderTemplate(sp.tmpl, sv)
		if err != nil {
			return nil, err
		}
		files = append(files, File{Path: sp.path, Data: data, Mode: sp.mode})
	}
	return files, nil
}

func newView(a Answers, s Secrets, unknown []KV, o RenderOptions) view {
	e := endpointOf(a.PublicURL)
	v := view{
		Answers: a, Secrets: s, MongoURI: a.MongoURI, K8sValue: strconv.FormatBool(a.K8s),
		Unknown: unknown, ImageTag: o.ImageTag, Repo: o.Repo,
		MongoImage: MongoImage, CaddyImage: CaddyImage, NginxImage: NginxImage,
		HTTPS: e.https, Host: e.host, ListenPort: e.port,
	}
	if v.ImageTag == "" {
		v.ImageTag = "dev" // what `make image` tags a build that is not a release
	}
	if a.Database == "bundled" {
		v.MongoURI = bundledMongoURI(s)
	}
	// Caddy serves TLS on a bare host[:port]; "http://" opts out of it.
	v.SiteAddress = e.host
	if !e.https {
		v.SiteAddress = "http://" + e.host
	}
	if (e.https && e.port != 443) || (!e.https && e.port != 80) {
		v.SiteAddress += ":" + strconv.Itoa(e.port)
	}
	if e.https {
		// 80 stays open for the ACME HTTP challenge and the redirect to https.
		v.ProxyPorts = []int{80, e.port}
	} else {
		v.ProxyPorts = []int{e.port}
	}
	return v
}

// bundledMongoURI points the runtime at the compose service "mongo" as its root user.
func bundledMongoURI(s Secrets) string {
	return "mongodb://" + s.MongoRootUser + ":" + s.MongoRootPassword + "@mongo:27017/MozaiksAI?authSource=admin"
}

var funcs = template.FuncMap{
	"kv": func(k string, v any) string { return envLine(k, fmt.Sprint(v)) },
	// yamlq quotes a string for YAML: a JSON string is a valid YAML scalar.
	"yamlq": func(s string) (string, error) {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			return "", err
		}
		return strings.TrimSuffix(b.String(), "\n"), nil
	},
}

func renderTemplate(name string, v view) ([]byte, error) {
	src, err := fs.ReadFile(templates.FS, name)
	if err != nil {
		return nil, fmt.Errorf("read template %s: %w", name, err)
	}
	t, err := template.New(name).Option("missingkey=error").Funcs(funcs).Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("parse template %s: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, v); err != nil {
		return nil, fmt.Errorf("render template %s: %w", name, err)
	}
	out := b.Bytes()
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return out, nil
}
