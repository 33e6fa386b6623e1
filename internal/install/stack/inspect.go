package stack

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/compose-spec/compose-go/v2/template"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	"gopkg.in/yaml.v3"
)

// What the doctor (and other read-only callers) ask of a project and the
// engine, so they reach compose and Docker through this package only.

// PublishedPort is one host port a service publishes.
type PublishedPort struct {
	Service  string
	HostIP   string
	Port     int
	Protocol string
	Spec     string // as written in the compose file, when known (names the variable that moves it)
}

// PublishedPorts lists the host ports the project publishes (ephemeral
// ports excluded), by service name.
func (p *Project) PublishedPorts() ([]PublishedPort, error) {
	var out []PublishedPort
	for _, name := range sortedKeys(p.Services) {
		ports, err := servicePorts(p.Services[name])
		if err != nil {
			return nil, err
		}
		for i, pp := range ports {
			if pp.Host == 0 {
				continue
			}
			spec := fmt.Sprintf("%d:%d", pp.Host, pp.Target)
			if raw := p.rawPorts[name]; i < len(raw) {
				spec = raw[i]
			}
			out = append(out, PublishedPort{Service: name, HostIP: pp.HostIP, Port: int(pp.Host), Protocol: pp.Protocol, Spec: spec})
		}
	}
	return out, nil
}

// MoveHint says how to move a busy published port: the .env variable in its
// published part when there is one, else the compose file.
func (pp PublishedPort) MoveHint() string {
	return portHint(publishedPort{Service: pp.Service, Raw: pp.Spec})
}

// ReferencedVars lists the variables a compose file interpolates without a
// default (${VAR} or ${VAR:?msg}), sorted: what .env must provide. It reads
// the file with compose-go's own variable extraction, so it works where
// loading fails for lack of those very variables.
func ReferencedVars(file string) ([]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var dict map[string]any
	if err := yaml.Unmarshal(b, &dict); err != nil {
		return nil, fmt.Errorf("parse %s: %w", file, err)
	}
	var out []string
	for name, v := range template.ExtractVariables(dict, template.DefaultPattern) {
		if v.Required || (v.DefaultValue == "" && v.PresenceValue == "") {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// ExecResult is the outcome of a command run inside a container.
type ExecResult struct {
	Stdout, Stderr string
	ExitCode       int
}

// Exec runs cmd in a running container and waits for it; output is capped
// at 1 MiB per stream.
func (d *Docker) Exec(ctx context.Context, id string, cmd []string) (ExecResult, error) {
	cr, err := d.c.ExecCreate(ctx, id, client.ExecCreateOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return ExecResult{}, fmt.Errorf("exec in %s: %w", shortID(id), err)
	}
	att, err := d.c.ExecAttach(ctx, cr.ID, client.ExecAttachOptions{})
	if err != nil {
		return ExecResult{}, fmt.Errorf("attach to exec in %s: %w", shortID(id), err)
	}
	defer att.Close()
	stop := context.AfterFunc(ctx, func() { att.Close() })
	defer stop()
	var out, errb bytes.Buffer
	if _, err := stdcopy.StdCopy(&capped{w: &out, n: 1 << 20}, &capped{w: &errb, n: 1 << 20}, att.Reader); err != nil && ctx.Err() == nil {
		return ExecResult{}, fmt.Errorf("read exec output: %w", err)
	}
	if ctx.Err() != nil {
		return ExecResult{}, ctx.Err()
	}
	in, err := d.c.ExecInspect(ctx, cr.ID, client.ExecInspectOptions{})
	if err != nil {
		return ExecResult{}, fmt.Errorf("inspect exec: %w", err)
	}
	return ExecResult{Stdout: out.String(), Stderr: errb.String(), ExitCode: in.ExitCode}, nil
}

// capped writes at most n bytes and drops the rest (still reporting success,
// so the stream is drained).
type capped struct {
	w io.Writer
	n int
}

func (c *capped) Write(p []byte) (int, error) {
	if c.n > 0 {
		k := min(len(p), c.n)
		_, _ = c.w.Write(p[:k])
		c.n -= k
	}
	return len(p), nil
}

// LastLogLines returns a container's last n log lines (stdout and stderr
// demultiplexed), as one string.
func LastLogLines(ctx context.Context, eng Engine, id string, n int) (string, error) {
	rc, err := eng.ContainerLogs(ctx, id, LogOptions{Tail: fmt.Sprint(n)})
	if err != nil {
		return "", err
	}
	defer rc.Close()
	c, err := eng.ContainerInspect(ctx, id)
	if err == nil && c.TTY {
		b, err := io.ReadAll(io.LimitReader(rc, 256<<10))
		return string(b), err
	}
	var buf bytes.Buffer
	_, err = stdcopy.StdCopy(&capped{w: &buf, n: 256 << 10}, &capped{w: &buf, n: 256 << 10}, rc)
	return buf.String(), err
}

// ProjectFilter selects a compose project's containers by label.
func ProjectFilter(project string) map[string]string { return projectFilter(project) }

// ServerVersion is the engine's version and API version, for reports.
func (d *Docker) ServerVersion(ctx context.Context) (version, apiVersion, osType string, err error) {
	p, err := d.c.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	if err != nil {
		return "", "", "", err
	}
	v, err := d.c.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return "", p.APIVersion, p.OSType, nil
	}
	return v.Version, p.APIVersion, p.OSType, nil
}
