package doctor

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"strings"

	"github.com/moby/moby/client"
)

// DockerAPI is the narrow view of the engine the doctor needs; the real one
// is the moby client, tests use it against a real engine when there is one.
type DockerAPI interface {
	Ping(ctx context.Context) (apiVersion, osType string, err error)
	ServerVersion(ctx context.Context) (string, error)
	ProjectContainers(ctx context.Context, project string) ([]ContainerInfo, error)
	Logs(ctx context.Context, id string, tail int) (string, error)
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
		e.dockerAPI, e.dockerErr = NewMobyDocker(e.DockerHost)
	})
	return e.dockerAPI, e.dockerErr
}

// NewMobyDocker connects to host ("" for the platform default).
func NewMobyDocker(host string) (DockerAPI, error) {
	opts := []client.Opt{client.WithAPIVersionNegotiation()}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	}
	c, err := client.New(opts...)
	if err != nil {
		return nil, err
	}
	return &mobyDocker{c: c}, nil
}

type mobyDocker struct{ c *client.Client }

func (m *mobyDocker) Close() error { return m.c.Close() }

func (m *mobyDocker) Ping(ctx context.Context) (string, string, error) {
	p, err := m.c.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	return p.APIVersion, p.OSType, err
}

func (m *mobyDocker) ServerVersion(ctx context.Context) (string, error) {
	v, err := m.c.ServerVersion(ctx, client.ServerVersionOptions{})
	return v.Version, err
}

func (m *mobyDocker) ProjectContainers(ctx context.Context, project string) ([]ContainerInfo, error) {
	list, err := m.c.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", "com.docker.compose.project="+project),
	})
	if err != nil {
		return nil, err
	}
	var out []ContainerInfo
	for _, s := range list.Items {
		ci := ContainerInfo{ID: s.ID, Image: s.Image, State: string(s.State), Service: s.Labels["com.docker.compose.service"]}
		if len(s.Names) > 0 {
			ci.Name = strings.TrimPrefix(s.Names[0], "/")
		}
		in, err := m.c.ContainerInspect(ctx, s.ID, client.ContainerInspectOptions{})
		if err == nil {
			ci.RestartCount = in.Container.RestartCount
			if st := in.Container.State; st != nil {
				ci.ExitCode = st.ExitCode
				if st.Health != nil {
					ci.Health = string(st.Health.Status)
				}
			}
		}
		out = append(out, ci)
	}
	return out, nil
}

func (m *mobyDocker) Logs(ctx context.Context, id string, tail int) (string, error) {
	rc, err := m.c.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: fmt.Sprint(tail)})
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 64<<10))
	if err != nil {
		return "", err
	}
	return demux(b), nil
}

// demux strips the engine's 8-byte stream headers from a non-TTY log
// stream; a TTY stream has none and is returned as is.
func demux(b []byte) string {
	var out bytes.Buffer
	for len(b) >= 8 && (b[0] == 1 || b[0] == 2) && b[1] == 0 && b[2] == 0 && b[3] == 0 {
		n := int(binary.BigEndian.Uint32(b[4:8]))
		if 8+n > len(b) {
			n = len(b) - 8
		}
		out.Write(b[8 : 8+n])
		b = b[8+n:]
	}
	out.Write(b)
	return out.String()
}
