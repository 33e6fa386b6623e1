package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/mozaiks/mozaiks/internal/llm"
	"github.com/mozaiks/mozaiks/internal/workflow"
)

// Options are the engine's dependencies.
type Options struct {
	Workflows    *workflow.Set
	LLM          llm.Client
	DefaultModel string       // used by agents that name no model
	HTTPClient   *http.Client // for http tools; nil: a client with no global timeout (each tool has its own)
	Getenv       func(string) string
	Logger       *slog.Logger
	Rand         *mrand.Rand // RandomPattern's choices; nil: seeded randomly
	// HistoryMessages bounds the conversation a model request carries to
	// about this many recent messages, starting at a user message (the
	// system prompt always goes). 0: DefaultHistoryMessages; negative: all.
	HistoryMessages int
}

// DefaultHistoryMessages is Options.HistoryMessages when unset: a long chat
// costs a turn what a short one does, and stays inside a model's context.
const DefaultHistoryMessages = 100

// ErrUnknownWorkflow is returned by Run for a workflow the set does not hold.
var ErrUnknownWorkflow = errors.New("unknown workflow")

// Engine runs workflows. It is safe for concurrent use by many chats.
type Engine struct {
	opts   Options
	randMu sync.Mutex
}

var _ Runner = (*Engine)(nil)

// New builds an engine.
func New(opts Options) *Engine {
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{}
	}
	if opts.HistoryMessages == 0 {
		opts.HistoryMessages = DefaultHistoryMessages
	}
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Rand == nil {
		opts.Rand = mrand.New(mrand.NewPCG(mrand.Uint64(), mrand.Uint64()))
	}
	if opts.DefaultModel == "" {
		opts.DefaultModel = llm.DefaultModel
	}
	return &Engine{opts: opts}
}

func (e *Engine) intn(n int) int {
	e.randMu.Lock()
	defer e.randMu.Unlock()
	return e.opts.Rand.IntN(n)
}

// Run runs the workflow for one chat until it needs the user, ends, fails or
// ctx is cancelled. The error is non-nil only when the run could not happen
// at all (unknown workflow, no sink) or the sink failed; model and tool
// failures are events, and the chat stays usable.
func (e *Engine) Run(ctx context.Context, req RunRequest) (Result, error) {
	if e.opts.Workflows == nil {
		return Result{}, fmt.Errorf("engine has no workflows")
	}
	wf, ok := e.opts.Workflows.Get(req.Workflow)
	if !ok {
		return Result{State: req.State}, fmt.Errorf("%w %q", ErrUnknownWorkflow, req.Workflow)
	}
	if req.Sink == nil {
		return Result{State: req.State}, fmt.Errorf("run %s: no sink", req.Workflow)
	}
	r := &run{
		e:      e,
		wf:     wf,
		req:    req,
		st:     cloneState(req.State),
		events: req.Transcript,
		start:  time.Now(),
		runID:  newID("run_"),
	}
	return r.run(ctx)
}

func cloneState(s State) State {
	c := s
	c.Context = make(map[string]any, len(s.Context))
	for k, v := range s.Context {
		c.Context[k] = v
	}
	c.AutoReplies = make(map[string]int, len(s.AutoReplies))
	for k, v := range s.AutoReplies {
		c.AutoReplies[k] = v
	}
	if s.Pending != nil {
		p := *s.Pending
		c.Pending = &p
	}
	return c
}

func newID(prefix string) string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return prefix + hex.EncodeToString(b[:])
}
