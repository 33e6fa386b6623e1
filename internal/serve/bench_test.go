//go:build !windows

package serve_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	openai "github.com/sashabaranov/go-openai"

	"github.com/mozaiks/mozaiks/internal/app"
	"github.com/mozaiks/mozaiks/internal/chat"
	"github.com/mozaiks/mozaiks/internal/config"
	"github.com/mozaiks/mozaiks/internal/engine"
	"github.com/mozaiks/mozaiks/internal/llm"
	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
	"github.com/mozaiks/mozaiks/internal/serve"
	"github.com/mozaiks/mozaiks/internal/serve/ws"
	"github.com/mozaiks/mozaiks/internal/store"
	"github.com/mozaiks/mozaiks/internal/store/sqlite"
	"github.com/mozaiks/mozaiks/internal/workflow"
	"github.com/mozaiks/mozaiks/workflows"
)

// These benchmarks measure the runtime path against a baseline taken in the
// same run: a client talking to the fake model (llmtest) directly, or a plain
// gorilla/websocket echo server. They report their own metrics (ms, tok/s,
// KiB/conn); ns/op is the cost of one round and means little on its own.
//
//	go test -run '^$' -bench 'TTFT|Throughput' -benchtime 20x ./internal/serve/
//	go test -run '^$' -bench IdleConnections -benchtime 1x ./internal/serve/

// benchServer is a mozaiks server on loopback (embedded store, built-in
// workflows) whose model is the fake at llmURL. newEnv needs a *testing.T.
func benchServer(b *testing.B, llmURL string, wsOpts ws.Options) string {
	url, _ := countedServer(b, llmURL, wsOpts)
	return url
}

