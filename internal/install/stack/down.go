package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// DownOptions are the inputs of Down.
type DownOptions struct {
	Project ProjectOptions
	Volumes bool // also remove the project's named volumes (its data)
	Err     io.Writer
}

// Down removes the project's containers and networks, found by label so
// that it also removes what an older compose file created; volumes only
// when asked.
func Down(ctx context.Context, eng Engine, o DownOptions) error {
	if o.Err == nil {
		o.Err = io.Discard
	}
	name := o.Project.Name
	p, err := LoadProject(ctx, o.Project)
	switch {
	case err == nil:
		name = p.Name
	case errors.Is(err, errNoComposeFile) && name != "":
		// Everything is found by label, so the name is enough.
	default:
		return err
	}
	if err := ping(ctx, eng); err != nil {
		return err
	}
	return down(ctx, eng, name, o.Volumes, o.Err)
}

// DownProject is Down by project name alone, for cleanups that have no
// compose file at hand.
func DownProject(ctx context.Context, eng Engine, project string, volumes bool) error {
	return down(ctx, eng, project, volumes, io.Discard)
}

func down(ctx context.Context, eng Engine, project string, volumes bool, w io.Writer) error {
	cs, err := eng.ContainerList(ctx, projectFilter(project))
	if err != nil {
		return err
	}
	// Dependents first, so nothing loses a dependency while still running.
	order := stopOrder(cs)
	for _, c := range order {
		if c.State == "running" || c.State == "restarting" {
			if err := eng.ContainerStop(ctx, c.ID, 10*time.Second); err != nil {
				return err
			}
		}
		if err := eng.ContainerRemove(ctx, c.ID); err != nil {
			return err
		}
		fmt.Fprintf(w, "container %s: removed\n", c.Name)
	}
	nets, err := eng.NetworkList(ctx, projectFilter(project))
	if err != nil {
		return err
	}
	for _, n := range nets {
		if err := eng.NetworkRemove(ctx, n.ID); err != nil {
			return err
		}
		fmt.Fprintf(w, "network %s: removed\n", n.Name)
	}
	if !volumes {
		return nil
	}
	vols, err := eng.VolumeList(ctx, projectFilter(project))
	if err != nil {
		return err
	}
	for _, v := range vols {
		if err := eng.VolumeRemove(ctx, v.Name); err != nil {
			return err
		}
		fmt.Fprintf(w, "volume %s: removed\n", v.Name)
	}
	return nil
}

// stopOrder puts containers whose service others depend on (per the
// depends_on label) after those dependents.
func stopOrder(cs []Container) []Container {
	dependedOn := map[string]bool{}
	for _, c := range cs {
		for _, d := range splitDeps(c.Labels[LabelDependsOn]) {
			dependedOn[d] = true
		}
	}
	var first, last []Container
	for _, c := range cs {
		if dependedOn[c.Labels[LabelService]] {
			last = append(last, c)
		} else {
			first = append(first, c)
		}
	}
	return append(first, last...)
}

func splitDeps(label string) []string {
	var out []string
	for len(label) > 0 {
		var item string
		item, label, _ = strings.Cut(label, ",")
		name, _, _ := strings.Cut(item, ":")
		if name != "" {
			out = append(out, name)
		}
	}
	return out
}
