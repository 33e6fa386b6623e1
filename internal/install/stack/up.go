package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/mozaiks/mozaiks/internal/uerr"
)

// UpOptions are the inputs of Up.
type UpOptions struct {
	Project ProjectOptions
	Pull    string        // PullMissing (default), PullAlways, PullNever
	Timeout time.Duration // for every service to become ready; default 3m
	Err     io.Writer     // progress
	// AllowMismatch starts the compose file even where .env declares the
	// other deployment kind (see CheckDeployment).
	AllowMismatch bool
}

// Actions Up reports per service.
const (
	ActionCreated   = "created"
	ActionRecreated = "recreated"
	ActionStarted   = "started"
	ActionUnchanged = "unchanged"
)

// ServiceResult is what Up did with one service.
type ServiceResult struct {
	Service     string
	ContainerID string
	Action      string
}

// UpResult lists the services in start order.
type UpResult struct {
	Project  string
	Services []ServiceResult
}

// Up applies the compose project: pre-flight (engine, ports, images) before
// anything is created, then network and volumes, then each service in
// dependency order, waiting for what it depends on, and finally for every
// service to be running and, where it has a health check, healthy.
func Up(ctx context.Context, eng Engine, o UpOptions) (*UpResult, error) {
	if o.Err == nil {
		o.Err = io.Discard
	}
	switch o.Pull {
	case "":
		o.Pull = PullMissing
	case PullMissing, PullAlways, PullNever:
	default:
		return nil, uerr.Usage("--pull must be missing, always or never, not %q", o.Pull)
	}
	if o.Timeout <= 0 {
		o.Timeout = 3 * time.Minute
	}
	if err := CheckDeployment(o.Project, o.AllowMismatch); err != nil {
		return nil, err
	}
	p, err := LoadProject(ctx, o.Project)
	if err != nil {
		return nil, err
	}
	services, err := p.orderedServices()
	if err != nil {
		return nil, err
	}
	if err := ping(ctx, eng); err != nil {
		return nil, err
	}
	own, err := eng.ContainerList(ctx, projectFilter(p.Name))
	if err != nil {
		return nil, err
	}
	if err := checkPorts(ctx, eng, p, own); err != nil {
		return nil, err
	}
	imageIDs, err := ensureImages(ctx, eng, p, o.Pull, o.Err)
	if err != nil {
		return nil, err
	}
	specs := map[string]ContainerSpec{}
	for _, s := range services {
		spec, err := BuildSpec(p, s, imageIDs[s.Name])
		if err != nil {
			return nil, uerr.New(uerr.ExitFailed, err.Error(), "edit the compose file")
		}
		specs[s.Name] = spec
	}

	if err := checkNames(ctx, eng, p, specs); err != nil {
		return nil, err
	}

	if err := ensureNetworks(ctx, eng, p, services, o.Err); err != nil {
		return nil, err
	}
	if err := ensureVolumes(ctx, eng, p, o.Err); err != nil {
		return nil, err
	}

	for _, c := range own {
		if _, ok := p.Services[c.Labels[LabelService]]; !ok {
			fmt.Fprintf(o.Err, "warning: container %s belongs to service %s, which the compose file no longer has; `mozaiks down` removes it\n", c.Name, c.Labels[LabelService])
		}
	}

	deadline := time.Now().Add(o.Timeout)
	res := &UpResult{Project: p.Name}
	ids := map[string]string{}
	for _, s := range services {
		for _, dep := range sortedKeys(s.DependsOn) {
			id, ok := ids[dep]
			if !ok {
				continue // optional dependency that is not in the project
			}
			if err := waitFor(ctx, eng, dep, id, s.DependsOn[dep].Condition, deadline); err != nil {
				return res, readinessFailure(err, o.Err)
			}
		}
		r, err := ensureContainer(ctx, eng, p, s, specs[s.Name], own)
		if err != nil {
			return res, err
		}
		fmt.Fprintf(o.Err, "container %s: %s\n", specs[s.Name].Name, r.Action)
		ids[s.Name] = r.ContainerID
		res.Services = append(res.Services, r)
	}
	for _, s := range services {
		cond := types.ServiceConditionStarted
		if s.HealthCheck != nil && !s.HealthCheck.Disable {
			cond = types.ServiceConditionHealthy
		}
		if isOneShot(p, s.Name) {
			cond = types.ServiceConditionCompletedSuccessfully
		}
		if err := waitFor(ctx, eng, s.Name, ids[s.Name], cond, deadline); err != nil {
			return res, readinessFailure(err, o.Err)
		}
		fmt.Fprintf(o.Err, "service %s: %s\n", s.Name, condWord(cond))
	}
	return res, nil
}

