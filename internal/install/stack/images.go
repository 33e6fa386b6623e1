package stack

import (
	"context"
	"fmt"
	"io"

	"github.com/mozaiks/mozaiks/internal/uerr"
)

// Pull policies of --pull.
const (
	PullMissing = "missing"
	PullAlways  = "always"
	PullNever   = "never"
)

// ensureImages makes every service's image present under the pull policy
// and returns image IDs by service.
func ensureImages(ctx context.Context, eng Engine, p *Project, policy string, progress io.Writer) (map[string]string, error) {
	ids := map[string]string{}
	byRef := map[string]string{}
	for _, name := range sortedKeys(p.Services) {
		ref := p.Services[name].Image
		if ref == "" {
			return nil, uerr.New(uerr.ExitFailed, "service "+name+" has no image", "set image: for it; building images (build:) is not supported by mozaiks up")
		}
		if id, ok := byRef[ref]; ok {
			ids[name] = id
			continue
		}
		id, err := eng.ImageID(ctx, ref)
		if err != nil {
			return nil, err
		}
		if id == "" && policy == PullNever {
			return nil, uerr.New(uerr.ExitFailed,
				fmt.Sprintf("image %s (service %s) is not present locally and --pull never forbids pulling it", ref, name),
				"load or build it first (docker pull / docker load), or run with --pull missing")
		}
		if id == "" || policy == PullAlways {
			if err := pull(ctx, eng, ref, progress); err != nil {
				return nil, uerr.New(uerr.ExitFailed,
					fmt.Sprintf("pull image %s (service %s): %v", ref, name, err),
					"check the image name and that this machine reaches its registry (docker login for a private one)")
			}
			if id, err = eng.ImageID(ctx, ref); err != nil {
				return nil, err
			}
			if id == "" {
				return nil, uerr.New(uerr.ExitFailed, "image "+ref+" is still missing after the pull", "")
			}
		}
		byRef[ref] = id
		ids[name] = id
	}
	return ids, nil
}

// pull shows one line per layer state change: readable in a CI log as
// well as on a terminal, unlike a redrawn progress bar.
func pull(ctx context.Context, eng Engine, ref string, w io.Writer) error {
	fmt.Fprintf(w, "pulling %s\n", ref)
	last := map[string]string{}
	err := eng.ImagePull(ctx, ref, func(p PullProgress) {
		if last[p.ID] == p.Status {
			return
		}
		last[p.ID] = p.Status
		line := "  " + ref + ": "
		if p.ID != "" {
			line += p.ID + " "
		}
		line += p.Status
		if p.Progress != "" {
			line += " " + p.Progress
		}
		fmt.Fprintln(w, line)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "pulled %s\n", ref)
	return nil
}
