package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Docker is the Engine over the moby client.
type Docker struct {
	c *client.Client
}

// NewDocker builds a client from the environment (DOCKER_HOST, DOCKER_TLS_*,
// DOCKER_API_VERSION) without dialling; the API version is negotiated on
// the first call, so old engines (API >= 1.40) work.
func NewDocker() (*Docker, error) {
	c, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return &Docker{c: c}, nil
}

// NewDockerAt is NewDocker with an explicit engine address ("" keeps the
// environment's DOCKER_HOST or the platform default).
func NewDockerAt(host string) (*Docker, error) {
	opts := []client.Opt{client.FromEnv}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	}
	c, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return &Docker{c: c}, nil
}

// Host is the engine address the client talks to, for messages.
func (d *Docker) Host() string { return d.c.DaemonHost() }

// Close releases the client's connections.
func (d *Docker) Close() error { return d.c.Close() }

// Client exposes the moby client for what Engine does not cover (tests
// build images with it).
func (d *Docker) Client() *client.Client { return d.c }

func (d *Docker) Ping(ctx context.Context) error {
	_, err := d.c.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	return err
}

func (d *Docker) ImageID(ctx context.Context, ref string) (string, error) {
	res, err := d.c.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("inspect image %s: %w", ref, err)
	}
	return res.ID, nil
}

func (d *Docker) ImagePull(ctx context.Context, ref string, progress func(PullProgress)) error {
	resp, err := d.c.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err != nil {
		return err
	}
	defer resp.Close()
	for msg, err := range resp.JSONMessages(ctx) {
		if err != nil {
			return err
		}
		if msg.Error != nil {
			return errors.New(msg.Error.Message)
		}
		if progress != nil {
			p := PullProgress{ID: msg.ID, Status: msg.Status}
			if msg.Progress != nil && msg.Progress.Total > 0 {
				p.Progress = fmt.Sprintf("%d/%d MB", msg.Progress.Current>>20, msg.Progress.Total>>20)
			}
			progress(p)
		}
	}
	return nil
}

func labelFilter(labels map[string]string) client.Filters {
	f := make(client.Filters)
	for k, v := range labels {
		f.Add("label", k+"="+v)
	}
	return f
}

func (d *Docker) NetworkList(ctx context.Context, labels map[string]string) ([]Network, error) {
	res, err := d.c.NetworkList(ctx, client.NetworkListOptions{Filters: labelFilter(labels)})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	out := make([]Network, 0, len(res.Items))
	for _, n := range res.Items {
		out = append(out, Network{ID: n.ID, Name: n.Name, Labels: n.Labels})
	}
	return out, nil
}

func (d *Docker) NetworkCreate(ctx context.Context, n NetworkSpec) (string, error) {
	res, err := d.c.NetworkCreate(ctx, n.Name, client.NetworkCreateOptions{
		Driver: n.Driver, Internal: n.Internal, Options: n.Options, Labels: n.Labels,
	})
	if err != nil {
		return "", fmt.Errorf("create network %s: %w", n.Name, err)
	}
	return res.ID, nil
}

func (d *Docker) NetworkRemove(ctx context.Context, id string) error {
	_, err := d.c.NetworkRemove(ctx, id, client.NetworkRemoveOptions{})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove network %s: %w", id, err)
	}
	return nil
}

func (d *Docker) VolumeList(ctx context.Context, labels map[string]string) ([]Volume, error) {
	res, err := d.c.VolumeList(ctx, client.VolumeListOptions{Filters: labelFilter(labels)})
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	out := make([]Volume, 0, len(res.Items))
	for _, v := range res.Items {
		out = append(out, Volume{Name: v.Name, Labels: v.Labels})
	}
	return out, nil
}

func (d *Docker) VolumeCreate(ctx context.Context, v VolumeSpec) error {
	_, err := d.c.VolumeCreate(ctx, client.VolumeCreateOptions{
		Name: v.Name, Driver: v.Driver, DriverOpts: v.Options, Labels: v.Labels,
	})
	if err != nil {
		return fmt.Errorf("create volume %s: %w", v.Name, err)
	}
	return nil
}

func (d *Docker) VolumeRemove(ctx context.Context, name string) error {
	_, err := d.c.VolumeRemove(ctx, name, client.VolumeRemoveOptions{})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	return nil
}

