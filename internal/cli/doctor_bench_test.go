//go:build !mozaiks_runtime

package cli

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/mozaiks/mozaiks/internal/config"
	"github.com/mozaiks/mozaiks/internal/doctor"
	"github.com/mozaiks/mozaiks/internal/doctor/doctortest"
	storemongo "github.com/mozaiks/mozaiks/internal/store/mongo"
)

// BenchmarkMongoCheck is the price of judging Mongo where the runtime
// reaches it: MDB01 in a compose deployment runs `mozaiks healthcheck
// --mongo` inside the runtime container (docker exec, a process start, a
// fresh client, 3 pings), against the same probe from the host to Mongo's
// published dev port (the baseline, same run, same server).
func BenchmarkMongoCheck(b *testing.B) {
	doctortest.NeedDocker(b)
	port, mongoPort := doctortest.FreePort(b), doctortest.FreePort(b)
	dir := composeStack(b, "dev", uniqueProject("mzbench"), port, fmt.Sprintf("MOZAIKS_MONGO_PORT=%d\n", mongoPort))
	dotenv, err := config.ReadDotEnv(dir + "/.env")
	if err != nil {
		b.Fatal(err)
	}
	hostURI := strings.Replace(dotenv["MONGO_URI"], "@mongo:27017", fmt.Sprintf("@127.0.0.1:%d", mongoPort), 1)

	b.Run("host-probe", func(b *testing.B) {
		for b.Loop() {
			if _, err := storemongo.Probe(context.Background(), hostURI, storemongo.ProbeOptions{Pings: 3}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("in-runtime-container", func(b *testing.B) {
		env, err := doctor.NewEnv(doctor.EnvOptions{Load: config.LoadOptions{Dir: dir, Environ: []string{}}})
		if err != nil {
			b.Fatal(err)
		}
		defer env.Close()
		checks, err := doctor.DefaultRegistry().Select([]string{"CFG01", "MDB01"}, nil, false)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			rep := doctor.Run(context.Background(), env, checks, doctor.RunOptions{})
			if c := rep.Checks[1]; c.Severity != doctor.OK {
				b.Fatalf("MDB01 %s: %s", c.Severity, c.Message)
			}
		}
	})
}
