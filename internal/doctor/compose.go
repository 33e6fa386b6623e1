package doctor

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/mozaiks/mozaiks/internal/install/stack"
)

// Deployment kinds the doctor tells apart, from the flags and the files in
// the directory; each is judged by what holds for it (a loopback LLM URL is
// a problem only where the runtime runs in a container, Mongo is probed from
// inside the runtime container in compose, and so on).
const (
	KindBare        = "bare"         // mozaiks serve on this host
	KindComposeDev  = "compose-dev"  // docker-compose.yml
	KindComposeProd = "compose-prod" // docker-compose.prod.yml (--prod, or .env says prod)
	KindK8s         = "k8s"          // Kubernetes manifests in k8s/, no compose file
)

// composeFile is what the doctor needs of the deployment's compose file, as
// stack (compose-go, the loader `mozaiks up` and docker compose use) reads it.
type composeFile struct {
	Path    string
	Project string
	Ports   []stack.PublishedPort
	// Services maps each service to its interpolated environment.
	Services map[string]map[string]string
	// VarsUsed are the variables the file interpolates without a default.
	VarsUsed []string
}

// detectKind decides the deployment kind: --prod wins, then .env's
// MOZAIKS_DEPLOYMENT=prod with the prod file present, then a dev compose
// file, then Kubernetes manifests, else a bare serve.
func detectKind(dir string, prod bool, dotenv map[string]string) string {
	exists := func(name string) bool {
		_, err := os.Stat(filepath.Join(dir, name))
		return err == nil
	}
	declared := strings.ToLower(strings.TrimSpace(dotenv[stack.EnvDeployment]))
	switch {
	case prod:
		return KindComposeProd
	case declared == stack.DeploymentProd && exists(stack.ProdFile):
		return KindComposeProd
	}
	for _, n := range composeNames {
		if exists(n) {
			return KindComposeDev
		}
	}
	if exists(stack.ProdFile) {
		return KindComposeProd
	}
	if exists(filepath.Join("k8s", "deployment.yaml")) {
		return KindK8s
	}
	return KindBare
}

var composeNames = []string{"docker-compose.yml", "docker-compose.yaml", "compose.yaml", "compose.yml"}

// DeploymentKind is Kind, detected from --prod and the directory's files
// on first use when not set.
func (e *Env) DeploymentKind() string {
	e.kindOnce.Do(func() {
		if e.Kind == "" {
			e.Kind = detectKind(e.Dir, e.prod, e.DotEnv)
		}
	})
	return e.Kind
}

// IsCompose says whether the runtime runs in a compose-managed container.
func (e *Env) IsCompose() bool {
	k := e.DeploymentKind()
	return k == KindComposeDev || k == KindComposeProd
}

// composePath is the compose file of the deployment kind, "" when none.
func (e *Env) composePath() string {
	switch e.DeploymentKind() {
	case KindComposeProd:
		return filepath.Join(e.Dir, stack.ProdFile)
	case KindComposeDev:
		for _, n := range composeNames {
			p := filepath.Join(e.Dir, n)
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	return ""
}

// Compose reads the deployment's compose file through stack; (nil, nil)
// when the deployment has none.
func (e *Env) Compose() (*composeFile, error) {
	e.composeOnce.Do(func() {
		path := e.composePath()
		if path == "" {
			return
		}
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			e.composeErr = errors.New("no compose file at " + path + " (run mozaiks init, or drop --prod)")
			return
		}
		cf := &composeFile{Path: path, Services: map[string]map[string]string{}}
		cf.VarsUsed, _ = stack.ReferencedVars(path)
		e.compose = cf // VarsUsed serves --fix even when loading fails
		environ := []string{}
		for k, v := range e.Environ {
			environ = append(environ, k+"="+v)
		}
		p, err := stack.LoadProject(context.Background(), stack.ProjectOptions{Dir: e.Dir, File: path, Environ: environ})
		if err != nil {
			e.composeErr = err
			return
		}
		cf.Project = p.Name
		if cf.Ports, err = p.PublishedPorts(); err != nil {
			e.composeErr = err
			return
		}
		for name, s := range p.Services {
			env := map[string]string{}
			for k, v := range s.Environment {
				if v != nil {
					env[k] = *v
				}
			}
			cf.Services[name] = env
		}
	})
	if e.composeErr != nil {
		return nil, e.composeErr
	}
	return e.compose, nil
}

// composeVars is the file's variables even when it does not load (a
// missing ${SECRET:?} is what --fix generates).
func (e *Env) composeVars() []string {
	_, _ = e.Compose()
	if e.compose == nil {
		return nil
	}
	return e.compose.VarsUsed
}

// runtimeService is the compose service that runs `mozaiks serve`.
const runtimeService = "runtime"

var requiredVar = regexp.MustCompile(`required variable ([A-Za-z_][A-Za-z0-9_]*) is missing`)

// composeLoadFailure is the result of a check that needs the compose file
// when it does not load. A ${VAR:?} that .env lacks is SEC01's finding (with
// --fix), so the checks that only need the file say so and skip.
func composeLoadFailure(err error) Result {
	if m := requiredVar.FindStringSubmatch(err.Error()); m != nil {
		return skip("needs " + m[1] + " in .env (see SEC01): the compose file does not load without it")
	}
	return fail("cannot read the compose file: "+truncate(err.Error(), 160), "fix the file (docker compose config shows the error in context)", nil)
}
