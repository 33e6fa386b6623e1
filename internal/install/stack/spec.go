package stack

import (
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
)

// containerName is compose's name for the service's first container.
func containerName(p *Project, s types.ServiceConfig) string {
	if s.ContainerName != "" {
		return s.ContainerName
	}
	return p.Name + "-" + s.Name + "-1"
}

// serviceNetworks returns the project networks the service joins, by key.
func serviceNetworks(s types.ServiceConfig) []string {
	if len(s.Networks) == 0 {
		return []string{"default"}
	}
	keys := make([]string, 0, len(s.Networks))
	for k := range s.Networks {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// networkName is the engine name of a project network key.
func (p *Project) networkName(key string) string {
	if n, ok := p.Networks[key]; ok && n.Name != "" {
		return n.Name
	}
	return p.Name + "_" + key
}

// volumeName is the engine name of a project volume key.
func (p *Project) volumeName(key string) string {
	if v, ok := p.Volumes[key]; ok && v.Name != "" {
		return v.Name
	}
	return p.Name + "_" + key
}

// BuildSpec turns a compose service into the container to create, with the
// compose labels (hash of the service config, image ID) attached.
func BuildSpec(p *Project, s types.ServiceConfig, imageID string) (ContainerSpec, error) {
	hash, err := ConfigHash(s)
	if err != nil {
		return ContainerSpec{}, err
	}
	if s.GetScale() > 1 {
		return ContainerSpec{}, fmt.Errorf("service %s: scale %d is not supported, only 1", s.Name, s.GetScale())
	}
	cfg := &container.Config{
		Image:      s.Image,
		Hostname:   s.Hostname,
		Domainname: s.DomainName,
		User:       s.User,
		WorkingDir: s.WorkingDir,
		Env:        envList(s.Environment),
		Cmd:        nilIfEmpty(s.Command),
		Entrypoint: nilIfEmpty(s.Entrypoint),
		Tty:        s.Tty,
		OpenStdin:  s.StdinOpen,
		StopSignal: s.StopSignal,
		Labels:     containerLabels(p, s, hash, imageID),
	}
	if s.StopGracePeriod != nil {
		secs := int(time.Duration(*s.StopGracePeriod).Seconds())
		cfg.StopTimeout = &secs
	}
	cfg.Healthcheck = healthConfig(s.HealthCheck)

	host := &container.HostConfig{
		RestartPolicy:  restartPolicy(s),
		Privileged:     s.Privileged,
		ReadonlyRootfs: s.ReadOnly,
		CapAdd:         s.CapAdd,
		CapDrop:        s.CapDrop,
		SecurityOpt:    s.SecurityOpt,
		ExtraHosts:     s.ExtraHosts.AsList(":"),
		Init:           s.Init,
		ShmSize:        int64(s.ShmSize),
		Sysctls:        s.Sysctls,
		GroupAdd:       s.GroupAdd,
		Resources:      resources(s),
	}
	if s.Logging != nil {
		host.LogConfig = container.LogConfig{Type: s.Logging.Driver, Config: s.Logging.Options}
	}
	if err := setPorts(s, cfg, host); err != nil {
		return ContainerSpec{}, err
	}
	if err := setMounts(p, s, host); err != nil {
		return ContainerSpec{}, err
	}
	spec := ContainerSpec{Name: containerName(p, s), Config: cfg, Host: host}
	switch mode := s.NetworkMode; {
	case mode == "host" || mode == "none" || mode == "bridge":
		host.NetworkMode = container.NetworkMode(mode)
	case mode != "":
		return ContainerSpec{}, fmt.Errorf("service %s: network_mode %q is not supported", s.Name, mode)
	default:
		nets := serviceNetworks(s)
		if len(nets) > 1 {
			// Engines before API 1.44 take one endpoint at create; joining
			// more needs connect calls this tool does not make yet.
			return ContainerSpec{}, fmt.Errorf("service %s: joining %d networks is not supported, only one", s.Name, len(nets))
		}
		name := p.networkName(nets[0])
		aliases := []string{s.Name}
		if nc := s.Networks[nets[0]]; nc != nil {
			aliases = append(aliases, nc.Aliases...)
		}
		host.NetworkMode = container.NetworkMode(name)
		spec.Networking = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			name: {Aliases: aliases},
		}}
	}
	return spec, nil
}

