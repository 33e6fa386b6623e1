package stack

import (
	"context"
	"testing"
	"time"
)

// BenchmarkUp measures `up` on a warm engine (images local, volumes kept):
// "create" is from no containers to every service healthy, "noop" is the
// re-run that finds everything unchanged. Run both in one invocation and
// compare: go test -run '^$' -bench BenchmarkUp -benchtime 5x ./internal/install/stack/
func BenchmarkUp(b *testing.B) {
	d := needDocker(b)
	im := buildTestImages(b, d)
	name := uniqueProject(b, d)
	dir := devProject(b, realEnv(b, im))
	ctx := context.Background()
	o := UpOptions{Project: ProjectOptions{Dir: dir, Name: name}, Pull: PullNever, Timeout: 2 * time.Minute}
	down := DownOptions{Project: o.Project}

	b.Run("create", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			if err := Down(ctx, d, down); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if _, err := Up(ctx, d, o); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("noop", func(b *testing.B) {
		if _, err := Up(ctx, d, o); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for range b.N {
			r, err := Up(ctx, d, o)
			if err != nil {
				b.Fatal(err)
			}
			for _, s := range r.Services {
				if s.Action != ActionUnchanged {
					b.Fatalf("no-op up changed %s: %s", s.Service, s.Action)
				}
			}
		}
	})
}
