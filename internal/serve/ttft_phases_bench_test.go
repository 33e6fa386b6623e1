//go:build !windows

package serve_test

import (
	"context"
	"runtime/trace"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
	"github.com/mozaiks/mozaiks/internal/serve/ws"
)

// BenchmarkTTFTPhases splits BenchmarkTTFT's 100-chat round in two: when each
// model request reaches the model (after the message went through the
// socket, the chat and the engine), and when each first chunk reaches its
// client (the model waits 20 ms before its first byte). Times are from the
// start of the round, in which all 100 clients send at once. The same is
// measured for 100 SSE clients of the model itself (direct-*), rounds
// interleaved: the difference is what mozaiks adds before the model and
// after its first byte.
//
//	go test -run '^$' -bench TTFTPhases -benchtime 20x ./internal/serve/
//
// With -test.trace, tools/tracewindows splits the rounds' CPU by goroutine.
func BenchmarkTTFTPhases(b *testing.B) {
	n := 100
	var mu sync.Mutex
	var arrivals []time.Time
	rep := llmtest.Reply{Text: "one two three four five six seven eight", FirstByteDelay: 20 * time.Millisecond, TokenDelay: 2 * time.Millisecond}
	srv := llmtest.New(b, llmtest.WithRecordLimit(1), llmtest.WithResponder(func(llmtest.Request) llmtest.Reply {
		mu.Lock()
		arrivals = append(arrivals, time.Now())
		mu.Unlock()
		return rep
	}))
	base, _ := countedServer(b, srv.URL(), ws.Options{})
	chats := make([]*wsChat, n)
	for i := range chats {
		chats[i] = &wsChat{base: base}
	}
	if err := fresh(chats); err != nil {
		b.Fatal(err)
	}
	hc := directClient(n)
	if _, _, _, err := round(n, func(int) (time.Duration, int, error) { return directTurn(hc, srv.URL()) }); err != nil {
		b.Fatal(err)
	}
	var arr, first, darr, dfirst []float64
	// timed runs one round of turn and adds, in ms from its start, when each
	// request reached the model (to at) and each first chunk its client (to
	// firsts).
	timed := func(turn func(int) (time.Duration, int, error), at, firsts *[]float64) {
		mu.Lock()
		arrivals = arrivals[:0]
		mu.Unlock()
		start := time.Now()
		ttfts, _, _, err := round(n, turn)
		if err != nil {
			b.Fatal(err)
		}
		mu.Lock()
		for _, a := range arrivals {
			*at = append(*at, float64(a.Sub(start))/1e6)
		}
		mu.Unlock()
		for _, t := range ttfts {
			*firsts = append(*firsts, float64(t)/1e6)
		}
	}
	for b.Loop() {
		timed(func(int) (time.Duration, int, error) { return directTurn(hc, srv.URL()) }, &darr, &dfirst)
		b.StopTimer()
		if err := fresh(chats); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		// Marks the round in an execution trace (-test.trace): see
		// tools/tracewindows.
		trace.Log(context.Background(), "round", "start")
		timed(func(i int) (time.Duration, int, error) { return chats[i].turn() }, &arr, &first)
	}
	for _, s := range [][]float64{arr, first, darr, dfirst} {
		slices.Sort(s)
	}
	q := func(s []float64, p float64) float64 { return s[int(p*float64(len(s)-1))] }
	b.ReportMetric(q(arr, .5), "at-model-p50-ms")
	b.ReportMetric(q(arr, .99), "at-model-p99-ms")
	b.ReportMetric(q(first, .5), "first-chunk-p50-ms")
	b.ReportMetric(q(first, .99), "first-chunk-p99-ms")
	b.ReportMetric(q(darr, .5), "direct-at-model-p50-ms")
	b.ReportMetric(q(darr, .99), "direct-at-model-p99-ms")
	b.ReportMetric(q(dfirst, .5), "direct-first-chunk-p50-ms")
	b.ReportMetric(q(dfirst, .99), "direct-first-chunk-p99-ms")
}
