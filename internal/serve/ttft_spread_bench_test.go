package serve_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// BenchmarkTTFTSpread is BenchmarkTTFT's 100 chats with their messages
// spread over a window instead of all sent in the same instant: each round,
// every chat sends once at a random moment of the window (the same moments
// for the direct, SDK and mozaiks rounds), and each turn's time to first
// token is counted from its own send. BenchmarkTTFT's chats=100 is the
// window of 0, a burst: 100 turns' work queued at once on two cores. Here
// the same 100 chats bring the same work at a rate the machine can spread:
// 100 turns in 100 ms is about 1,000 turns a second, far more than 100 people
// chatting with a real model send (a message every few seconds each).
//
//	go test -run '^$' -bench TTFTSpread -benchtime 20x ./internal/serve/
func BenchmarkTTFTSpread(b *testing.B) {
	const n = 100
	for _, window := range []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond} {
		b.Run(fmt.Sprintf("chats=%d/window=%s", n, window), func(b *testing.B) {
			t := newTTFTRig(b, n)
			rng := rand.New(rand.NewPCG(1, uint64(window)))
			at := make([]time.Duration, n)
			var direct, viaSDK, moz []time.Duration
			for b.Loop() {
				for i := range at {
					at[i] = time.Duration(rng.Int64N(int64(window)))
				}
				d, err := spreadRound(at, t.directTurn)
				if err != nil {
					b.Fatal(err)
				}
				s, err := spreadRound(at, t.sdkTurn)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := fresh(t.chats); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				m, err := spreadRound(at, t.mozTurn)
				if err != nil {
					b.Fatal(err)
				}
				direct, viaSDK, moz = append(direct, d...), append(viaSDK, s...), append(moz, m...)
			}
			reportTTFT(b, direct, viaSDK, moz)
			for _, c := range t.chats {
				c.c.Close()
			}
		})
	}
}

// spreadRound runs turn i at at[i] from the round's start, all on their own
// goroutines, and returns each turn's time to first token (from its send).
func spreadRound(at []time.Duration, turn func(i int) (time.Duration, int, error)) ([]time.Duration, error) {
	ttfts := make([]time.Duration, len(at))
	errs := make([]error, len(at))
	var wg sync.WaitGroup
	start := time.Now()
	for i := range at {
		wg.Go(func() {
			time.Sleep(time.Until(start.Add(at[i])))
			ttfts[i], _, errs[i] = turn(i)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return ttfts, nil
}
