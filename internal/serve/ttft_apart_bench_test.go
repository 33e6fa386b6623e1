//go:build !windows

package serve_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime/trace"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
	"github.com/mozaiks/mozaiks/internal/serve/ws"
)

// BenchmarkTTFTApart is BenchmarkTTFT with the server alone in this process:
// the fake model and every client (direct, SDK and mozaiks) run in a child
// process, this test binary run again with MOZAIKS_TTFT_DRIVER set (see
// ttftDriver). In production the model and the browsers are elsewhere; in
// BenchmarkTTFT they share the server's Go scheduler, so the model's reads
// of requests the server wrote wait behind the server's own runnable
// goroutines (the network is polled when a scheduler runs out of work) and
// the server's requests look slow to reach the model. Here the processes
// share only the machine's two cores, as the OS schedules them.
// server-cpu-us/turn is the server process's CPU per turn during the
// mozaiks rounds.
//
//	go test -run '^$' -bench TTFTApart -benchtime 20x ./internal/serve/
func BenchmarkTTFTApart(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("chats=%d", n), func(b *testing.B) {
			d := startDriver(b)
			base, st := countedServer(b, d.modelURL, ws.Options{})
			relay := relayServer(b, d.modelURL, n)
			d.send("run %s %s %d %d", base, relay, n, b.N)
			var direct, viaSDK, viaRelay, moz []float64
			var cpu, relayCPU time.Duration
			var writes int64
			// gated lets the driver's round of kind go and returns its
			// times to first token and this process's CPU over it. With
			// -test.trace, tools/tracewindows splits that CPU by goroutine
			// over the rounds it marks (category "round" for mozaiks,
			// "relayround" for the relay).
			gated := func(kind, mark string) ([]float64, time.Duration) {
				c0 := cpuNow()
				trace.Log(context.Background(), mark, "start")
				d.send("go")
				f := d.line()
				if f[0] != kind {
					b.Fatalf("driver: %q after %s-begin", f, kind)
				}
				return floats(b, f[1:]), cpuNow() - c0
			}
			for {
				f := d.line()
				switch f[0] {
				case "moz-begin":
					w0 := st.writes.Load()
					t, c := gated("moz", "round")
					moz, cpu, writes = append(moz, t...), cpu+c, writes+st.writes.Load()-w0
				case "relay-begin":
					t, c := gated("relay", "relayround")
					viaRelay, relayCPU = append(viaRelay, t...), relayCPU+c
				case "direct":
					direct = append(direct, floats(b, f[1:])...)
				case "sdk":
					viaSDK = append(viaSDK, floats(b, f[1:])...)
				case "done":
					ms := func(s []float64) []time.Duration {
						ds := make([]time.Duration, len(s))
						for i, v := range s {
							ds[i] = time.Duration(v * float64(time.Millisecond))
						}
						return ds
					}
					reportTTFT(b, ms(direct), ms(viaSDK), ms(moz))
					reportRelay(b, ms(direct), ms(viaRelay), ms(moz))
					b.ReportMetric(float64(cpu)/float64(len(moz))/1e3, "server-cpu-us/turn")
					b.ReportMetric(float64(relayCPU)/float64(len(viaRelay))/1e3, "relay-cpu-us/turn")
					b.ReportMetric(float64(writes)/float64(len(moz)), "store-writes/turn")
					return
				default:
					b.Fatalf("driver: %q", f)
				}
			}
		})
	}
}

func floats(b *testing.B, f []string) []float64 {
	out := make([]float64, len(f))
	for i, s := range f {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			b.Fatalf("driver: %v", err)
		}
		out[i] = v
	}
	return out
}

const ttftDriverEnv = "MOZAIKS_TTFT_DRIVER"

func init() {
	if os.Getenv(ttftDriverEnv) == "" {
		return
	}
	if err := ttftDriver(os.Stdin, os.Stdout); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// driver is the parent's end of the child process.
type driver struct {
	b        *testing.B
	modelURL string
	in       io.Writer
	out      *bufio.Scanner
}

func startDriver(b *testing.B) *driver {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run", "^$")
	cmd.Env = append(os.Environ(), ttftDriverEnv+"=1")
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		in.Close()
		_ = cmd.Wait()
	})
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	d := &driver{b: b, in: in, out: sc}
	f := d.line()
	if f[0] != "model" || len(f) != 2 {
		b.Fatalf("driver: %q", f)
	}
	d.modelURL = f[1]
	return d
}

func (d *driver) send(format string, args ...any) {
	if _, err := fmt.Fprintf(d.in, format+"\n", args...); err != nil {
		d.b.Fatal(err)
	}
}

// line is the driver's next line, split in fields; an "error" line fails.
func (d *driver) line() []string {
	if !d.out.Scan() {
		d.b.Fatalf("driver ended: %v", d.out.Err())
	}
	f := strings.Fields(d.out.Text())
	if len(f) == 0 || f[0] == "error:" {
		d.b.Fatalf("driver: %s", d.out.Text())
	}
	return f
}