// countedServer is benchServer with its store calls counted.
func countedServer(b *testing.B, llmURL string, wsOpts ws.Options) (string, *countingStore) {
	b.Helper()
	db, err := sqlite.Open(context.Background(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	st := &countingStore{Store: db}
	// The garbage collector as `mozaiks serve` sets it (GOGC=100 in the
	// environment measures the Go default). It is the process's: the
	// clients and the model in it (not in BenchmarkTTFTApart's) run with it too.
	app.TuneGC(slog.New(slog.DiscardHandler))
	// The abuse limits are off: these benchmarks hold thousands of sockets
	// from one IP and send at machine speed (BenchmarkLoad runs with them on).
	cfg, err := config.Load(config.LoadOptions{Environ: []string{"LOG_LEVEL=error", "MOZAIKS_MAX_CONNS_PER_IP=0",
		"MOZAIKS_MAX_SOCKETS_PER_USER=0", "MOZAIKS_MESSAGES_PER_MINUTE=0", "MOZAIKS_SESSIONS_PER_MINUTE=0"}, Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	cfg.ShutdownTimeout = 5 * time.Second
	model := llm.NewOpenAI(llm.Options{APIKey: "sk-test", BaseURL: llmURL})
	set, _ := workflow.LoadSet("", workflows.FS)
	eng := engine.New(engine.Options{Workflows: set, LLM: model, DefaultModel: "gpt-4o-mini"})
	chats := chat.NewManager(chat.Options{Store: st, Runner: eng, Workflows: set, Owner: "bench", SingleProcess: true}) // as app.go does for the embedded store
	srv := serve.New(serve.Options{Config: cfg, Store: st, Workflows: set, LLM: model, Chats: chats, WS: wsOpts})
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
	return "ws://" + ln.Addr().String(), st
}

// countingStore counts the store calls of the runtime, to say how many
// round trips (and, on the embedded store, how many turns of its single
// writer) one chat turn costs.
type countingStore struct {
	store.Store
	writes, reads atomic.Int64
	delay         time.Duration // added to every write, as a remote database would
}

func (c *countingStore) wait() {
	if c.delay > 0 {
		time.Sleep(c.delay)
	}
}

func (c *countingStore) CreateSession(ctx context.Context, s store.Session) (store.Session, bool, error) {
	defer c.writes.Add(1)
	c.wait()
	return c.Store.CreateSession(ctx, s)
}

func (c *countingStore) UpdateSession(ctx context.Context, appID, chatID string, u store.SessionUpdate) error {
	defer c.writes.Add(1)
	c.wait()
	return c.Store.UpdateSession(ctx, appID, chatID, u)
}

func (c *countingStore) AppendEvent(ctx context.Context, appID, chatID string, ev store.Event, message bool) (store.Event, error) {
	defer c.writes.Add(1)
	c.wait()
	return c.Store.AppendEvent(ctx, appID, chatID, ev, message)
}

func (c *countingStore) AppendEventUpdate(ctx context.Context, appID, chatID string, ev store.Event, message bool,
	u store.SessionUpdate) (store.Event, error) {
	defer c.writes.Add(1)
	c.wait()
	return c.Store.AppendEventUpdate(ctx, appID, chatID, ev, message, u)
}

// WriteBatch is one write: one transaction of the embedded store.
func (c *countingStore) WriteBatch(ctx context.Context, appID, chatID string, ws []store.Write) ([]store.Event, error) {
	defer c.writes.Add(1)
	c.wait()
	return c.Store.(store.Batcher).WriteBatch(ctx, appID, chatID, ws)
}

func (c *countingStore) RecordUsage(ctx context.Context, u store.UsageRecord) error {
	defer c.writes.Add(1)
	c.wait()
	return c.Store.RecordUsage(ctx, u)
}

func (c *countingStore) AcquireLease(ctx context.Context, appID, chatID, owner string, ttl time.Duration) (bool, error) {
	defer c.writes.Add(1)
	c.wait()
	return c.Store.AcquireLease(ctx, appID, chatID, owner, ttl)
}

func (c *countingStore) RenewLease(ctx context.Context, appID, chatID, owner string, ttl time.Duration) (bool, error) {
	defer c.writes.Add(1)
	c.wait()
	return c.Store.RenewLease(ctx, appID, chatID, owner, ttl)
}

func (c *countingStore) ReleaseLease(ctx context.Context, appID, chatID, owner string) error {
	defer c.writes.Add(1)
	c.wait()
	return c.Store.ReleaseLease(ctx, appID, chatID, owner)
}

func (c *countingStore) GetSession(ctx context.Context, appID, chatID string) (store.Session, error) {
	c.reads.Add(1)
	return c.Store.GetSession(ctx, appID, chatID)
}

func (c *countingStore) ListEvents(ctx context.Context, appID, chatID string, afterSeq int64, limit int) ([]store.Event, error) {
	c.reads.Add(1)
	return c.Store.ListEvents(ctx, appID, chatID, afterSeq, limit)
}

func (c *countingStore) FindPending(ctx context.Context, appID, pendingID string) (store.Session, error) {
	c.reads.Add(1)
	return c.Store.FindPending(ctx, appID, pendingID)
}

// fakeModel serves llmtest on loopback, every completion answered with rep.
func fakeModel(b *testing.B, rep llmtest.Reply) string {
	srv := llmtest.New(b, llmtest.WithRecordLimit(1), llmtest.WithResponder(func(llmtest.Request) llmtest.Reply { return rep }))
	return srv.URL()
}

// turnsPerChat stays under the assistant workflow's max_turns (20), after
// which a chat is over and a fresh one is dialled.
const turnsPerChat = 15

var chatSeq atomic.Int64

// wsChat is one mozaiks chat driven synchronously by one goroutine.
type wsChat struct {
	base  string
	c     *websocket.Conn
	turns int
	tail  time.Duration // last turn: from its last chat.print to its input request
}

func (w *wsChat) dial() error {
	if w.c != nil {
		w.c.Close()
	}
	id := chatSeq.Add(1)
	d := websocket.Dialer{HandshakeTimeout: 30 * time.Second}
	c, _, err := d.Dial(fmt.Sprintf("%s/ws/assistant/bench/c%d/u%d", w.base, id, id), nil)
	if err != nil {
		return err
	}
	w.c, w.turns = c, 0
	_, err = readUntil(c, `"chat.input_request"`, nil)
	return err
}

// fresh dials a new chat for every slot that has none or whose chat is near
// its turn limit, all before a measured round, so that creating chats (a
// session and a greeting on the store's single writer) never overlaps the
// turns being timed.
func fresh(chats []*wsChat) error {
	_, _, _, err := round(len(chats), func(i int) (time.Duration, int, error) {
		if w := chats[i]; w.c == nil || w.turns >= turnsPerChat {
			return 0, 0, w.dial()
		}
		return 0, 0, nil
	})
	return err
}

// readUntil reads frames up to the first containing marker; onPrint, when
// set, is called at every chat.print frame. It returns the number of tokens
// the chat.print frames carried: the words of their content (the fake model
// sends one word per chunk; a socket that lags gets several chunks merged in
// one frame, see ws/coalesce.go). printFrames counts the frames.
func readUntil(c *websocket.Conn, marker string, onPrint func()) (int, error) {
	tokens := 0
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			return tokens, err
		}
		if bytes.Contains(msg, []byte(`"chat.print"`)) {
			tokens += printWords(msg)
			printFrames.Add(1)
			if onPrint != nil {
				onPrint()
			}
		} else if bytes.Contains(msg, []byte(`"type":"error"`)) {
			return tokens, fmt.Errorf("error frame: %s", msg)
		}
		if bytes.Contains(msg, []byte(marker)) {
			return tokens, nil
		}
	}
}

// printFrames counts the chat.print frames readUntil has read.
var printFrames atomic.Int64

// printWords counts the words of a chat.print frame's top-level content
// (at least 1: an empty or unreadable content counts as one token).
func printWords(msg []byte) int {
	const key = `"content":"`
	i := bytes.Index(msg, []byte(key))
	if i < 0 {
		return 1
	}
	rest := msg[i+len(key):]
	end := 0
	for end < len(rest) && rest[end] != '"' {
		if rest[end] == '\\' {
			end++
		}
		end++
	}
	return max(1, len(bytes.Fields(rest[:min(end, len(rest))])))
}

// turn submits one message; ttft is the time to the first chat.print frame.
// Call fresh first.
func (w *wsChat) turn() (ttft time.Duration, tokens int, err error) {
	w.turns++
	start := time.Now()
	if err := w.c.WriteMessage(websocket.TextMessage, []byte(`{"type":"user.input.submit","text":"tell me something"}`)); err != nil {
		return 0, 0, err
	}
	var last time.Time
	tokens, err = readUntil(w.c, `"chat.input_request"`, func() {
		last = time.Now()
		if ttft == 0 {
			ttft = last.Sub(start)
		}
	})
	if !last.IsZero() {
		w.tail = time.Since(last)
	}
	return ttft, tokens, err
}

var directBody = []byte(`{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"system","content":"You are a helpful, concise assistant."},{"role":"user","content":"tell me something"}]}`)

// directTurn streams one completion from the fake as an SSE client; ttft is
// the time to the first content delta.
func directTurn(hc *http.Client, llmURL string) (ttft time.Duration, tokens int, err error) {
	start := time.Now()
	req, _ := http.NewRequest("POST", llmURL+"/chat/completions", bytes.NewReader(directBody))
	req.Header.Set("Authorization", "Bearer sk-test")
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.Equal(line, []byte("data: [DONE]")) {
			return ttft, tokens, nil
		}
		// The role chunk carries "content":"" and is not a token.
		if bytes.Contains(line, []byte(`"content":"`)) && !bytes.Contains(line, []byte(`"content":""`)) {
			tokens++
			if ttft == 0 {
				ttft = time.Since(start)
			}
		}
	}
	return ttft, tokens, fmt.Errorf("stream ended without [DONE]: %v", sc.Err())
}

// sdkChat is a chat app that calls the model itself with the Go SDK
// (go-openai, as mozaiks does): it keeps its conversation and sends all of
// it every turn, a fresh conversation every turnsPerChat turns as the
// mozaiks chats do. It is the baseline that pays what any client of the
// model pays (encoding the history, decoding every chunk).
type sdkChat struct {
	c       *openai.Client
	history []openai.ChatCompletionMessage
}

func newSDKChats(n int, llmURL string) []*sdkChat {
	cfg := openai.DefaultConfig("sk-test")
	cfg.BaseURL = llmURL
	cfg.HTTPClient = directClient(n)
	c := openai.NewClientWithConfig(cfg)
	out := make([]*sdkChat, n)
	for i := range out {
		out[i] = &sdkChat{c: c}
	}
	return out
}

// turn streams one reply; ttft is the time to its first content delta.
func (s *sdkChat) turn() (ttft time.Duration, tokens int, err error) {
	if len(s.history) == 0 || len(s.history) > 2*turnsPerChat {
		s.history = []openai.ChatCompletionMessage{{Role: "system", Content: "You are a helpful, concise assistant. Answer the user's questions clearly."},
			{Role: "assistant", Content: "Hi! What can I help you with?"}}
	}
	s.history = append(s.history, openai.ChatCompletionMessage{Role: "user", Content: "tell me something"})
	start := time.Now()
	st, err := s.c.CreateChatCompletionStream(context.Background(), openai.ChatCompletionRequest{Model: "gpt-4o-mini",
		Messages: s.history, Stream: true, StreamOptions: &openai.StreamOptions{IncludeUsage: true}})
	if err != nil {
		return 0, 0, err
	}
	defer st.Close()
	var reply strings.Builder
	for {
		r, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, 0, err
		}
		if len(r.Choices) > 0 && r.Choices[0].Delta.Content != "" {
			tokens++
			reply.WriteString(r.Choices[0].Delta.Content)
			if ttft == 0 {
				ttft = time.Since(start)
			}
		}
	}
	s.history = append(s.history, openai.ChatCompletionMessage{Role: "assistant", Content: reply.String()})
	return ttft, tokens, nil
}

func directClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: 0}}
}

// round runs one turn on each of n slots at once and returns per-slot TTFTs
// and the total tokens received.
func round(n int, turn func(i int) (time.Duration, int, error)) ([]time.Duration, int, time.Duration, error) {
	ttfts := make([]time.Duration, n)
	toks := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Go(func() { ttfts[i], toks[i], errs[i] = turn(i) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	total := 0
	for i := range n {
		if errs[i] != nil {
			return nil, 0, 0, errs[i]
		}
		total += toks[i]
	}
	return ttfts, total, elapsed, nil
}

func pct(d []time.Duration, p float64) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.5) - 1
	i = max(0, min(i, len(s)-1))
	return float64(s[i]) / float64(time.Millisecond)
}

// ttftRig is BenchmarkTTFT's setup: the fake model (20 ms to its first
// byte, 2 ms a token), a server on it, and n of each client: direct SSE
// clients of the model, SDK chat apps and mozaiks chats, all dialled and
// warmed up by a round each.
type ttftRig struct {
	llmURL string
	st     *countingStore
	hc     *http.Client
	sdk    []*sdkChat
	chats  []*wsChat
}

func newTTFTRig(b *testing.B, n int) *ttftRig {
	b.Helper()
	rep := llmtest.Reply{Text: "one two three four five six seven eight", FirstByteDelay: 20 * time.Millisecond, TokenDelay: 2 * time.Millisecond}
	t := &ttftRig{llmURL: fakeModel(b, rep), hc: directClient(n), chats: make([]*wsChat, n)}
	var base string
	base, t.st = countedServer(b, t.llmURL, ws.Options{})
	t.sdk = newSDKChats(n, t.llmURL)
	for i := range t.chats {
		t.chats[i] = &wsChat{base: base}
	}
	// Warm up: dial every chat and open the model connections.
	if err := fresh(t.chats); err != nil {
		b.Fatal(err)
	}
	for _, turn := range []func(int) (time.Duration, int, error){t.sdkTurn, t.mozTurn, t.directTurn} {
		if _, _, _, err := round(n, turn); err != nil {
			b.Fatal(err)
		}
	}
	return t
}

