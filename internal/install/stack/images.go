package stack

import (
	"context"
	"fmt"
	"io"
	"strings"

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
				missingImageHint(ref, "load or build it first (docker pull / docker load), or run with --pull missing"))
		}
		if id != "" && policy != PullAlways && isOwnImage(ref) {
			// Say which local image is used: a stale one must not go unnoticed.
			fmt.Fprintf(progress, "using local image %s (%s)\n", ref, shortID(id))
		}
		if id == "" || policy == PullAlways {
			if err := pull(ctx, eng, ref, progress); err != nil {
				if id != "" {
					fmt.Fprintf(progress, "warning: pull %s failed (%s); using the local image %s\n", ref, pullCause(err), shortID(id))
					byRef[ref], ids[name] = id, id
					continue
				}
				return nil, uerr.Wrap(err, uerr.ExitFailed,
					fmt.Sprintf("image %s (service %s) is not on this machine and pulling it failed: %s", ref, name, pullCause(err)),
					missingImageHint(ref, "check the image name and that this machine reaches its registry (docker login for a private one)"))
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

// isOwnImage: the runtime image, which `make image` builds locally.
func isOwnImage(ref string) bool { return strings.HasPrefix(ref, "mozaiks/runtime:") }

// missingImageHint: the runtime image can be built here, whatever the registry.
func missingImageHint(ref, other string) string {
	if isOwnImage(ref) {
		tag := strings.TrimPrefix(ref, "mozaiks/runtime:")
		return "build it on this machine from the mozaiks source of that version: make image (tags mozaiks/runtime:" + tag +
			"), or copy it from one that has it: docker save " + ref + " | ssh THIS-HOST docker load"
	}
	return other
}

// pullCause is a short reason for a failed pull; an unreachable registry
// (offline, DNS, proxy) is the common one.
func pullCause(err error) string {
	s := err.Error()
	switch {
	case strings.Contains(s, "no such host") || strings.Contains(s, "dial tcp") || strings.Contains(s, "i/o timeout") ||
		strings.Contains(s, "network is unreachable") || strings.Contains(s, "TLS handshake timeout"):
		return "the registry is not reachable from this machine (offline?)"
	case strings.Contains(s, "not found") || strings.Contains(s, "manifest unknown") || strings.Contains(s, "pull access denied"):
		return "the registry has no such image (or needs docker login)"
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
