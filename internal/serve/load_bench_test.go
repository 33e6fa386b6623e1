//go:build !windows

package serve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mozaiks/mozaiks/internal/chat"
	"github.com/mozaiks/mozaiks/internal/config"
	"github.com/mozaiks/mozaiks/internal/engine"
	"github.com/mozaiks/mozaiks/internal/llm"
	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
	"github.com/mozaiks/mozaiks/internal/serve"
	"github.com/mozaiks/mozaiks/internal/store"
	"github.com/mozaiks/mozaiks/internal/store/sqlite"
	"github.com/mozaiks/mozaiks/internal/workflow"
	"github.com/mozaiks/mozaiks/workflows"
)

// BenchmarkLoad: 1,000 chat sockets, one user each, chat for 60 s against a
// server with the production limits on (default rates, caps, timeouts),
// after the same run with them off as the baseline:
// each sends a message, reads the whole turn (ack, its own message echoed,
// the model's reply, the next input request), thinks 2-4 s, and repeats.
// It reports errors (chat.error, refusals, broken sockets, turns over 30 s),
// frames lost or duplicated (every stored event of a chat must reach its
// socket exactly once, in seq order, up to the store's last seq), turns,
// turn latency, and the heap before, at the end of the run, and after every
// socket has closed. A non-zero error, loss or duplicate fails it.
//
//	go test -run '^$' -bench Load -benchtime 1x -timeout 20m ./internal/serve/
//	MOZAIKS_LOAD_SOCKETS=200 MOZAIKS_LOAD_SECONDS=10 go test -run '^$' -bench Load -benchtime 1x ./internal/serve/
func BenchmarkLoad(b *testing.B) {
	// The same load with every limit off first: the baseline the limits'
	// cost is read against.
	for _, limits := range []bool{false, true} {
		name := "limits=off"
		if limits {
			name = "limits=on"
		}
		b.Run(name, func(b *testing.B) { benchLoad(b, limits) })
	}
}