func (t *ttftRig) directTurn(int) (time.Duration, int, error) { return directTurn(t.hc, t.llmURL) }
func (t *ttftRig) sdkTurn(i int) (time.Duration, int, error)  { return t.sdk[i].turn() }
func (t *ttftRig) mozTurn(i int) (time.Duration, int, error)  { return t.chats[i].turn() }

// BenchmarkTTFT is the time to first token seen by a WebSocket client of
// mozaiks and by an SSE client of the model itself, interleaved round by
// round so both see the same machine load. The model waits 20 ms before its
// first byte and 2 ms before each token on both paths.
func BenchmarkTTFT(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("chats=%d", n), func(b *testing.B) {
			t := newTTFTRig(b, n)
			llmURL, st, hc, sdk, chats := t.llmURL, t.st, t.hc, t.sdk, t.chats
			var direct, viaSDK, moz []time.Duration
			var writes, reads int64
			var dCPU, sCPU, mCPU time.Duration
			for b.Loop() {
				c0 := cpuNow()
				d, _, _, err := round(n, func(int) (time.Duration, int, error) { return directTurn(hc, llmURL) })
				if err != nil {
					b.Fatal(err)
				}
				dCPU += cpuNow() - c0
				c0 = cpuNow()
				sd, _, _, err := round(n, func(i int) (time.Duration, int, error) { return sdk[i].turn() })
				if err != nil {
					b.Fatal(err)
				}
				sCPU += cpuNow() - c0
				viaSDK = append(viaSDK, sd...)
				b.StopTimer()
				if err := fresh(chats); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				w0, r0 := st.writes.Load(), st.reads.Load()
				c0 = cpuNow()
				m, _, _, err := round(n, func(i int) (time.Duration, int, error) { return chats[i].turn() })
				if err != nil {
					b.Fatal(err)
				}
				mCPU += cpuNow() - c0
				// Lease renewals and releases may land after the round.
				writes, reads = writes+st.writes.Load()-w0, reads+st.reads.Load()-r0
				direct, moz = append(direct, d...), append(moz, m...)
			}
			reportTTFT(b, direct, viaSDK, moz)
			// The whole process's CPU (server, clients and model) per turn,
			// mozaiks round minus direct round: what mozaiks costs a turn.
			// Lease renewals and writes may land after the round.
			b.ReportMetric(float64(mCPU-dCPU)/float64(len(moz))/1e3, "added-cpu-us/turn")
			b.ReportMetric(float64(mCPU-sCPU)/float64(len(moz))/1e3, "added-vs-sdk-cpu-us/turn")
			b.ReportMetric(float64(writes)/float64(len(moz)), "store-writes/turn")
			b.ReportMetric(float64(reads)/float64(len(moz)), "store-reads/turn")
			for _, c := range chats {
				c.c.Close()
			}
		})
	}
}

