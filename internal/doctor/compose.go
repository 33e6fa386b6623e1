package doctor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// composeFile is the little of a compose file the doctor needs: project
// name, published host ports, the ${VARS} it interpolates.
type composeFile struct {
	Path     string
	Project  string
	Ports    []publishedPort
	VarsUsed []string // ${VAR} without a default, in file order
}

type publishedPort struct {
	Service string
	HostIP  string
	Port    int
	Spec    string // as written, for hints
}

var composeNames = []string{"docker-compose.yml", "docker-compose.yaml", "compose.yaml", "compose.yml"}

// Compose finds and reads the compose file in Dir; (nil, nil) when there is none.
func (e *Env) Compose() (*composeFile, error) {
	e.composeOnce.Do(func() {
		for _, n := range composeNames {
			p := filepath.Join(e.Dir, n)
			b, err := os.ReadFile(p)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				e.composeErr = err
				return
			}
			e.compose, e.composeErr = parseCompose(p, b, e.lookupVar)
			return
		}
	})
	return e.compose, e.composeErr
}

// lookupVar resolves a compose variable the way docker compose does:
// environment first, then .env.
func (e *Env) lookupVar(k string) (string, bool) {
	if v, ok := e.Environ[k]; ok {
		return v, true
	}
	v, ok := e.DotEnv[k]
	return v, ok
}

var varRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

func interpolate(s string, lookup func(string) (string, bool), used *[]string) string {
	return varRef.ReplaceAllStringFunc(s, func(m string) string {
		g := varRef.FindStringSubmatch(m)
		name, op, def := g[1], g[2], g[3]
		if name == "" {
			name = g[4]
		}
		v, set := lookup(name)
		switch op {
		case ":-":
			if v == "" {
				return def
			}
		case "-":
			if !set {
				return def
			}
		case ":+":
			if v != "" {
				return def
			}
			return ""
		case "+":
			if set {
				return def
			}
			return ""
		default:
			if !set && used != nil {
				*used = append(*used, name)
			}
		}
		return v
	})
}

func parseCompose(path string, b []byte, lookup func(string) (string, bool)) (*composeFile, error) {
	var raw struct {
		Name     string `yaml:"name"`
		Services map[string]struct {
			Ports []yaml.Node `yaml:"ports"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("parse %s: %w", filepath.Base(path), err)
	}
	cf := &composeFile{Path: path}
	interpolate(string(b), lookup, &cf.VarsUsed)
	cf.Project = interpolate(raw.Name, lookup, nil)
	if cf.Project == "" {
		cf.Project = projectName(filepath.Base(filepath.Dir(mustAbs(path))))
	}
	for svc, s := range raw.Services {
		for _, n := range s.Ports {
			pp, ok, err := parsePort(n, lookup)
			if err != nil {
				return nil, fmt.Errorf("%s: service %s: %w", filepath.Base(path), svc, err)
			}
			if ok {
				pp.Service = svc
				cf.Ports = append(cf.Ports, pp)
			}
		}
	}
	return cf, nil
}

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}

// projectName normalises a directory name the way compose does.
func projectName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// parsePort reads the short ("127.0.0.1:8000:8000/tcp") or long syntax;
// ok is false for a port that publishes nothing on the host.
func parsePort(n yaml.Node, lookup func(string) (string, bool)) (publishedPort, bool, error) {
	if n.Kind == yaml.MappingNode {
		var long struct {
			Published string `yaml:"published"`
			HostIP    string `yaml:"host_ip"`
		}
		if err := n.Decode(&long); err != nil {
			return publishedPort{}, false, err
		}
		pub := interpolate(long.Published, lookup, nil)
		if pub == "" {
			return publishedPort{}, false, nil
		}
		p, err := strconv.Atoi(pub)
		if err != nil {
			return publishedPort{}, false, fmt.Errorf("published port %q is not a number", pub)
		}
		return publishedPort{HostIP: long.HostIP, Port: p, Spec: "published: " + pub}, true, nil
	}
	spec := interpolate(n.Value, lookup, nil)
	s, _, _ := strings.Cut(spec, "/")
	parts := strings.Split(s, ":")
	var host, hostIP string
	switch len(parts) {
	case 1:
		return publishedPort{}, false, nil // container port only: random host port
	case 2:
		host = parts[0]
	default:
		hostIP, host = strings.Join(parts[:len(parts)-2], ":"), parts[len(parts)-2]
	}
	if strings.Contains(host, "-") || host == "" {
		return publishedPort{}, false, nil // ranges and ephemeral ports are not checked
	}
	p, err := strconv.Atoi(host)
	if err != nil {
		return publishedPort{}, false, fmt.Errorf("port %q: host port %q is not a number", spec, host)
	}
	return publishedPort{HostIP: strings.Trim(hostIP, "[]"), Port: p, Spec: spec}, true, nil
}