// isOneShot reports whether another service waits for s to complete: then
// s is a job that is meant to exit, and "ready" means exited with 0.
func isOneShot(p *Project, name string) bool {
	for _, s := range p.Services {
		if d, ok := s.DependsOn[name]; ok && d.Condition == types.ServiceConditionCompletedSuccessfully {
			return true
		}
	}
	return false
}

func ping(ctx context.Context, eng Engine) error {
	if err := eng.Ping(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		host := ""
		if h, ok := eng.(interface{ Host() string }); ok {
			host = " at " + h.Host()
		}
		return uerr.Prerequisite(err, "cannot reach the Docker engine"+host,
			"start Docker: `sudo systemctl start docker` (Linux) or open Docker Desktop; check DOCKER_HOST")
	}
	return nil
}

// readinessFailure prints the failing container's last log lines, where an
// operator looks first, and turns the failure into a user error.
func readinessFailure(err error, w io.Writer) error {
	var re *ReadinessError
	if !errors.As(err, &re) {
		return err
	}
	if len(re.LastLogs) > 0 {
		fmt.Fprintf(w, "last log lines of %s:\n", re.Service)
		for _, l := range re.LastLogs {
			fmt.Fprintf(w, "  %s | %s\n", re.Service, l)
		}
	}
	return uerr.Wrap(re, uerr.ExitFailed, fmt.Sprintf("service %s %s", re.Service, re.Reason),
		fmt.Sprintf("see `mozaiks logs %s`; raise --timeout if it is only slow", re.Service))
}

// ensureContainer keeps the service's container when its config hash and
// image are unchanged (starting it if stopped), and replaces it otherwise.
func ensureContainer(ctx context.Context, eng Engine, p *Project, s types.ServiceConfig, spec ContainerSpec, own []Container) (ServiceResult, error) {
	r := ServiceResult{Service: s.Name}
	var existing []Container
	for _, c := range own {
		if c.Labels[LabelService] == s.Name && c.Labels[LabelOneoff] != "True" {
			existing = append(existing, c)
		}
	}
	want := spec.Config.Labels
	for _, c := range existing {
		if c.Labels[LabelConfigHash] == want[LabelConfigHash] && c.Labels[LabelImage] == want[LabelImage] && c.Name == spec.Name {
			r.ContainerID = c.ID
			r.Action = ActionUnchanged
			if c.State != "running" && c.State != "restarting" {
				if err := eng.ContainerStart(ctx, c.ID); err != nil {
					return r, err
				}
				r.Action = ActionStarted
			}
			return r, removeOthers(ctx, eng, s, existing, c.ID)
		}
	}
	if err := removeOthers(ctx, eng, s, existing, ""); err != nil {
		return r, err
	}
	id, err := eng.ContainerCreate(ctx, spec)
	if err != nil {
		return r, err
	}
	r.ContainerID = id
	r.Action = ActionCreated
	if len(existing) > 0 {
		r.Action = ActionRecreated
	}
	return r, eng.ContainerStart(ctx, id)
}

func removeOthers(ctx context.Context, eng Engine, s types.ServiceConfig, cs []Container, keep string) error {
	grace := 10 * time.Second
	if s.StopGracePeriod != nil {
		grace = time.Duration(*s.StopGracePeriod)
	}
	for _, c := range cs {
		if c.ID == keep {
			continue
		}
		if c.State == "running" || c.State == "restarting" {
			if err := eng.ContainerStop(ctx, c.ID, grace); err != nil {
				return err
			}
		}
		if err := eng.ContainerRemove(ctx, c.ID); err != nil {
			return err
		}
	}
	return nil
}