func nilIfEmpty(c types.ShellCommand) []string {
	if c == nil {
		return nil
	}
	return []string(c)
}

func envList(m types.MappingWithEquals) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		if v == nil {
			continue // declared without a value and unset: compose leaves it out
		}
		out = append(out, k+"="+*v)
	}
	slices.Sort(out)
	return out
}

func healthConfig(h *types.HealthCheckConfig) *container.HealthConfig {
	if h == nil {
		return nil
	}
	if h.Disable {
		return &container.HealthConfig{Test: []string{"NONE"}}
	}
	hc := &container.HealthConfig{Test: h.Test}
	if h.Interval != nil {
		hc.Interval = time.Duration(*h.Interval)
	}
	if h.Timeout != nil {
		hc.Timeout = time.Duration(*h.Timeout)
	}
	if h.StartPeriod != nil {
		hc.StartPeriod = time.Duration(*h.StartPeriod)
	}
	if h.StartInterval != nil {
		hc.StartInterval = time.Duration(*h.StartInterval)
	}
	if h.Retries != nil {
		hc.Retries = int(*h.Retries)
	}
	return hc
}

func restartPolicy(s types.ServiceConfig) container.RestartPolicy {
	if s.Restart != "" {
		name, count, _ := strings.Cut(s.Restart, ":")
		n, _ := strconv.Atoi(count)
		return container.RestartPolicy{Name: container.RestartPolicyMode(name), MaximumRetryCount: n}
	}
	if s.Deploy != nil && s.Deploy.RestartPolicy != nil {
		rp := s.Deploy.RestartPolicy
		var n int
		if rp.MaxAttempts != nil {
			n = int(*rp.MaxAttempts)
		}
		switch rp.Condition {
		case "none":
			return container.RestartPolicy{Name: container.RestartPolicyDisabled}
		case "on-failure":
			return container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: n}
		default: // "any", as the compose spec defaults it
			return container.RestartPolicy{Name: container.RestartPolicyAlways}
		}
	}
	return container.RestartPolicy{Name: container.RestartPolicyDisabled}
}

func resources(s types.ServiceConfig) container.Resources {
	r := container.Resources{
		Memory:            int64(s.MemLimit),
		MemoryReservation: int64(s.MemReservation),
		MemorySwap:        int64(s.MemSwapLimit),
		NanoCPUs:          int64(float64(s.CPUS) * 1e9),
		CPUShares:         s.CPUShares,
		CPUQuota:          s.CPUQuota,
		CPUPeriod:         s.CPUPeriod,
		CpusetCpus:        s.CPUSet,
	}
	if s.PidsLimit != 0 {
		pl := s.PidsLimit
		r.PidsLimit = &pl
	}
	if s.Deploy != nil {
		if l := s.Deploy.Resources.Limits; l != nil {
			if l.MemoryBytes != 0 {
				r.Memory = int64(l.MemoryBytes)
			}
			if l.NanoCPUs != 0 {
				r.NanoCPUs = int64(float64(l.NanoCPUs) * 1e9)
			}
			if l.Pids != 0 {
				pl := l.Pids
				r.PidsLimit = &pl
			}
		}
		if rs := s.Deploy.Resources.Reservations; rs != nil && rs.MemoryBytes != 0 {
			r.MemoryReservation = int64(rs.MemoryBytes)
		}
	}
	for name, u := range s.Ulimits {
		soft, hard := int64(u.Soft), int64(u.Hard)
		if u.Single != 0 {
			soft, hard = int64(u.Single), int64(u.Single)
		}
		r.Ulimits = append(r.Ulimits, &container.Ulimit{Name: name, Soft: soft, Hard: hard})
	}
	return r
}

// publishedPort is one host port a service publishes.
type publishedPort struct {
	Service  string
	HostIP   string
	Host     uint16
	Target   uint16
	Protocol string
	Raw      string // as written in the compose file, when known
}