// ttftDriver is the child's side: it serves the fake model (as
// BenchmarkTTFT's) and prints "model <url>"; given "run <ws base> <relay
// base> <chats> <rounds>" it warms up, then each round prints the time to
// first token of n direct clients ("direct ms..."), of n SDK chat apps
// ("sdk ms..."), once the parent answers "relay-begin" with "go", of n
// chats of the bare relay (relayServer, "relay ms..."), and, once it
// answers "moz-begin" with "go", of n mozaiks chats ("moz ms..."); then
// "done".
func ttftDriver(stdin io.Reader, stdout io.Writer) error {
	rep := llmtest.Reply{Text: "one two three four five six seven eight", FirstByteDelay: 20 * time.Millisecond, TokenDelay: 2 * time.Millisecond}
	srv := httptest.NewServer(llmtest.NewHandler(llmtest.WithRecordLimit(1),
		llmtest.WithResponder(func(llmtest.Request) llmtest.Reply { return rep })))
	defer srv.Close()
	llmURL := srv.URL + "/v1"
	in := bufio.NewScanner(stdin)
	w := bufio.NewWriter(stdout)
	say := func(s string) error {
		if _, err := w.WriteString(s + "\n"); err != nil {
			return err
		}
		return w.Flush()
	}
	if err := say("model " + llmURL); err != nil {
		return err
	}
	if !in.Scan() {
		return fmt.Errorf("no run command: %v", in.Err())
	}
	var base, relayBase string
	var n, rounds int
	if _, err := fmt.Sscanf(in.Text(), "run %s %s %d %d", &base, &relayBase, &n, &rounds); err != nil {
		return fmt.Errorf("run command %q: %w", in.Text(), err)
	}
	if err := raiseNoFile(uint64(3*n + 256)); err != nil {
		return err
	}
	hc := directClient(n)
	sdk := newSDKChats(n, llmURL)
	chats, relayed := make([]*wsChat, n), make([]*wsChat, n)
	for i := range chats {
		chats[i], relayed[i] = &wsChat{base: base}, &wsChat{base: relayBase}
	}
	report := func(kind string, ttfts []time.Duration) error {
		var sb strings.Builder
		sb.WriteString(kind)
		for _, t := range ttfts {
			sb.WriteString(" " + strconv.FormatFloat(float64(t)/float64(time.Millisecond), 'f', 3, 64))
		}
		return say(sb.String())
	}
	// gated runs a round of ws chats once the parent, told "<kind>-begin",
	// answers "go" (it measures its CPU over the round).
	gated := func(kind string, ws []*wsChat) error {
		if err := fresh(ws); err != nil {
			return err
		}
		if err := say(kind + "-begin"); err != nil {
			return err
		}
		if !in.Scan() || in.Text() != "go" {
			return fmt.Errorf("no go from the parent: %q %v", in.Text(), in.Err())
		}
		t, _, _, err := round(n, func(i int) (time.Duration, int, error) { return ws[i].turn() })
		if err != nil {
			return err
		}
		return report(kind, t)
	}
	// Warm up: dial every chat and open the model connections.
	if err := fresh(chats); err != nil {
		return err
	}
	if err := fresh(relayed); err != nil {
		return err
	}
	for _, turn := range []func(int) (time.Duration, int, error){
		func(i int) (time.Duration, int, error) { return chats[i].turn() },
		func(i int) (time.Duration, int, error) { return relayed[i].turn() },
		func(int) (time.Duration, int, error) { return directTurn(hc, llmURL) },
		func(i int) (time.Duration, int, error) { return sdk[i].turn() },
	} {
		if _, _, _, err := round(n, turn); err != nil {
			return err
		}
	}
	for range rounds {
		d, _, _, err := round(n, func(int) (time.Duration, int, error) { return directTurn(hc, llmURL) })
		if err != nil {
			return err
		}
		if err := report("direct", d); err != nil {
			return err
		}
		s, _, _, err := round(n, func(i int) (time.Duration, int, error) { return sdk[i].turn() })
		if err != nil {
			return err
		}
		if err := report("sdk", s); err != nil {
			return err
		}
		if err := gated("relay", relayed); err != nil {
			return err
		}
		if err := gated("moz", chats); err != nil {
			return err
		}
	}
	for _, c := range append(chats, relayed...) {
		c.c.Close()
	}
	return say("done")
}

// reportRelay reports the bare relay's times to first token (relayServer),
// what it adds over the direct clients (the libraries' and the sockets'
// floor) and what mozaiks adds over it (mozaiks' own share).
func reportRelay(b *testing.B, direct, viaRelay, moz []time.Duration) {
	b.ReportMetric(pct(viaRelay, .5), "relay-p50-ms")
	b.ReportMetric(pct(viaRelay, .99), "relay-p99-ms")
	b.ReportMetric(pct(viaRelay, .5)-pct(direct, .5), "relay-added-p50-ms")
	b.ReportMetric(pct(viaRelay, .99)-pct(direct, .99), "relay-added-p99-ms")
	b.ReportMetric(pct(moz, .5)-pct(viaRelay, .5), "added-vs-relay-p50-ms")
	b.ReportMetric(pct(moz, .99)-pct(viaRelay, .99), "added-vs-relay-p99-ms")
}
