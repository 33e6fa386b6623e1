package llm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
)

// benchReply is 200 tokens, streamed one word per chunk.
var benchReply = strings.TrimSpace(strings.Repeat("token ", 200))

func benchServer(b *testing.B) *llmtest.Server {
	srv := llmtest.New(b, llmtest.WithRecordLimit(1), llmtest.WithResponder(func(llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Text: benchReply}
	}))
	return srv
}

const benchBody = `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"go"}]}`

// directStream is the baseline: a bare SSE reader decoding only the fields a
// client cannot do without.
func directStream(hc *http.Client, url string) (string, error) {
	resp, err := hc.Post(url+"/chat/completions", "application/json", strings.NewReader(benchBody))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var (
		out strings.Builder
		ev  struct {
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
		}
	)
	r := bufio.NewReader(resp.Body)
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return "", err
		}
		data, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("data: "))
		if !ok {
			continue
		}
		if string(data) == "[DONE]" {
			return out.String(), nil
		}
		ev.Choices = nil // a reused element would keep the last content when a delta has none
		if err := json.Unmarshal(data, &ev); err != nil {
			return "", err
		}
		for _, c := range ev.Choices {
			out.WriteString(c.Delta.Content)
		}
	}
}

func benchClient(srv *llmtest.Server) Client {
	return NewOpenAI(Options{BaseURL: srv.URL(), APIKey: "sk-bench"})
}

func BenchmarkStreamDirect(b *testing.B) {
	srv := benchServer(b)
	hc := defaultHTTPClient()
	b.ReportAllocs()
	for b.Loop() {
		got, err := directStream(hc, srv.URL())
		if err != nil || got != benchReply {
			b.Fatalf("%q %v", got, err)
		}
	}
}

func BenchmarkStreamClient(b *testing.B) {
	srv := benchServer(b)
	c := benchClient(srv)
	req := Request{Messages: []Message{{Role: "user", Content: "go"}}}
	chunks := 0
	b.ReportAllocs()
	for b.Loop() {
		res, err := c.Stream(context.Background(), req, func(Chunk) { chunks++ })
		if err != nil || res.Content != benchReply {
			b.Fatalf("%v", err)
		}
	}
}

// The Parallel200 variants run 200 streams at once (parallelism 100 per
// CPU on the 2-CPU reference machine; b.SetParallelism scales with
// GOMAXPROCS).
func BenchmarkStreamDirectParallel200(b *testing.B) {
	srv := benchServer(b)
	hc := defaultHTTPClient()
	b.SetParallelism(100)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if got, err := directStream(hc, srv.URL()); err != nil || got != benchReply {
				b.Errorf("%q %v", got, err)
				return
			}
		}
	})
}

func BenchmarkStreamClientParallel200(b *testing.B) {
	srv := benchServer(b)
	c := benchClient(srv)
	req := Request{Messages: []Message{{Role: "user", Content: "go"}}}
	b.SetParallelism(100)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if res, err := c.Stream(context.Background(), req, nil); err != nil || res.Content != benchReply {
				b.Errorf("%v", err)
				return
			}
		}
	})
}