// reportTTFT reports the times to first token of the direct clients, the
// SDK chat apps and the mozaiks chats, and what mozaiks adds to each: over
// the SDK apps, what it adds beyond being a client of the model.
func reportTTFT(b *testing.B, direct, viaSDK, moz []time.Duration) {
	b.ReportMetric(pct(direct, .5), "direct-p50-ms")
	b.ReportMetric(pct(direct, .99), "direct-p99-ms")
	b.ReportMetric(pct(moz, .5), "mozaiks-p50-ms")
	b.ReportMetric(pct(moz, .99), "mozaiks-p99-ms")
	b.ReportMetric(pct(moz, .5)-pct(direct, .5), "added-p50-ms")
	b.ReportMetric(pct(moz, .99)-pct(direct, .99), "added-p99-ms")
	b.ReportMetric(pct(viaSDK, .5), "sdk-p50-ms")
	b.ReportMetric(pct(viaSDK, .99), "sdk-p99-ms")
	b.ReportMetric(pct(moz, .5)-pct(viaSDK, .5), "added-vs-sdk-p50-ms")
	b.ReportMetric(pct(moz, .99)-pct(viaSDK, .99), "added-vs-sdk-p99-ms")
}

// BenchmarkThroughput streams a 200-token reply to 200 chats at once:
// tokens per second received by 200 mozaiks WebSocket clients vs 200 SSE
// clients of the model, rounds interleaved. "unpaced" has no model delay, so
// the machine is the limit; "paced" sends 100 tokens/s per stream (10 ms
// apart), a fast real model, and asks whether mozaiks keeps up. Tokens are
// the words inside the chat.print frames (readUntil): a socket that lags gets
// several chunks merged in one frame.
func BenchmarkThroughput(b *testing.B) {
	const n, tokens = 200, 200
	for _, tc := range []struct {
		name  string
		delay time.Duration
	}{{"unpaced", 0}, {"paced", 10 * time.Millisecond}} {
		b.Run(tc.name, func(b *testing.B) {
			rep := llmtest.Reply{Text: strings.Repeat("tok ", tokens), Chunks: tokens, TokenDelay: tc.delay}
			llmURL := fakeModel(b, rep)
			base := benchServer(b, llmURL, ws.Options{})
			hc := directClient(n)
			chats := make([]*wsChat, n)
			for i := range chats {
				chats[i] = &wsChat{base: base}
			}
			if err := fresh(chats); err != nil {
				b.Fatal(err)
			}
			if _, _, _, err := round(n, func(i int) (time.Duration, int, error) { return chats[i].turn() }); err != nil {
				b.Fatal(err)
			}
			if _, _, _, err := round(n, func(int) (time.Duration, int, error) { return directTurn(hc, llmURL) }); err != nil {
				b.Fatal(err)
			}
			var dTok, mTok int
			var dTime, mTime time.Duration
			var frames int64
			var dFirst, mFirst, mTail []time.Duration
			var dCPU, mCPU time.Duration
			for b.Loop() {
				c0 := cpuNow()
				first, got, el, err := round(n, func(int) (time.Duration, int, error) { return directTurn(hc, llmURL) })
				if err != nil || got != n*tokens {
					b.Fatalf("direct: %d tokens, %v", got, err)
				}
				dTok, dTime, dFirst, dCPU = dTok+got, dTime+el, append(dFirst, first...), dCPU+cpuNow()-c0
				b.StopTimer()
				if err := fresh(chats); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				f0, c0 := printFrames.Load(), cpuNow()
				first, got, el, err = round(n, func(i int) (time.Duration, int, error) { return chats[i].turn() })
				if err != nil || got != n*tokens {
					b.Fatalf("mozaiks: %d tokens, %v", got, err)
				}
				mCPU += cpuNow() - c0
				mTok, mTime, frames = mTok+got, mTime+el, frames+printFrames.Load()-f0
				mFirst = append(mFirst, first...)
				for _, c := range chats {
					mTail = append(mTail, c.tail)
				}
			}
			d, m := float64(dTok)/dTime.Seconds(), float64(mTok)/mTime.Seconds()
			b.ReportMetric(d, "direct-tok/s")
			b.ReportMetric(m, "mozaiks-tok/s")
			b.ReportMetric(m/d, "ratio")
			// Below 1 when lagging sockets got chunks merged (ws/coalesce.go).
			b.ReportMetric(float64(frames)/float64(mTok), "mozaiks-frames/tok")
			// A round lasts as long as its slowest turn: the time to the first
			// token is part of it (BenchmarkTTFT measures it alone).
			b.ReportMetric(pct(dFirst, .99), "direct-ttft-p99-ms")
			b.ReportMetric(pct(mFirst, .99), "mozaiks-ttft-p99-ms")
			// and so is the end of a turn: the last chunk to the input request.
			b.ReportMetric(pct(mTail, .99), "mozaiks-tail-p99-ms")
			// CPU time of this process (model, clients and, on the mozaiks
			// rounds, the runtime) per token: less noisy than rates on a
			// shared machine. The difference is what the runtime adds.
			dc, mc := float64(dCPU.Microseconds())/float64(dTok), float64(mCPU.Microseconds())/float64(mTok)
			b.ReportMetric(dc, "direct-cpu-us/tok")
			b.ReportMetric(mc, "mozaiks-cpu-us/tok")
			b.ReportMetric(mc-dc, "added-cpu-us/tok")
			for _, c := range chats {
				c.c.Close()
			}
		})
	}
}