func (d *Docker) ContainerList(ctx context.Context, labels map[string]string) ([]Container, error) {
	res, err := d.c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: labelFilter(labels)})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]Container, 0, len(res.Items))
	for _, s := range res.Items {
		c := Container{
			ID: s.ID, Image: s.Image, ImageID: s.ImageID, Labels: s.Labels,
			State: string(s.State), Created: time.Unix(s.Created, 0),
			Health: healthFromStatus(s.Status),
		}
		if s.Health != nil && s.Health.Status != container.NoHealthcheck {
			c.Health = string(s.Health.Status)
		}
		if len(s.Names) > 0 {
			c.Name = strings.TrimPrefix(s.Names[0], "/")
		}
		for _, p := range s.Ports {
			if p.PublicPort == 0 {
				continue
			}
			ip := ""
			if p.IP.IsValid() {
				ip = p.IP.String()
			}
			c.Ports = append(c.Ports, PortBinding{HostIP: ip, HostPort: p.PublicPort, Target: p.PrivatePort, Protocol: p.Type})
		}
		out = append(out, c)
	}
	return out, nil
}

// healthFromStatus reads health from the list's status text ("Up 3 seconds
// (healthy)"), because engines before API 1.52 do not list it separately.
func healthFromStatus(status string) string {
	for _, h := range []string{"health: starting", "unhealthy", "healthy"} {
		if strings.Contains(status, "("+h+")") {
			return strings.TrimPrefix(h, "health: ")
		}
	}
	return ""
}

func (d *Docker) ContainerCreate(ctx context.Context, c ContainerSpec) (string, error) {
	res, err := d.c.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: c.Name, Config: c.Config, HostConfig: c.Host, NetworkingConfig: c.Networking,
	})
	if err != nil {
		return "", fmt.Errorf("create container %s: %w", c.Name, err)
	}
	return res.ID, nil
}

func (d *Docker) ContainerStart(ctx context.Context, id string) error {
	if _, err := d.c.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("start container %s: %w", shortID(id), err)
	}
	return nil
}

func (d *Docker) ContainerStop(ctx context.Context, id string, grace time.Duration) error {
	secs := int(grace.Seconds())
	_, err := d.c.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &secs})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("stop container %s: %w", shortID(id), err)
	}
	return nil
}

func (d *Docker) ContainerRemove(ctx context.Context, id string) error {
	_, err := d.c.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %s: %w", shortID(id), err)
	}
	return nil
}

func (d *Docker) ContainerInspect(ctx context.Context, id string) (Container, error) {
	res, err := d.c.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return Container{}, fmt.Errorf("inspect container %s: %w", shortID(id), err)
	}
	r := res.Container
	c := Container{ID: r.ID, Name: strings.TrimPrefix(r.Name, "/"), ImageID: r.Image, RestartCount: r.RestartCount}
	if t, err := time.Parse(time.RFC3339Nano, r.Created); err == nil {
		c.Created = t
	}
	if r.Config != nil {
		c.Image = r.Config.Image
		c.Labels = maps.Clone(r.Config.Labels)
		c.TTY = r.Config.Tty
	}
	if s := r.State; s != nil {
		c.State = string(s.Status)
		c.ExitCode = s.ExitCode
		if t, err := time.Parse(time.RFC3339Nano, s.StartedAt); err == nil && t.Year() > 1 {
			c.StartedAt = t
		}
		if s.Health != nil && s.Health.Status != container.NoHealthcheck {
			c.Health = string(s.Health.Status)
		}
	}
	if r.NetworkSettings != nil {
		for port, bs := range r.NetworkSettings.Ports {
			for _, b := range bs {
				var hp uint16
				_, _ = fmt.Sscan(b.HostPort, &hp)
				ip := ""
				if b.HostIP.IsValid() {
					ip = b.HostIP.String()
				}
				c.Ports = append(c.Ports, PortBinding{HostIP: ip, HostPort: hp, Target: port.Num(), Protocol: string(port.Proto())})
			}
		}
	}
	return c, nil
}

func (d *Docker) ContainerLogs(ctx context.Context, id string, o LogOptions) (io.ReadCloser, error) {
	tail := o.Tail
	if tail == "" {
		tail = "all"
	}
	rc, err := d.c.ContainerLogs(ctx, id, client.ContainerLogsOptions{
		ShowStdout: true, ShowStderr: true, Follow: o.Follow, Tail: tail, Timestamps: o.Timestamps,
	})
	if err != nil {
		return nil, fmt.Errorf("container logs %s: %w", shortID(id), err)
	}
	return rc, nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
