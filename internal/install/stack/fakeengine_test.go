package stack

import (
	"context"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"
	"time"
)

// fakeEngine keeps containers, networks and volumes in memory, for unit
// tests of ordering, labelling and idempotence. The real adapter is tested
// against a real engine in docker_test.go.
type fakeEngine struct {
	mu         sync.Mutex
	pingErr    error
	stuck      bool // health checks never pass
	images     map[string]string
	containers map[string]*Container
	networks   map[string]Network
	volumes    map[string]Volume
	calls      []string
	seq        int
}

func newFakeEngine(images ...string) *fakeEngine {
	f := &fakeEngine{images: map[string]string{}, containers: map[string]*Container{}, networks: map[string]Network{}, volumes: map[string]Volume{}}
	for _, im := range images {
		f.images[im] = "sha256:" + im
	}
	return f
}

func (f *fakeEngine) record(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

// creates lists the calls that created something.
func (f *fakeEngine) creates() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if strings.Contains(c, "create") {
			out = append(out, c)
		}
	}
	return out
}

func matches(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func (f *fakeEngine) Ping(context.Context) error { return f.pingErr }

func (f *fakeEngine) ImageID(_ context.Context, ref string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.images[ref], nil
}

func (f *fakeEngine) ImagePull(_ context.Context, ref string, progress func(PullProgress)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("pull %s", ref)
	progress(PullProgress{ID: "layer1", Status: "Pull complete"})
	f.images[ref] = "sha256:pulled-" + ref
	return nil
}

func (f *fakeEngine) NetworkList(_ context.Context, labels map[string]string) ([]Network, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Network
	for _, n := range f.networks {
		if matches(n.Labels, labels) {
			out = append(out, n)
		}
	}
	return out, nil
}

func (f *fakeEngine) NetworkCreate(_ context.Context, n NetworkSpec) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("network create %s", n.Name)
	f.networks[n.Name] = Network{ID: n.Name, Name: n.Name, Labels: n.Labels}
	return n.Name, nil
}

func (f *fakeEngine) NetworkRemove(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("network remove %s", id)
	delete(f.networks, id)
	return nil
}

func (f *fakeEngine) VolumeList(_ context.Context, labels map[string]string) ([]Volume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Volume
	for _, v := range f.volumes {
		if matches(v.Labels, labels) {
			out = append(out, v)
		}
	}
	return out, nil
}

func (f *fakeEngine) VolumeCreate(_ context.Context, v VolumeSpec) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("volume create %s", v.Name)
	f.volumes[v.Name] = Volume{Name: v.Name, Labels: v.Labels}
	return nil
}

func (f *fakeEngine) VolumeRemove(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("volume remove %s", name)
	delete(f.volumes, name)
	return nil
}

func (f *fakeEngine) ContainerList(_ context.Context, labels map[string]string) ([]Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Container
	for _, c := range f.containers {
		if matches(c.Labels, labels) {
			out = append(out, *c)
		}
	}
	return out, nil
}

func (f *fakeEngine) ContainerCreate(_ context.Context, s ContainerSpec) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.containers {
		if c.Name == s.Name {
			return "", fmt.Errorf("conflict: name %s in use", s.Name)
		}
	}
	f.seq++
	id := fmt.Sprintf("c%02d-%s", f.seq, s.Name)
	f.record("container create %s", s.Name)
	c := &Container{ID: id, Name: s.Name, Image: s.Config.Image, Labels: maps.Clone(s.Config.Labels), State: "created", Created: time.Now()}
	if s.Config.Healthcheck != nil {
		c.Health = "starting"
	}
	for port, bs := range s.Host.PortBindings {
		for _, b := range bs {
			var hp uint16
			fmt.Sscan(b.HostPort, &hp)
			c.Ports = append(c.Ports, PortBinding{HostPort: hp, Target: port.Num(), Protocol: string(port.Proto())})
		}
	}
	f.containers[id] = c
	return id, nil
}

func (f *fakeEngine) ContainerStart(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("container start %s", id)
	c := f.containers[id]
	c.State = "running"
	c.StartedAt = time.Now()
	if c.Health != "" && !f.stuck {
		c.Health = "healthy"
	}
	return nil
}

func (f *fakeEngine) ContainerStop(_ context.Context, id string, _ time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("container stop %s", id)
	f.containers[id].State = "exited"
	return nil
}

func (f *fakeEngine) ContainerRemove(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("container remove %s", id)
	delete(f.containers, id)
	return nil
}

func (f *fakeEngine) ContainerInspect(_ context.Context, id string) (Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return Container{}, fmt.Errorf("no such container %s", id)
	}
	return *c, nil
}

func (f *fakeEngine) ContainerLogs(context.Context, string, LogOptions) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader("")), nil
}