// BenchmarkIdleConnections holds 10,000 idle chat sockets open on mozaiks
// (each one a new chat that has been greeted and waits for input) and, as the
// baseline, 10,000 idle sockets on a plain gorilla/websocket echo server with
// 4 KiB buffers, and reports what the server process holds per socket. The
// clients run in a child process (idleclients_test.go), so the figures are
// the server's alone; both servers are measured the same way in the same run.
// Run it with -benchtime 1x.
func BenchmarkIdleConnections(b *testing.B) {
	const n = 10_000
	if err := raiseNoFile(n + 512); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		echo := holdIdle(b, n, func(b *testing.B) string { return echoServer(b) }, "echo", "/echo")
		moz := holdIdle(b, n, func(b *testing.B) string {
			// No LLM is called while idle; the URL only has to parse.
			return benchServer(b, "http://127.0.0.1:1/v1", ws.Options{})
		}, "chat", "/ws/assistant/idle/")
		b.ReportMetric(float64(n), "conns")
		b.ReportMetric(echo.heap/1024, "echo-heap-KiB/conn")
		b.ReportMetric(echo.rss/1024, "echo-rss-KiB/conn")
		b.ReportMetric(moz.heap/1024, "mozaiks-heap-KiB/conn")
		b.ReportMetric(moz.rss/1024, "mozaiks-rss-KiB/conn")
		b.ReportMetric((moz.heap-echo.heap)/1024, "added-heap-KiB/conn")
		b.ReportMetric((moz.rss-echo.rss)/1024, "added-rss-KiB/conn")
		b.ReportMetric(moz.heap/echo.heap, "heap-ratio")
		b.ReportMetric(echo.goroutines, "echo-goroutines/conn")
		b.ReportMetric(moz.goroutines, "mozaiks-goroutines/conn")
		b.ReportMetric(echo.stack/1024, "echo-stack-KiB/conn")
		b.ReportMetric(moz.stack/1024, "mozaiks-stack-KiB/conn")
	}
}

// raiseFileLimit lifts RLIMIT_NOFILE so want server and want client sockets
// fit, and returns how many connection pairs the limit allows.
func raiseFileLimit(b *testing.B, want int) int {
	need := uint64(2*want + 512)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	if lim.Max < need {
		// Raising the hard limit needs CAP_SYS_RESOURCE; fall back below.
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: need, Max: need})
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	if lim.Cur < need {
		lim.Cur = min(need, lim.Max)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			b.Fatal(err)
		}
	}
	n := min(want, int(lim.Cur-512)/2)
	if n < want {
		b.Logf("file limit %d: measuring %d connections instead of %d", lim.Cur, n, want)
	}
	return n
}

