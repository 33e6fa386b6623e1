package doctor

import (
	"context"
	"strings"

	"github.com/mozaiks/mozaiks/internal/install/stack"
)

// DockerAPI is the narrow view of the engine the doctor needs. The real one
// is install/stack's Docker (the client `mozaiks up` uses); tests also run
// it against a real engine.
type DockerAPI interface {
	Ping(ctx context.Context) (apiVersion, osType string, err error)
	ServerVersion(ctx context.Context) (string, error)
	ProjectContainers(ctx context.Context, project string) ([]ContainerInfo, error)
	Logs(ctx context.Context, id string, tail int) (string, error)
	// Exec runs cmd inside a running container.
	Exec(ctx context.Context, id string, cmd []string) (stack.ExecResult, error)
	Close() error
}

// ContainerInfo is what DKR02 reports of one container.
type ContainerInfo struct {
	ID, Name, Service, Image string
	State                    string // running, exited, restarting ...
	Health                   string // healthy, unhealthy, starting, "" (no healthcheck)
	RestartCount             int
	ExitCode                 int
}

// docker returns the lazily created engine client.
func (e *Env) docker() (DockerAPI, error) {
	e.dockerOnce.Do(func() {
		if e.Docker != nil {
			e.dockerAPI, e.dockerErr = e.Docker()
			return
		}
		e.dockerAPI, e.dockerErr = NewStackDocker(e.DockerHost)
	})
	return e.dockerAPI, e.dockerErr
}

// NewStackDocker connects to host ("" for DOCKER_HOST or the platform default).
func NewStackDocker(host string) (DockerAPI, error) {
	d, err := stack.NewDockerAt(host)
	if err != nil {
		return nil, err
	}
	return &stackDocker{d: d}, nil
}

type stackDocker struct{ d *stack.Docker }

func (s *stackDocker) Close() error { return s.d.Close() }

func (s *stackDocker) Ping(ctx context.Context) (string, string, error) {
	_, api, osType, err := s.d.ServerVersion(ctx)
	return api, osType, err
}

func (s *stackDocker) ServerVersion(ctx context.Context) (string, error) {
	v, _, _, err := s.d.ServerVersion(ctx)
	return v, err
}

func (s *stackDocker) ProjectContainers(ctx context.Context, project string) ([]ContainerInfo, error) {
	list, err := s.d.ContainerList(ctx, stack.ProjectFilter(project))
	if err != nil {
		return nil, err
	}
	var out []ContainerInfo
	for _, c := range list {
		ci := ContainerInfo{ID: c.ID, Name: strings.TrimPrefix(c.Name, "/"), Image: c.Image, State: c.State, Health: c.Health,
			Service: c.Labels[stack.LabelService]}
		if in, err := s.d.ContainerInspect(ctx, c.ID); err == nil {
			ci.RestartCount, ci.ExitCode = in.RestartCount, in.ExitCode
			if in.Health != "" {
				ci.Health = in.Health
			}
		}
		out = append(out, ci)
	}
	return out, nil
}

func (s *stackDocker) Logs(ctx context.Context, id string, tail int) (string, error) {
	return stack.LastLogLines(ctx, s.d, id, tail)
}

func (s *stackDocker) Exec(ctx context.Context, id string, cmd []string) (stack.ExecResult, error) {
	return s.d.Exec(ctx, id, cmd)
}
