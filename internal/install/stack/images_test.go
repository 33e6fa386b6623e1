package stack

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/mozaiks/mozaiks/internal/testenv"
)

// needDocker returns the real engine, or skips (fails under CI) without one.
func needDocker(t testing.TB) *Docker {
	t.Helper()
	d, err := NewDocker()
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = d.Ping(ctx)
	}
	testenv.Need(t, err == nil, "a Docker engine", fmt.Sprintf("start dockerd (see .ci/setup.d/10-docker.sh): %v", err))
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// testImages are the stack's images built from our own binaries, FROM
// scratch, because nothing can be pulled: the runtime is `mozaiks serve`,
// Mongo is FerretDB behind the wire protocol (internal/testutil/fakemongo).
type testImages struct {
	Runtime, Mongo string
}

var (
	imagesOnce sync.Once
	images     testImages
	imagesErr  error
)

func buildTestImages(t testing.TB, d *Docker) testImages {
	t.Helper()
	imagesOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
		defer cancel()
		dir, err := os.MkdirTemp("", "stack-images")
		if err != nil {
			imagesErr = err
			return
		}
		defer os.RemoveAll(dir)
		images.Runtime, imagesErr = buildBinaryImage(ctx, d, dir, "github.com/mozaiks/mozaiks/cmd/mozaiks", "mozaiks",
			"mozaiks-test/runtime", `ENTRYPOINT ["/mozaiks", "serve"]`)
		if imagesErr != nil {
			return
		}
		images.Mongo, imagesErr = buildBinaryImage(ctx, d, dir, "github.com/mozaiks/mozaiks/internal/testutil/fakemongo", "fakemongo",
			"mozaiks-test/fakemongo", `ENTRYPOINT ["/fakemongo"]`)
	})
	if imagesErr != nil {
		t.Fatalf("build test images: %v", imagesErr)
	}
	return images
}

// buildBinaryImage builds pkg statically and wraps it in a FROM scratch
// image tagged by the binary's hash, so an unchanged binary reuses the image.
func buildBinaryImage(ctx context.Context, d *Docker, dir, pkg, bin, repo, entrypoint string) (string, error) {
	out := filepath.Join(dir, bin)
	var buildErr error
	// One retry: a build cache shared with concurrent builds occasionally
	// reports a spurious missing export file.
	for range 2 {
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
		b, err := cmd.CombinedOutput()
		if err == nil {
			buildErr = nil
			break
		}
		buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	if buildErr != nil {
		return "", buildErr
	}
	data, err := os.ReadFile(out)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	ref := repo + ":" + hex.EncodeToString(sum[:6])
	if id, err := d.ImageID(ctx, ref); err != nil || id != "" {
		return ref, err
	}
	dockerfile := "FROM scratch\nCOPY tmp /tmp\nCOPY " + bin + " /" + bin + "\n" + entrypoint + "\n"
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		body []byte
		dir  bool
	}{
		{name: "Dockerfile", mode: 0o644, body: []byte(dockerfile)},
		{name: "tmp/", mode: 0o1777, dir: true},
		{name: bin, mode: 0o755, body: data},
	} {
		h := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body)), ModTime: time.Unix(0, 0)}
		if f.dir {
			h.Typeflag = tar.TypeDir
		}
		if err := tw.WriteHeader(h); err != nil {
			return "", err
		}
		if _, err := tw.Write(f.body); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	res, err := d.Client().ImageBuild(ctx, &buf, client.ImageBuildOptions{Tags: []string{ref}, Remove: true, ForceRemove: true})
	if err != nil {
		return "", fmt.Errorf("build image %s: %w", ref, err)
	}
	defer res.Body.Close()
	dec := json.NewDecoder(res.Body)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			break
		} else if err != nil {
			return "", fmt.Errorf("build image %s: %w", ref, err)
		}
		if msg.Error != "" {
			return "", fmt.Errorf("build image %s: %s", ref, msg.Error)
		}
	}
	pruneOldTags(ctx, d, repo, ref)
	return ref, nil
}

// pruneOldTags removes this repo's images built from earlier binaries, best
// effort (one still used by a container stays), so tests do not fill the disk.
func pruneOldTags(ctx context.Context, d *Docker, repo, keep string) {
	res, err := d.Client().ImageList(ctx, client.ImageListOptions{Filters: make(client.Filters).Add("reference", repo)})
	if err != nil {
		return
	}
	for _, im := range res.Items {
		for _, tag := range im.RepoTags {
			if tag != keep {
				_, _ = d.Client().ImageRemove(ctx, tag, client.ImageRemoveOptions{PruneChildren: true})
			}
		}
	}
}

// uniqueProject is a fresh compose project name, removed with its volumes
// when the test ends.
func uniqueProject(t testing.TB, d *Docker) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "mzt-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := DownProject(ctx, d, name, true); err != nil {
			t.Errorf("clean up project %s: %v", name, err)
		}
	})
	return name
}