func benchLoad(b *testing.B, limits bool) {
	sockets := envInt("MOZAIKS_LOAD_SOCKETS", 1000)
	secs := envInt("MOZAIKS_LOAD_SECONDS", 60)
	sockets = min(sockets, raiseFileLimit(b, sockets+64))
	// Replies "You said: <message>"; keeps no request log, so the heap
	// after the run is the runtime's.
	fake := llmtest.New(b, llmtest.WithRecordLimit(1))
	// The model client's idle keep-alive pool (up to 64 connections, 3
	// goroutines each with the fake's side) is closed before the "after"
	// measurement, so what remains is the runtime's own.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	url, st := loadServer(b, fake.URL(), &http.Client{Transport: tr}, limits)
	heap0, rss0, g0 := memNow()
	for range b.N {
		res := runLoad(b, url, st, sockets, time.Duration(secs)*time.Second)
		heapRun := res.heapAtEnd
		// Every socket is closed: wait for their goroutines to go, then measure.
		tr.CloseIdleConnections()
		deadline := time.Now().Add(30 * time.Second)
		var heap1, rss1, g1 float64
		for {
			heap1, rss1, g1 = memNow()
			if g1 <= g0+5 || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		b.ReportMetric(float64(res.turns), "turns")
		b.ReportMetric(float64(res.turns)/res.elapsed.Seconds(), "turns/s")
		b.ReportMetric(float64(res.frames), "frames")
		b.ReportMetric(float64(res.errors), "errors")
		b.ReportMetric(float64(res.lost), "lost")
		b.ReportMetric(float64(res.dup), "duplicated")
		b.ReportMetric(pctMS(res.latency, 0.50), "turn-p50-ms")
		b.ReportMetric(pctMS(res.latency, 0.99), "turn-p99-ms")
		b.ReportMetric(heap0/1024/1024, "heap-before-MiB")
		b.ReportMetric(heapRun/1024/1024, "heap-at-end-MiB")
		b.ReportMetric(heap1/1024/1024, "heap-after-MiB")
		b.ReportMetric(heap1/heap0, "heap-after/before")
		b.ReportMetric(g0, "goroutines-before")
		b.ReportMetric(g1, "goroutines-after")
		b.Logf("%d sockets, %s: %d turns, %d frames, %d errors, %d lost, %d duplicated; heap %.1f -> %.1f -> %.1f MiB, "+
			"RSS %.0f -> %.0f MiB, goroutines %.0f -> %.0f; first errors: %v", sockets, res.elapsed.Round(time.Second), res.turns,
			res.frames, res.errors, res.lost, res.dup, heap0/1048576, heapRun/1048576, heap1/1048576, rss0/1048576, rss1/1048576,
			g0, g1, res.samples)
		if path := os.Getenv("MOZAIKS_LOAD_HEAPPROFILE"); path != "" {
			f, err := os.Create(path)
			if err != nil {
				b.Fatal(err)
			}
			_ = pprof.WriteHeapProfile(f)
			f.Close()
		}
		if g1 > g0+5 {
			var buf bytes.Buffer
			_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
			b.Logf("goroutines left:\n%s", buf.String())
		}
		if res.errors+res.lost+res.dup > 0 {
			b.Errorf("%d errors, %d lost, %d duplicated frames", res.errors, res.lost, res.dup)
		}
	}
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func pctMS(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return float64(d[min(len(d)-1, int(float64(len(d))*p))]) / float64(time.Millisecond)
}

// loadServer is the runtime as app.go builds it, with the default limits.
func loadServer(b *testing.B, llmURL string, hc *http.Client, limits bool) (string, store.Store) {
	b.Helper()
	db, err := sqlite.Open(context.Background(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	environ := []string{"LOG_LEVEL=error"}
	if !limits {
		environ = append(environ, "MOZAIKS_MAX_CONNS_PER_IP=0", "MOZAIKS_MAX_SOCKETS_PER_USER=0", "MOZAIKS_MESSAGES_PER_MINUTE=0",
			"MOZAIKS_SESSIONS_PER_MINUTE=0")
	}
	cfg, err := config.Load(config.LoadOptions{Environ: environ, Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	if limits && cfg.Limits != config.DefaultLimits() {
		b.Fatalf("limits %+v are not the defaults", cfg.Limits)
	}
	cfg.ShutdownTimeout = 5 * time.Second
	model := llm.NewOpenAI(llm.Options{APIKey: "sk-test", BaseURL: llmURL, HTTPClient: hc})
	set, _ := workflow.LoadSet("", workflows.FS)
	eng := engine.New(engine.Options{Workflows: set, LLM: model, DefaultModel: "gpt-4o-mini"})
	chats := chat.NewManager(chat.Options{Store: db, Runner: eng, Workflows: set, Owner: "load", SingleProcess: true})
	srv := serve.New(serve.Options{Config: cfg, Store: db, Workflows: set, LLM: model, Chats: chats})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	b.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			b.Error("server did not stop within 30s")
		}
	})
	return "ws://" + ln.Addr().String(), db
}

type loadResult struct {
	turns, frames, errors, lost, dup int64
	latency                          []time.Duration
	elapsed                          time.Duration
	heapAtEnd                        float64
	samples                          []string // the first few errors
}

// loadSocket is one chatting client and what it saw.
type loadSocket struct {
	i       int
	c       *websocket.Conn
	lastSeq int64
	res     *loadResult
	mu      *sync.Mutex
}

func (s *loadSocket) fail(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.res.errors++
	if len(s.res.samples) < 5 {
		s.res.samples = append(s.res.samples, fmt.Sprintf("socket %d: ", s.i)+fmt.Sprintf(format, args...))
	}
}

// seen checks a frame's seq against the socket's last: +1 is in order, a
// jump means frames were lost, a repeat means one was duplicated.
func (s *loadSocket) seen(seq int64, lost, dup *atomic.Int64) {
	if seq == 0 {
		return
	}
	switch {
	case seq == s.lastSeq+1:
	case seq > s.lastSeq+1:
		lost.Add(seq - s.lastSeq - 1)
	default:
		dup.Add(1)
		return
	}
	s.lastSeq = seq
}

func runLoad(b *testing.B, url string, st store.Store, n int, d time.Duration) loadResult {
	var res loadResult
	var mu sync.Mutex
	var turns, frames, lost, dup atomic.Int64
	socks := make([]*loadSocket, n)
	dialer := websocket.Dialer{HandshakeTimeout: 30 * time.Second}
	// Connect everyone first (in parallel batches), then chat.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range socks {
		s := &loadSocket{i: i, res: &res, mu: &mu}
		socks[i] = s
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, _, err := dialer.Dial(fmt.Sprintf("%s/ws/assistant/default/load-%d/user-%d", url, i, i), nil)
			if err != nil {
				s.fail("dial: %v", err)
				return
			}
			s.c = c
			// A new chat greets its user and waits for input: the turn
			// loop starts from there.
			_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
			for {
				var f frame
				if err := c.ReadJSON(&f); err != nil {
					s.fail("connect: %v", err)
					c.Close()
					s.c = nil
					return
				}
				if f.Type == "chat.resume_boundary" {
					s.lastSeq = int64(f.Data["last_seq"].(float64))
					continue
				}
				s.seen(f.Seq, &lost, &dup)
				if f.Type == "chat.input_request" {
					return
				}
			}
		}()
	}
	wg.Wait()
	start := time.Now()
	end := start.Add(d)
	for _, s := range socks {
		if s.c == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(s.i), 7))
			// Spread the first messages over the first think time.
			time.Sleep(time.Duration(rng.Int64N(int64(2 * time.Second))))
			for t := 0; time.Now().Before(end); t++ {
				text := fmt.Sprintf("socket %d turn %d", s.i, t)
				t0 := time.Now()
				if err := s.c.WriteJSON(map[string]any{"type": "user.input.submit", "chat_id": fmt.Sprintf("load-%d", s.i), "text": text}); err != nil {
					s.fail("send: %v", err)
					return
				}
				// The ack is a direct reply and the rest comes from the chat's
				// fan-out: the ack may arrive after the next input request.
				var acked, echoed, replied, asked bool
				_ = s.c.SetReadDeadline(time.Now().Add(30 * time.Second))
				for {
					_, raw, err := s.c.ReadMessage()
					if err != nil {
						s.fail("turn %d: %v", t, err)
						return
					}
					var f frame
					if err := json.Unmarshal(raw, &f); err != nil {
						s.fail("turn %d: frame is not JSON", t)
						return
					}
					frames.Add(1)
					s.seen(f.Seq, &lost, &dup)
					switch f.Type {
					case "chat.input_ack":
						acked = true
					case "chat.text":
						switch content, _ := f.Data["content"].(string); content {
						case text:
							echoed = true
						case "You said: " + text:
							replied = true
						default:
							s.fail("turn %d: unexpected text %q", t, content)
						}
					case "chat.error":
						s.fail("turn %d: chat.error %v", t, f.Data["error_code"])
					}
					asked = asked || f.Type == "chat.input_request"
					if asked && acked {
						break
					}
				}
				if !acked || !echoed || !replied {
					s.fail("turn %d: ack %v, echo %v, reply %v", t, acked, echoed, replied)
				}
				mu.Lock()
				res.latency = append(res.latency, time.Since(t0))
				mu.Unlock()
				turns.Add(1)
				time.Sleep(2*time.Second + time.Duration(rng.Int64N(int64(2*time.Second))))
			}
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.heapAtEnd, _, _ = memNow()
	// Nothing stored was left undelivered: each chat's last seq is what its
	// socket saw last.
	for _, s := range socks {
		if s.c == nil {
			continue
		}
		sess, err := st.GetSession(context.Background(), "default", fmt.Sprintf("load-%d", s.i))
		if err != nil {
			s.fail("read session: %v", err)
		} else if sess.LastSeq > s.lastSeq {
			lost.Add(sess.LastSeq - s.lastSeq)
		}
		_ = s.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""),
			time.Now().Add(5*time.Second))
		s.c.Close()
	}
	runtime.GC()
	res.turns, res.frames, res.lost, res.dup = turns.Load(), frames.Load(), lost.Load(), dup.Load()
	return res
}
