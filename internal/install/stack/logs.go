package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/moby/moby/api/pkg/stdcopy"

	"github.com/mozaiks/mozaiks/internal/uerr"
)

// LogsOptions are the inputs of Logs.
type LogsOptions struct {
	Project    ProjectOptions
	Service    string // empty: every service
	Follow     bool
	Tail       string // "all" or a number
	Timestamps bool
	Out        io.Writer
}

// Logs writes the project's container logs to Out, each line prefixed with
// its service, stdout and stderr demultiplexed; with Follow it streams
// until ctx ends.
func Logs(ctx context.Context, eng Engine, o LogsOptions) error {
	if o.Tail == "" {
		o.Tail = "all"
	}
	if o.Tail != "all" && strings.Trim(o.Tail, "0123456789") != "" {
		return uerr.Usage("--tail must be a number or \"all\", not %q", o.Tail)
	}
	p, err := LoadProject(ctx, o.Project)
	if err != nil {
		return err
	}
	if o.Service != "" {
		if _, ok := p.Services[o.Service]; !ok {
			return uerr.Usage("no service %q in the compose file (services: %s)", o.Service, strings.Join(sortedKeys(p.Services), ", "))
		}
	}
	if err := ping(ctx, eng); err != nil {
		return err
	}
	filter := projectFilter(p.Name)
	if o.Service != "" {
		filter = serviceFilter(p.Name, o.Service)
	}
	cs, err := eng.ContainerList(ctx, filter)
	if err != nil {
		return err
	}
	if len(cs) == 0 {
		return uerr.New(uerr.ExitFailed, "no containers for project "+p.Name, "start it with `mozaiks up`")
	}
	slices.SortFunc(cs, func(a, b Container) int { return strings.Compare(a.Labels[LabelService], b.Labels[LabelService]) })
	width := 0
	for _, c := range cs {
		width = max(width, len(c.Labels[LabelService]))
	}
	out := &lockedWriter{w: o.Out}
	var wg sync.WaitGroup
	errs := make([]error, len(cs))
	for i, c := range cs {
		prefix := fmt.Sprintf("%-*s | ", width, c.Labels[LabelService])
		stream := func() {
			errs[i] = streamLogs(ctx, eng, c.ID, o, prefix, out)
		}
		if !o.Follow {
			stream() // one container after the other, so output is grouped
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); stream() }()
	}
	wg.Wait()
	err = errors.Join(errs...)
	if err != nil && ctx.Err() != nil && o.Follow {
		return nil // Ctrl-C is how one stops following
	}
	return err
}

func streamLogs(ctx context.Context, eng Engine, id string, o LogsOptions, prefix string, out *lockedWriter) error {
	c, err := eng.ContainerInspect(ctx, id)
	if err != nil {
		return err
	}
	rc, err := eng.ContainerLogs(ctx, id, LogOptions{Follow: o.Follow, Tail: o.Tail, Timestamps: o.Timestamps})
	if err != nil {
		return err
	}
	defer rc.Close()
	pw := &prefixWriter{prefix: prefix, out: out}
	if c.TTY {
		_, err = io.Copy(pw, rc)
	} else {
		_, err = stdcopy.StdCopy(pw, pw, rc)
	}
	pw.flush()
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("read logs of %s: %w", c.Name, err)
	}
	return nil
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) writeLine(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = io.WriteString(l.w, s)
}

// prefixWriter writes whole lines, each with its prefix, so lines from
// concurrently followed containers never interleave mid-line.
type prefixWriter struct {
	prefix  string
	out     *lockedWriter
	partial []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.partial = append(p.partial, b...)
	for {
		i := slices.Index(p.partial, '\n')
		if i < 0 {
			break
		}
		p.out.writeLine(p.prefix + string(p.partial[:i+1]))
		p.partial = p.partial[i+1:]
	}
	return len(b), nil
}

func (p *prefixWriter) flush() {
	if len(p.partial) > 0 {
		p.out.writeLine(p.prefix + string(p.partial) + "\n")
		p.partial = nil
	}
}