func servicePorts(s types.ServiceConfig) ([]publishedPort, error) {
	var out []publishedPort
	for _, pc := range s.Ports {
		proto := pc.Protocol
		if proto == "" {
			proto = "tcp"
		}
		pp := publishedPort{Service: s.Name, HostIP: pc.HostIP, Target: uint16(pc.Target), Protocol: proto}
		if pc.Published != "" {
			n, err := strconv.ParseUint(pc.Published, 10, 16)
			if err != nil {
				return nil, fmt.Errorf("service %s: published port %q: only single ports are supported", s.Name, pc.Published)
			}
			pp.Host = uint16(n)
		}
		out = append(out, pp)
	}
	return out, nil
}

func setPorts(s types.ServiceConfig, cfg *container.Config, host *container.HostConfig) error {
	ports, err := servicePorts(s)
	if err != nil {
		return err
	}
	for _, e := range s.Expose {
		port, err := network.ParsePort(e)
		if err != nil {
			return fmt.Errorf("service %s: expose %q: %w", s.Name, e, err)
		}
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = network.PortSet{}
		}
		cfg.ExposedPorts[port] = struct{}{}
	}
	for _, pp := range ports {
		port, ok := network.PortFrom(pp.Target, network.IPProtocol(pp.Protocol))
		if !ok {
			return fmt.Errorf("service %s: invalid port %d/%s", s.Name, pp.Target, pp.Protocol)
		}
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = network.PortSet{}
		}
		cfg.ExposedPorts[port] = struct{}{}
		b := network.PortBinding{}
		if pp.Host != 0 {
			b.HostPort = strconv.Itoa(int(pp.Host))
		}
		if pp.HostIP != "" {
			ip, err := netip.ParseAddr(pp.HostIP)
			if err != nil {
				return fmt.Errorf("service %s: host_ip %q: %w", s.Name, pp.HostIP, err)
			}
			b.HostIP = ip
		}
		if host.PortBindings == nil {
			host.PortBindings = network.PortMap{}
		}
		host.PortBindings[port] = append(host.PortBindings[port], b)
	}
	return nil
}

func setMounts(p *Project, s types.ServiceConfig, host *container.HostConfig) error {
	for _, v := range s.Volumes {
		switch v.Type {
		case types.VolumeTypeVolume:
			m := mount.Mount{Type: mount.TypeVolume, Target: v.Target, ReadOnly: v.ReadOnly}
			if v.Source != "" {
				m.Source = p.volumeName(v.Source)
			}
			if v.Volume != nil && (v.Volume.NoCopy || v.Volume.Subpath != "") {
				m.VolumeOptions = &mount.VolumeOptions{NoCopy: v.Volume.NoCopy, Subpath: v.Volume.Subpath}
			}
			host.Mounts = append(host.Mounts, m)
		case types.VolumeTypeBind:
			if v.Bind == nil || bool(v.Bind.CreateHostPath) {
				// compose creates a missing bind source instead of failing
				if _, err := os.Stat(v.Source); os.IsNotExist(err) {
					if err := os.MkdirAll(v.Source, 0o755); err != nil {
						return fmt.Errorf("service %s: create bind source %s: %w", s.Name, v.Source, err)
					}
				}
			}
			m := mount.Mount{Type: mount.TypeBind, Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly}
			if v.Bind != nil && v.Bind.Propagation != "" {
				m.BindOptions = &mount.BindOptions{Propagation: mount.Propagation(v.Bind.Propagation)}
			}
			host.Mounts = append(host.Mounts, m)
		case types.VolumeTypeTmpfs:
			if host.Tmpfs == nil {
				host.Tmpfs = map[string]string{}
			}
			host.Tmpfs[v.Target] = ""
		default:
			return fmt.Errorf("service %s: volume type %q is not supported", s.Name, v.Type)
		}
	}
	for _, t := range s.Tmpfs {
		if host.Tmpfs == nil {
			host.Tmpfs = map[string]string{}
		}
		target, opts, _ := strings.Cut(t, ":")
		host.Tmpfs[target] = opts
	}
	return nil
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}
