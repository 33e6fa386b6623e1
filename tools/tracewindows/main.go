// Command tracewindows splits an execution trace's CPU time by goroutine
// (named by the function it started in) over time windows that follow each
// log event of a category: what ran, or sat in a syscall, in the first
// milliseconds after each marked moment, averaged over the marks.
//
// BenchmarkTTFTPhases logs "round" at the start of each 100-chat round:
//
//	go test -c -o /tmp/serve.test ./internal/serve/
//	(cd internal/serve && /tmp/serve.test -test.run '^$' -test.bench TTFTPhases -test.benchtime 10x -test.trace /tmp/ph.trace)
//	cd tools/tracewindows && go run . -trace /tmp/ph.trace
//
// BenchmarkTTFTApart logs it too, in the trace of the server's process
// alone (-bench 'TTFTApart/chats=100$').
//
// It is its own module, so the runtime does not depend on golang.org/x/exp.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/exp/trace"
)

func main() {
	path := flag.String("trace", "", "execution trace (go test -trace)")
	category := flag.String("category", "round", "log category that marks a window's start (runtime/trace.Log)")
	edges := flag.String("windows", "0,3,6,9,12,15,20,25,30,35,40,50,70", "window edges in ms after each mark")
	top := flag.Int("top", 8, "goroutine kinds listed per window")
	flag.Parse()
	var ms []float64
	for _, e := range strings.Split(*edges, ",") {
		v, err := strconv.ParseFloat(e, 64)
		if err != nil {
			log.Fatalf("-windows: %v", err)
		}
		ms = append(ms, v)
	}
	f, err := os.Open(*path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	marks, spans, kind, err := read(f, *category)
	if err != nil {
		log.Fatal(err)
	}
	if len(marks) == 0 {
		log.Fatalf("no %q log events in the trace", *category)
	}
	fmt.Printf("%d marks\n", len(marks))
	for w := 0; w+1 < len(ms); w++ {
		by := map[string]float64{}
		total := 0.0
		for _, m := range marks {
			a, b := m+trace.Time(ms[w]*1e6), m+trace.Time(ms[w+1]*1e6)
			for _, s := range spans {
				if lo, hi := max(a, s.from), min(b, s.to); hi > lo {
					d := float64(hi-lo) / 1e6 / float64(len(marks))
					by[kind[s.g]] += d
					total += d
				}
			}
		}
		names := make([]string, 0, len(by))
		for k := range by {
			names = append(names, k)
		}
		sort.Slice(names, func(i, j int) bool { return by[names[i]] > by[names[j]] })
		fmt.Printf("[%4.0f-%4.0f ms] busy %.2f ms\n", ms[w], ms[w+1], total)
		for _, k := range names[:min(*top, len(names))] {
			fmt.Printf("    %6.2f  %s\n", by[k], k)
		}
	}
}

// span is a stretch a goroutine ran or sat in a syscall.
type span struct {
	g        trace.GoID
	from, to trace.Time
}

func read(r io.Reader, category string) (marks []trace.Time, spans []span, kind map[trace.GoID]string, err error) {
	tr, err := trace.NewReader(r)
	if err != nil {
		return nil, nil, nil, err
	}
	kind = map[trace.GoID]string{}
	on := map[trace.GoID]trace.Time{}
	busy := func(s trace.GoState) bool { return s == trace.GoRunning || s == trace.GoSyscall }
	for {
		ev, err := tr.ReadEvent()
		if err == io.EOF {
			return marks, spans, kind, nil
		}
		if err != nil {
			return nil, nil, nil, err
		}
		switch ev.Kind() {
		case trace.EventLog:
			if ev.Log().Category == category {
				marks = append(marks, ev.Time())
			}
		case trace.EventStateTransition:
			st := ev.StateTransition()
			if st.Resource.Kind != trace.ResourceGoroutine {
				continue
			}
			g := st.Resource.Goroutine()
			if k := kind[g]; k == "" || k == "?" {
				kind[g] = root(st.Stack, ev.Stack())
			}
			from, to := st.Goroutine()
			switch {
			case busy(to) && !busy(from):
				on[g] = ev.Time()
			case busy(from) && !busy(to):
				if t, ok := on[g]; ok {
					spans = append(spans, span{g, t, ev.Time()})
					delete(on, g)
				}
			}
		}
	}
}

// root is the outermost function of the first stack that has one: the
// function the goroutine started in.
func root(stacks ...trace.Stack) string {
	for _, s := range stacks {
		last := ""
		for fr := range s.Frames() {
			last = fr.Func
		}
		if last != "" {
			return strings.TrimPrefix(last, "github.com/mozaiks/mozaiks/internal/")
		}
	}
	return "?"
}
