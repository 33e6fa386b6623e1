package doctor

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/doctor/doctortest"
	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
)

// BenchmarkHealthyRun times a full default run against a healthy loopback
// deployment (runtime-like server behind nginx, FerretDB, the OpenAI fake)
// and reports how much the concurrent runner saves: sum of the checks'
// durations over the wall time of the run. STR01 takes ~1.8 s by design.
//
//	go test -run '^$' -bench HealthyRun -benchtime 3x ./internal/doctor/
func BenchmarkHealthyRun(b *testing.B) {
	const key = "sk-bench-0123456789"
	fake := llmtest.New(b, llmtest.WithAPIKey(key), llmtest.WithModels("gpt-4o-mini"))
	mongo := doctortest.StartMongo(b)
	port := doctortest.FreePort(b)
	public := fmt.Sprintf("http://127.0.0.1:%d", port)
	rt := doctortest.StartRuntime(b, doctortest.RuntimeOptions{Origins: []string{public}})
	doctortest.StartNginxOn(b, port, strings.TrimPrefix(rt.URL, "http://"), doctortest.NginxGood)
	vars := []string{"MOZAIKS_PUBLIC_URL=" + public, "CORS_ORIGINS=" + public, "OPENAI_API_KEY=" + key,
		"OPENAI_BASE_URL=" + fake.URL(), "MONGO_URI=" + mongo + "MozaiksAI"}
	checks, _ := DefaultRegistry().Select(nil, nil, false)
	var sum, wall time.Duration
	b.ResetTimer()
	for b.Loop() {
		env, err := NewEnv(EnvOptions{Load: loadOpts(b.TempDir(), vars)})
		if err != nil {
			b.Fatal(err)
		}
		env.InContainer = false
		env.MinDisk, env.WarnDisk, env.MinMem, env.WarnMem = 1, 2, 1, 2
		start := time.Now()
		rep := Run(context.Background(), env, checks, RunOptions{})
		wall += time.Since(start)
		for _, c := range rep.Checks {
			sum += time.Duration(c.DurationMS) * time.Millisecond
			if c.Severity == Fail {
				b.Fatalf("%s failed: %s", c.Code, c.Message)
			}
		}
	}
	b.ReportMetric(float64(sum)/float64(wall), "sum/wall")
}
