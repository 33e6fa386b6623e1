// Package stack runs a compose project on a Docker engine through the Engine
// API, without the docker compose CLI: `mozaiks up`, `down`, `status` and
// `logs`. It loads the compose file with compose-go (the loader docker compose
// uses), labels everything the way compose does so `docker compose ps` sees
// the same project, and reaches Docker only through the narrow Engine
// interface, whose real implementation is the moby client adapter in docker.go.
package stack

import (
	"context"
	"io"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// Engine is the part of the Docker Engine API that stack uses. Lists filter
// by labels (all must match) and include stopped containers.
type Engine interface {
	Ping(ctx context.Context) error

	// ImageID returns the local image's ID, or "" when the image is absent.
	ImageID(ctx context.Context, ref string) (string, error)
	// ImagePull pulls ref, reporting progress lines to progress.
	ImagePull(ctx context.Context, ref string, progress func(PullProgress)) error

	NetworkList(ctx context.Context, labels map[string]string) ([]Network, error)
	NetworkCreate(ctx context.Context, n NetworkSpec) (string, error)
	NetworkRemove(ctx context.Context, id string) error

	VolumeList(ctx context.Context, labels map[string]string) ([]Volume, error)
	VolumeCreate(ctx context.Context, v VolumeSpec) error
	VolumeRemove(ctx context.Context, name string) error

	ContainerList(ctx context.Context, labels map[string]string) ([]Container, error)
	ContainerCreate(ctx context.Context, c ContainerSpec) (string, error)
	ContainerStart(ctx context.Context, id string) error
	// ContainerStop stops a container, killing it after grace.
	ContainerStop(ctx context.Context, id string, grace time.Duration) error
	ContainerRemove(ctx context.Context, id string) error
	ContainerInspect(ctx context.Context, id string) (Container, error)
	// ContainerLogs returns the raw log stream: multiplexed (stdcopy) unless
	// the container has a TTY.
	ContainerLogs(ctx context.Context, id string, o LogOptions) (io.ReadCloser, error)
}

// PullProgress is one progress message of an image pull.
type PullProgress struct {
	ID, Status, Progress string
}

// Network is a network as listed.
type Network struct {
	ID, Name string
	Labels   map[string]string
}

// NetworkSpec is a network to create.
type NetworkSpec struct {
	Name     string
	Driver   string
	Internal bool
	Options  map[string]string
	Labels   map[string]string
}

// Volume is a volume as listed.
type Volume struct {
	Name   string
	Labels map[string]string
}

// VolumeSpec is a volume to create.
type VolumeSpec struct {
	Name    string
	Driver  string
	Options map[string]string
	Labels  map[string]string
}

// ContainerSpec is a container to create, in the engine's own types.
type ContainerSpec struct {
	Name       string
	Config     *container.Config
	Host       *container.HostConfig
	Networking *network.NetworkingConfig
}

// Container is what stack knows about an existing container. List fills
// the summary fields; Inspect also fills StartedAt, RestartCount, ExitCode
// and TTY.
type Container struct {
	ID      string
	Name    string
	Image   string
	ImageID string
	Labels  map[string]string
	// State is the engine's state: created, running, exited, restarting...
	State string
	// Health is "" when the container has no health check, else starting,
	// healthy or unhealthy.
	Health       string
	Ports        []PortBinding
	Created      time.Time
	StartedAt    time.Time
	RestartCount int
	ExitCode     int
	TTY          bool
}

// PortBinding is one published port.
type PortBinding struct {
	HostIP   string `json:"host_ip,omitempty"`
	HostPort uint16 `json:"host_port"`
	Target   uint16 `json:"target"`
	Protocol string `json:"protocol"`
}

// LogOptions select what ContainerLogs returns.
type LogOptions struct {
	Follow     bool
	Tail       string // "all" or a number
	Timestamps bool
}
