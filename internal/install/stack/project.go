package stack

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"

	"github.com/mozaiks/mozaiks/internal/uerr"
)

// Compose file names, as `mozaiks init` writes them.
const (
	DevFile  = "docker-compose.yml"
	ProdFile = "docker-compose.prod.yml"
)

// errNoComposeFile lets `down -p NAME` work where the file is gone.
var errNoComposeFile = errors.New("no compose file")

// ProjectOptions say which compose project to load.
type ProjectOptions struct {
	Dir  string // working directory, where .env is read (default ".")
	File string // compose file; relative to Dir; default DevFile, or ProdFile with Prod
	Prod bool
	Name string // project name; default as compose: COMPOSE_PROJECT_NAME, `name:`, or Dir's name
	// Environ replaces the process environment for interpolation when
	// non-nil (KEY=VALUE entries; the doctor passes the one it was given).
	Environ []string
}

// Project is a loaded compose project and what stack derives from it.
type Project struct {
	*types.Project
	// rawPorts holds each service's ports as written, before interpolation,
	// so a busy-port hint can name the variable that moves the port.
	rawPorts map[string][]string
}

// LoadProject reads the compose file and .env with compose-go, the loader
// docker compose uses, so interpolation, defaults and validation match.
func LoadProject(ctx context.Context, o ProjectOptions) (*Project, error) {
	dir := o.Dir
	if dir == "" {
		dir = "."
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("resolve --dir: %w", err)
	}
	file := o.File
	switch {
	case file != "" && o.Prod:
		return nil, uerr.Usage("use either --prod or -f FILE, not both")
	case file == "" && o.Prod:
		file = ProdFile
	case file == "":
		file = DevFile
	}
	if !filepath.IsAbs(file) {
		file = filepath.Join(dir, file)
	}
	if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
		return nil, uerr.Wrap(errNoComposeFile, uerr.ExitFailed, "no compose file at "+file, "run `mozaiks init` first, or pass --dir / -f FILE")
	}
	withEnv := cli.WithOsEnv
	if o.Environ != nil {
		withEnv = cli.WithEnv(o.Environ)
	}
	po, err := cli.NewProjectOptions([]string{file},
		cli.WithWorkingDirectory(dir),
		withEnv,
		cli.WithEnvFiles(),
		cli.WithDotEnv,
		cli.WithName(o.Name),
	)
	if err != nil {
		return nil, uerr.Usage("invalid project options: %v", err)
	}
	p, err := po.LoadProject(ctx)
	if err != nil {
		return nil, uerr.New(uerr.ExitFailed, "invalid compose file "+file+": "+err.Error(), "check it with `docker compose config`")
	}
	return &Project{Project: p, rawPorts: readRawPorts(p.ComposeFiles)}, nil
}

// readRawPorts is best effort: a file it cannot read just gives plainer hints.
func readRawPorts(files []string) map[string][]string {
	out := map[string][]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var doc struct {
			Services map[string]struct {
				Ports []any `yaml:"ports"`
			} `yaml:"services"`
		}
		if yaml.Unmarshal(b, &doc) != nil {
			continue
		}
		for name, s := range doc.Services {
			for _, p := range s.Ports {
				if str, ok := p.(string); ok {
					out[name] = append(out[name], str)
				}
			}
		}
	}
	return out
}

// orderedServices returns the enabled services in start order.
func (p *Project) orderedServices() ([]types.ServiceConfig, error) {
	names, err := StartOrder(p.Services)
	if err != nil {
		return nil, err
	}
	out := make([]types.ServiceConfig, 0, len(names))
	for _, n := range names {
		out = append(out, p.Services[n])
	}
	return out, nil
}
