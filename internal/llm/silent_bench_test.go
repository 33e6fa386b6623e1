package llm

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
)

// BenchmarkSilentModelDefaults measures what a user lives through when the
// endpoint never answers, with the default options: when the first status
// comes, and when Stream gives up (about 2.5 minutes per iteration: run it
// with -benchtime 1x). On ac79d21 (60s per attempt, no status) it gave up
// after 5m5s, silent throughout.
func BenchmarkSilentModelDefaults(b *testing.B) {
	srv := llmtest.New(b, llmtest.WithResponder(silent))
	c := NewOpenAI(Options{APIKey: "k", BaseURL: srv.URL()})
	var firstStatus, giveUp time.Duration
	for b.Loop() {
		var once sync.Once
		start := time.Now()
		req := userSays("hi")
		req.OnStatus = func(Status) { once.Do(func() { firstStatus += time.Since(start) }) }
		if _, err := c.Stream(context.Background(), req, nil); err == nil {
			b.Fatal("a silent model answered")
		}
		giveUp += time.Since(start)
	}
	b.ReportMetric(firstStatus.Seconds()/float64(b.N), "s-to-first-status")
	b.ReportMetric(giveUp.Seconds()/float64(b.N), "s-to-give-up")
	b.ReportMetric(float64(len(srv.ChatRequests()))/float64(b.N), "attempts")
}