func ensureNetworks(ctx context.Context, eng Engine, p *Project, services []types.ServiceConfig, w io.Writer) error {
	needed := map[string]bool{}
	for _, s := range services {
		if s.NetworkMode == "" {
			for _, n := range serviceNetworks(s) {
				needed[n] = true
			}
		}
	}
	// Look networks up by name: engines before API 1.44 would otherwise
	// happily create a second network with the same name.
	all, err := eng.NetworkList(ctx, nil)
	if err != nil {
		return err
	}
	for _, key := range sortedKeys(needed) {
		cfg := p.Networks[key]
		name := p.networkName(key)
		if cfg.External {
			continue
		}
		if i := slices.IndexFunc(all, func(n Network) bool { return n.Name == name }); i >= 0 {
			if proj := all[i].Labels[LabelProject]; proj != "" && proj != p.Name {
				return uerr.New(uerr.ExitFailed, fmt.Sprintf("network %s belongs to compose project %s", name, proj),
					"take that project down first, or give this one another name (-p)")
			}
			if all[i].Labels[LabelProject] == "" {
				fmt.Fprintf(w, "network %s exists but was not created by compose; using it\n", name)
			}
			continue
		}
		labels := map[string]string{LabelProject: p.Name, LabelNetwork: key, LabelVersion: composeVersion}
		for k, v := range cfg.Labels {
			labels[k] = v
		}
		if _, err := eng.NetworkCreate(ctx, NetworkSpec{Name: name, Driver: cfg.Driver, Internal: cfg.Internal, Options: cfg.DriverOpts, Labels: labels}); err != nil {
			return err
		}
		fmt.Fprintf(w, "network %s: created\n", name)
	}
	return nil
}

func ensureVolumes(ctx context.Context, eng Engine, p *Project, w io.Writer) error {
	all, err := eng.VolumeList(ctx, nil)
	if err != nil {
		return err
	}
	for _, key := range sortedKeys(p.Volumes) {
		cfg := p.Volumes[key]
		if cfg.External {
			continue
		}
		name := p.volumeName(key)
		if i := slices.IndexFunc(all, func(v Volume) bool { return v.Name == name }); i >= 0 {
			if all[i].Labels[LabelProject] == "" {
				// compose warns and uses it too: the data may be the user's.
				fmt.Fprintf(w, "volume %s exists but was not created by compose; using it\n", name)
			}
			continue
		}
		labels := map[string]string{LabelProject: p.Name, LabelVolume: key, LabelVersion: composeVersion}
		for k, v := range cfg.Labels {
			labels[k] = v
		}
		if err := eng.VolumeCreate(ctx, VolumeSpec{Name: name, Driver: cfg.Driver, Options: cfg.DriverOpts, Labels: labels}); err != nil {
			return err
		}
		fmt.Fprintf(w, "volume %s: created\n", name)
	}
	return nil
}

// checkNames fails before anything is created when a container name the
// project needs (container_name: mozaiksai-mongo, say) is taken by a
// container that is not this project's same service.
func checkNames(ctx context.Context, eng Engine, p *Project, specs map[string]ContainerSpec) error {
	all, err := eng.ContainerList(ctx, nil)
	if err != nil {
		return err
	}
	for _, svc := range sortedKeys(specs) {
		name := specs[svc].Name
		for _, c := range all {
			if c.Name != name {
				continue
			}
			if c.Labels[LabelProject] == p.Name && c.Labels[LabelService] == svc {
				continue // ours: kept or replaced
			}
			if proj := c.Labels[LabelProject]; proj != "" {
				// Another stack's container (maybe its database): never
				// advise removing it; give this stack its own names.
				return uerr.New(uerr.ExitFailed,
					fmt.Sprintf("container name %s (service %s) is taken by service %s of compose project %s, another stack on this host",
						name, svc, c.Labels[LabelService], proj),
					fmt.Sprintf("give this stack its own project name: mozaiks init --dir DIR --project-name NAME (MOZAIKS_PROJECT; "+
						"container names derive from it); if %s is this stack under its old name, stop that one first: mozaiks down -p %s", proj, proj))
			}
			return uerr.New(uerr.ExitFailed,
				fmt.Sprintf("container name %s (service %s) is taken by a container not created by compose", name, svc),
				fmt.Sprintf("if it is not needed, remove it (docker rm -f %s); otherwise give this stack its own project name: mozaiks init --project-name NAME", name))
		}
	}
	return nil
}
