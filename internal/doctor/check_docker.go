package doctor

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

func checkDocker() Check {
	return Check{Code: "DKR01", Name: "Docker engine", Timeout: 10 * time.Second, Run: runDocker}
}

// dockerApplies: Docker matters when the directory holds a compose file or
// the operator pointed DOCKER_HOST somewhere; a bare `mozaiks serve` needs none.
func (e *Env) dockerApplies() (bool, string) {
	switch {
	case e.IsCompose(), e.DockerHost != "":
		return true, ""
	case e.DeploymentKind() == KindK8s:
		return false, "a Kubernetes deployment (manifests in k8s/, no compose file): Docker is not used here"
	}
	return false, "no compose file in " + dirName(e.Dir) + " and DOCKER_HOST unset: not a Docker deployment"
}

func runDocker(ctx context.Context, env *Env) Result {
	applies, why := env.dockerApplies()
	if !applies {
		return skip(why)
	}
	d := map[string]any{"host": orDash(env.DockerHost, "default (unix:///var/run/docker.sock)")}
	api, err := env.docker()
	if err != nil {
		return fail("cannot create a Docker client: "+truncate(err.Error(), 120), "fix DOCKER_HOST (unix:///var/run/docker.sock or tcp://host:2376)", d)
	}
	ver, osType, err := api.Ping(ctx)
	if err != nil {
		s := err.Error()
		cause := "the engine does not answer"
		switch {
		case strings.Contains(s, "no such file") || strings.Contains(s, "Cannot connect"):
			cause = "no Docker socket"
		case strings.Contains(s, "permission denied"):
			return fail("permission denied on the Docker socket", "add your user to the docker group (sudo usermod -aG docker $USER, then log in again) or run with sudo", d)
		case strings.Contains(s, "connection refused"):
			cause = "connection refused"
		}
		return fail("Docker engine not reachable: "+cause, "start Docker (sudo systemctl start docker, or Docker Desktop) or fix DOCKER_HOST", d)
	}
	d["api_version"], d["os_type"] = ver, osType
	if v, err := api.ServerVersion(ctx); err == nil {
		d["engine_version"] = v
	}
	return ok(fmt.Sprintf("Docker %v reachable (API %s)", orDash(fmt.Sprint(d["engine_version"]), "?"), ver), d)
}

func checkContainers() Check {
	return Check{Code: "DKR02", Name: "project containers", Needs: []string{"DKR01"}, Timeout: 15 * time.Second, Run: runContainers}
}

// crashLoopRestarts is how many restarts count as crash-looping.
const crashLoopRestarts = 3

func runContainers(ctx context.Context, env *Env) Result {
	cf, err := env.Compose()
	if err != nil {
		return composeLoadFailure(err)
	}
	if cf == nil {
		return skip("no compose file in " + dirName(env.Dir))
	}
	api, err := env.docker()
	if err != nil {
		return fail("no Docker client", "see DKR01", nil)
	}
	list, err := api.ProjectContainers(ctx, cf.Project)
	if err != nil {
		return fail("cannot list containers: "+truncate(err.Error(), 120), "see DKR01", nil)
	}
	d := map[string]any{"project": cf.Project}
	if len(list) == 0 {
		return warn("no containers of project "+cf.Project+" exist", "start the deployment: mozaiks up", d)
	}
	slices.SortFunc(list, func(a, b ContainerInfo) int { return strings.Compare(a.Name, b.Name) })
	var rows []string
	var bad, stopped []ContainerInfo
	for _, c := range list {
		rows = append(rows, fmt.Sprintf("%s: %s%s, restarts %d", c.Name, c.State, paren(c.Health), c.RestartCount))
		switch {
		case c.State == "restarting" || c.State == "dead" || c.RestartCount >= crashLoopRestarts:
			bad = append(bad, c)
		case c.State == "exited" || c.State == "created":
			// (An exited container keeps its last health status: not a finding.)
			// Stopped, not crash-looping (its restart policy would have it
			// restarting): the checks of what it serves (MDB01 for mongo,
			// RT01 for the runtime) carry the failure.
			stopped = append(stopped, c)
		case c.Health == "unhealthy":
			bad = append(bad, c)
		}
	}
	d["containers"] = rows
	if len(bad) == 0 && len(stopped) > 0 {
		var names []string
		logs := map[string]any{}
		for _, c := range stopped {
			names = append(names, fmt.Sprintf("%s (%s, exit code %d)", c.Name, c.State, c.ExitCode))
			if l, err := api.Logs(ctx, c.ID, 10); err == nil {
				logs[c.Name] = strings.Split(strings.TrimRight(l, "\n"), "\n")
			}
		}
		d["last_logs"] = logs
		return warn("stopped: "+strings.Join(names, ", "),
			env.upCommand()+" starts it again; mozaiks logs "+orDash(stopped[0].Service, stopped[0].Name)+" --tail 50 says why it stopped", d)
	}
	if len(bad) == 0 {
		return ok(fmt.Sprintf("%d container(s) of %s running", len(list), cf.Project), d)
	}
	logs := map[string]any{}
	var names []string
	for _, c := range bad {
		names = append(names, c.Name)
		if l, err := api.Logs(ctx, c.ID, 10); err == nil {
			logs[c.Name] = strings.Split(strings.TrimRight(l, "\n"), "\n")
		}
	}
	d["last_logs"] = logs
	what := "unhealthy or crash-looping"
	return fail(fmt.Sprintf("%s: %s", what, strings.Join(names, ", ")), "read the last log lines (details, or: mozaiks logs "+orDash(bad[0].Service, bad[0].Name)+" --tail 50) and fix the cause; mozaiks up recreates it", d)
}

func paren(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}