func echoServer(b *testing.B) string {
	up := websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			t, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(t, msg); err != nil {
				return
			}
		}
	}))
	b.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// idleCost is what a server process holds per idle socket.
type idleCost struct{ heap, rss, goroutines, stack float64 }

// holdIdle starts a server, has n clients in a child process dial it at
// path and settle (mode, see idleClients), and returns the heap, RSS,
// goroutines and goroutine stack this process added per connection while all
// n are idle. Everything is closed before it returns.
func holdIdle(b *testing.B, n int, start func(*testing.B) string, mode, path string) idleCost {
	base := start(b)
	h0, r0, g0 := memNow()
	s0 := stackNow()
	stop := clientProcess(b, base+path, mode, n)
	defer stop()
	// Let the server's last writes and state changes finish.
	time.Sleep(2 * time.Second)
	h1, r1, g1 := memNow()
	s1 := stackNow()
	writeHeapProfile(b, path)
	f := float64(n)
	return idleCost{heap: (h1 - h0) / f, rss: (r1 - r0) / f, goroutines: (g1 - g0) / f, stack: (s1 - s0) / f}
}

// cpuNow is the CPU time (user and system) this process has used.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// stackNow is the memory held by goroutine stacks.
func stackNow() float64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.StackInuse)
}

// writeHeapProfile saves the heap while the sockets are idle when
// MOZAIKS_BENCH_HEAPPROFILE names a file prefix (-memprofile is written at the
// end, after they are closed).
func writeHeapProfile(b *testing.B, path string) {
	prefix := os.Getenv("MOZAIKS_BENCH_HEAPPROFILE")
	if prefix == "" {
		return
	}
	name := prefix + ".echo"
	if strings.HasPrefix(path, "/ws/") {
		name = prefix + ".mozaiks"
	}
	f, err := os.Create(name)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		b.Fatal(err)
	}
}

// memNow is the live heap after a full collection, the process RSS and the
// goroutine count.
func memNow() (heap, rss, goroutines float64) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	statm, _ := os.ReadFile("/proc/self/statm")
	f := strings.Fields(string(statm))
	if len(f) > 1 {
		pages, _ := strconv.ParseFloat(f[1], 64)
		rss = pages * float64(os.Getpagesize())
	}
	return float64(ms.HeapAlloc), rss, float64(runtime.NumGoroutine())
}

