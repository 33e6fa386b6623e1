package engine

import (
	"context"
	"encoding/json"
	"io/fs"
	mrand "math/rand/v2"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/mozaiks/mozaiks/internal/llm"
	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
	"github.com/mozaiks/mozaiks/internal/workflow"
)

// rec is an event as the runtime sees it: its kind, agent and wire data.
type rec struct {
	Kind  string
	Agent string
	Data  map[string]any
	Event Event
}

// recorder is a Sink that keeps every event.
type recorder struct {
	mu     sync.Mutex
	events []rec
	fail   error
}

func (r *recorder) Emit(_ context.Context, ev Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.events = append(r.events, rec{Kind: ev.Kind(), Agent: ev.From(), Data: ev.Data(), Event: ev})
	return nil
}

// chat plays the runtime: it stores events and state as JSON, as the store
// does, and builds a fresh engine for every run, as a restarted server would.
type chat struct {
	t          *testing.T
	set        *workflow.Set
	srv        *llmtest.Server
	opts       Options
	workflow   string
	transcript []StoredEvent
	stateJSON  []byte
	last       []rec // events of the last run, including print
	seq        int64
}

func newChat(t *testing.T, set *workflow.Set, name string, opts ...func(*Options)) *chat {
	t.Helper()
	srv := llmtest.New(t)
	client := llm.NewOpenAI(llm.Options{APIKey: "sk-test", BaseURL: srv.URL(), MaxRetries: -1, Timeout: 5 * time.Second})
	o := Options{Workflows: set, LLM: client, DefaultModel: "default-model", Getenv: func(string) string { return "" }}
	for _, f := range opts {
		f(&o)
	}
	return &chat{t: t, set: set, srv: srv, opts: o, workflow: name, stateJSON: []byte(`{}`)}
}

func (c *chat) state() State {
	c.t.Helper()
	var s State
	if err := json.Unmarshal(c.stateJSON, &s); err != nil {
		c.t.Fatal(err)
	}
	return s
}

func (c *chat) store(kind, agent string, data map[string]any) {
	c.t.Helper()
	b, err := json.Marshal(data)
	if err != nil {
		c.t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		c.t.Fatal(err)
	}
	c.seq++
	c.transcript = append(c.transcript, StoredEvent{Seq: c.seq, Kind: kind, Agent: agent, Data: back})
}

func (c *chat) runCtx(ctx context.Context, in *Input) Result {
	c.t.Helper()
	rec := &recorder{}
	res, err := New(c.opts).Run(ctx, RunRequest{
		Workflow: c.workflow, AppID: "app", UserID: "u1", ChatID: "c1",
		Transcript: append([]StoredEvent(nil), c.transcript...), State: c.state(), Input: in, Sink: rec,
	})
	if err != nil {
		c.t.Fatalf("Run: %v", err)
	}
	c.last = rec.events
	for _, ev := range rec.events {
		if Stored(ev.Event) {
			c.store(ev.Kind, ev.Agent, ev.Data)
		}
	}
	b, err := json.Marshal(res.State)
	if err != nil {
		c.t.Fatal(err)
	}
	c.stateJSON = b
	return res
}

func (c *chat) run(in *Input) Result { c.t.Helper(); return c.runCtx(context.Background(), in) }

// say stores the user's message as the runtime does, then runs.
func (c *chat) say(text string) Result {
	c.t.Helper()
	reqID := ""
	if p := c.state().Pending; p != nil {
		reqID = p.RequestID
	}
	c.store(KindText, "user", map[string]any{"agent": "user", "role": "user", "content": text, "message_id": "u_" + text})
	return c.run(&Input{Kind: InputMessage, Text: text, RequestID: reqID})
}

func (c *chat) kinds(kind string) []rec {
	var out []rec
	for _, ev := range c.last {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

func (c *chat) lastOf(kind string) rec {
	c.t.Helper()
	evs := c.kinds(kind)
	if len(evs) == 0 {
		c.t.Fatalf("no %s event in %v", kind, kindList(c.last))
	}
	return evs[len(evs)-1]
}

func kindList(evs []rec) []string {
	var out []string
	for _, e := range evs {
		if e.Kind != KindPrint {
			out = append(out, e.Kind)
		}
	}
	return out
}

// speakers lists select_speaker agents of the whole transcript.
func (c *chat) speakers() []string {
	var out []string
	for _, ev := range c.transcript {
		if ev.Kind == KindSelectSpeaker {
			out = append(out, ev.Agent)
		}
	}
	return out
}

// mustSet loads workflows from an in-memory tree of name/file -> YAML.
func mustSet(t *testing.T, files map[string]string) *workflow.Set {
	t.Helper()
	m := fstest.MapFS{}
	for k, v := range files {
		m[k] = &fstest.MapFile{Data: []byte(v)}
	}
	return mustSetFS(t, m)
}

func mustSetFS(t *testing.T, fsys fs.FS) *workflow.Set {
	t.Helper()
	set, diags := workflow.LoadSet("", fsys)
	for _, d := range diags {
		if d.Severity == workflow.SevError {
			t.Fatalf("load: %s", d)
		}
	}
	return set
}

// agentOf tells which agent a recorded request was made for, from the system prompt.
func systemOf(r llmtest.Request) string {
	if len(r.Messages) > 0 && r.Messages[0].Role == "system" {
		return r.Messages[0].Content
	}
	return ""
}

func seeded(seed uint64) func(*Options) {
	return func(o *Options) { o.Rand = mrand.New(mrand.NewPCG(seed, seed)) }
}