// BenchmarkTurnCost times whole turns (message sent to the next input
// request, the model answering at once) on a chat with 10 stored events and
// on one with 10,000, turns interleaved so both see the same load. An active
// chat's transcript is kept in memory, so the long chat should cost about
// what the short one does; what remains is the model request carrying a
// longer history (bounded by chat.Options.HistoryEvents).
//
//	go test -run '^$' -bench TurnCost -benchtime 50x ./internal/serve/
func BenchmarkTurnCost(b *testing.B) {
	rep := llmtest.Reply{Text: "short answer", Chunks: 2}
	base, st := countedServer(b, fakeModel(b, rep), ws.Options{})
	small := prefilledChat(b, base, st, 10)
	large := prefilledChat(b, base, st, 10000)
	var ts, tl time.Duration
	for b.Loop() {
		for _, c := range []*wsChat{small, large} {
			start := time.Now()
			if err := c.c.WriteMessage(websocket.TextMessage, []byte(`{"type":"user.input.submit","text":"and then?"}`)); err != nil {
				b.Fatal(err)
			}
			if _, err := readUntil(c.c, `"chat.input_request"`, nil); err != nil {
				b.Fatal(err)
			}
			if c == small {
				ts += time.Since(start)
			} else {
				tl += time.Since(start)
			}
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(ts.Microseconds())/n/1000, "events=10-ms/turn")
	b.ReportMetric(float64(tl.Microseconds())/n/1000, "events=10000-ms/turn")
	b.ReportMetric(float64(tl)/float64(ts), "ratio")
}

// prefilledChat stores a chat of about events events (whole turns of the
// assistant workflow: message, run_start, select_speaker, usage, reply,
// input request), connects to it and plays one turn so its room is warm.
func prefilledChat(b *testing.B, base string, st store.Store, events int) *wsChat {
	b.Helper()
	ctx := context.Background()
	id := fmt.Sprintf("long%d", chatSeq.Add(1))
	if _, _, err := st.CreateSession(ctx, store.Session{ChatID: id, AppID: "bench", UserID: "u1", Workflow: "assistant",
		Status: store.StatusAwaitingInput}); err != nil {
		b.Fatal(err)
	}
	add := func(typ, agent string, data map[string]any, u store.SessionUpdate) int64 {
		raw, _ := json.Marshal(data)
		ev, err := st.AppendEventUpdate(ctx, "bench", id, store.Event{Type: typ, Agent: agent, Data: raw}, typ == "chat.text", u)
		if err != nil {
			b.Fatal(err)
		}
		return ev.Seq
	}
	req := ""
	for i := 0; i < events; i += 6 {
		seq := add("chat.text", "user", map[string]any{"kind": "text", "agent": "user", "role": "user", "content": fmt.Sprintf("question %d", i),
			"message_id": fmt.Sprintf("mu%d", i)}, store.SessionUpdate{})
		add("chat.run_start", "", map[string]any{"kind": "run_start", "run_id": fmt.Sprintf("run%d", i), "input_seq": seq, "speaker": "Assistant"},
			store.SessionUpdate{})
		add("chat.select_speaker", "Assistant", map[string]any{"kind": "select_speaker", "agent": "Assistant"}, store.SessionUpdate{})
		add("chat.usage_delta", "Assistant", map[string]any{"kind": "usage_delta", "agent_name": "Assistant", "total_tokens": 20}, store.SessionUpdate{})
		add("chat.text", "Assistant", map[string]any{"kind": "text", "agent": "Assistant", "role": "assistant",
			"content": fmt.Sprintf("answer %d, with a few more words to make it a sentence", i), "message_id": fmt.Sprintf("ma%d", i)}, store.SessionUpdate{})
		req = fmt.Sprintf("req%d", i)
		kind := "input"
		add("chat.input_request", "Assistant", map[string]any{"kind": "input_request", "request_id": req, "prompt": "", "agent": "Assistant"},
			store.SessionUpdate{PendingKind: &kind, PendingID: &req})
	}
	state, _ := json.Marshal(map[string]any{"started": true, "current_agent": "Assistant", "run": fmt.Sprintf("run%d", events-events%6),
		"pending": map[string]any{"kind": "input", "request_id": req, "agent": "Assistant"}})
	if err := st.UpdateSession(ctx, "bench", id, store.SessionUpdate{State: state}); err != nil {
		b.Fatal(err)
	}
	c, _, err := websocket.DefaultDialer.Dial(fmt.Sprintf("%s/ws/assistant/bench/%s/u1?after_seq=%d", base, id, max(events-6, 0)), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	if _, err := readUntil(c, `"chat.resume_boundary"`, nil); err != nil {
		b.Fatal(err)
	}
	w := &wsChat{base: base, c: c}
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"user.input.submit","text":"warm up"}`)); err != nil {
		b.Fatal(err)
	}
	if _, err := readUntil(c, `"chat.input_request"`, nil); err != nil {
		b.Fatal(err)
	}
	return w
}

// BenchmarkWritesBeforeModel counts the store writes a turn waits for before
// its model request leaves: every write takes 50 ms here (a slow remote
// database), so the time from the user's message to the model's request,
// over 50 ms, is that count.
//
//	go test -run '^$' -bench WritesBeforeModel -benchtime 10x ./internal/serve/
func BenchmarkWritesBeforeModel(b *testing.B) {
	const delay = 50 * time.Millisecond
	var arrived atomic.Int64
	llmURL := llmtest.New(b, llmtest.WithRecordLimit(1), llmtest.WithResponder(func(llmtest.Request) llmtest.Reply {
		arrived.Store(time.Now().UnixNano())
		return llmtest.Reply{Text: "ok", Chunks: 1}
	})).URL()
	base, st := countedServer(b, llmURL, ws.Options{})
	w := &wsChat{base: base}
	var waits []time.Duration
	for b.Loop() {
		b.StopTimer()
		st.delay = 0
		if err := fresh([]*wsChat{w}); err != nil {
			b.Fatal(err)
		}
		st.delay = delay
		b.StartTimer()
		start := time.Now()
		if _, _, err := w.turn(); err != nil {
			b.Fatal(err)
		}
		waits = append(waits, time.Duration(arrived.Load()-start.UnixNano()))
	}
	st.delay = 0
	b.ReportMetric(pct(waits, .5)/float64(delay/time.Millisecond), "writes-before-model")
}
