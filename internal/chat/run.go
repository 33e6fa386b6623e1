package chat

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/mozaiks/mozaiks/internal/engine"
	"github.com/mozaiks/mozaiks/internal/store"
)

// enqueue adds a job and starts the chat's run loop when none is going.
func (m *Manager) enqueue(r *room, j job) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queue = append(r.queue, j)
	if r.running || m.closing.Load() {
		return
	}
	r.running = true
	m.runs.Add(1)
	go m.runLoop(r)
}

// runLoop runs the chat's queued jobs one after another.
func (m *Manager) runLoop(r *room) {
	defer m.runs.Done()
	for {
		r.mu.Lock()
		if len(r.queue) == 0 || m.closing.Load() {
			r.running = false
			r.mu.Unlock()
			m.forget(r)
			return
		}
		j := r.queue[0]
		r.queue = r.queue[1:]
		later := map[int64]bool{}
		for _, q := range r.queue {
			if q.seq > 0 {
				later[q.seq] = true
			}
		}
		ctx, cancel := context.WithCancel(m.base)
		r.cancel = cancel
		r.mu.Unlock()

		m.runOne(ctx, r, j, later)

		r.mu.Lock()
		r.cancel = nil
		r.mu.Unlock()
		cancel()
	}
}

// runOne takes the chat's lease, runs the engine from the stored transcript
// and state, and stores the state it ends in.
func (m *Manager) runOne(ctx context.Context, r *room, j job, later map[int64]bool) {
	log := m.log.With("app_id", r.appID, "chat_id", r.chatID)
	if !m.opts.SingleProcess {
		if !m.lease(ctx, r, log) {
			return
		}
		defer m.unlease(r, log)
	}
	m.runLeased(ctx, r, j, later, log)
}

// lease takes the chat's run lease (waiting for another replica's run, or a
// crashed process's lease to expire) and keeps renewing it.
func (m *Manager) lease(ctx context.Context, r *room, log *slog.Logger) bool {
	if !m.acquire(ctx, r) {
		if ctx.Err() == nil {
			log.Warn("could not take the chat's run lease; input stays stored for the next run")
		}
		return false
	}
	r.mu.Lock()
	r.stopRenew = m.renewLease(ctx, r)
	r.mu.Unlock()
	return true
}

func (m *Manager) unlease(r *room, log *slog.Logger) {
	r.mu.Lock()
	stop := r.stopRenew
	r.stopRenew = nil
	r.mu.Unlock()
	if stop != nil {
		stop()
	}
	rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.opts.Store.ReleaseLease(rctx, r.appID, r.chatID, m.opts.Owner); err != nil {
		log.Warn("release run lease", "err", err)
	}
}

// runLeased runs one job once this process may run the chat.
func (m *Manager) runLeased(ctx context.Context, r *room, j job, later map[int64]bool, log *slog.Logger) {

	sess, err := m.opts.Store.GetSession(ctx, r.appID, r.chatID)
	if err != nil {
		log.Error("load session for run", "err", err)
		return
	}
	var st engine.State
	if len(sess.State) > 0 {
		if err := json.Unmarshal(sess.State, &st); err != nil {
			log.Error("stored engine state is unreadable; starting from a clean state", "err", err)
			st = engine.State{}
		}
	}
	if j.input == nil && st.Started {
		return // a start that another connect or replica already did
	}
	var transcript []engine.StoredEvent
	if _, _, err := m.scan(ctx, r.appID, r.chatID, 0, func(ev store.Event) {
		var data map[string]any
		_ = json.Unmarshal(ev.Data, &data)
		transcript = append(transcript, engine.StoredEvent{Seq: ev.Seq, Kind: kindOf(ev.Type), Agent: ev.Agent, Data: data})
	}); err != nil {
		log.Error("load transcript for run", "err", err)
		return
	}
	transcript = orderTranscript(transcript, j.seq, later)
	inProgress := store.StatusInProgress
	_ = m.opts.Store.UpdateSession(ctx, r.appID, r.chatID, store.SessionUpdate{Status: &inProgress})

	m.active.Add(1)
	m.observer().RunStarted()
	sink := &roomSink{m: m, r: r, sess: sess, inputSeq: j.seq}
	res, err := m.opts.Runner.Run(ctx, engine.RunRequest{Workflow: sess.Workflow, AppID: r.appID, UserID: sess.UserID,
		ChatID: r.chatID, Transcript: transcript, State: st, Input: j.input, Sink: sink})
	m.active.Add(-1)

	// Persist how the run ended even if it was cancelled.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err != nil {
		log.Error("run failed", "err", err)
		m.observer().RunFinished(store.StatusFailed)
		if !errors.Is(err, store.ErrUnavailable) {
			_, _ = m.publish(pctx, r, "chat.error", "", map[string]any{"kind": "error", "message": "the workflow stopped on an internal error",
				"error_code": "RUN_FAILED", "retryable": true}, false)
		}
		// The chat stays usable: the next message starts a new run.
		status := store.StatusAwaitingInput
		_ = m.opts.Store.UpdateSession(pctx, r.appID, r.chatID, store.SessionUpdate{Status: &status})
		return
	}
	m.observer().RunFinished(res.Status)
	if !sink.completed && res.Reason == engine.ReasonCancelled {
		// The engine returns without run_complete when it is cancelled: the
		// clients still learn that the run is over.
		_, _ = m.publish(pctx, r, "chat.run_complete", "", map[string]any{"kind": engine.KindRunComplete, "status": res.Status,
			"reason": res.Reason, "total_tokens": res.Tokens, "duration_sec": res.Duration.Seconds()}, false)
	}
	stateJSON, _ := json.Marshal(res.State)
	kind, id := "", ""
	if p := res.State.Pending; p != nil {
		kind, id = p.Kind, p.RequestID
	}
	r.mu.Lock()
	if r.answered[id] {
		// Answered already (the answer is queued): do not offer it again.
		kind, id = "", ""
	}
	r.answered = nil
	r.mu.Unlock()
	status := res.Status
	if status == "" {
		status = store.StatusAwaitingInput
	}
	if err := m.opts.Store.UpdateSession(pctx, r.appID, r.chatID, store.SessionUpdate{Status: &status, State: stateJSON,
		PendingKind: &kind, PendingID: &id}); err != nil {
		log.Error("store run result", "err", err)
	}
	log.Debug("run ended", "status", status, "reason", res.Reason, "tokens", res.Tokens, "duration", res.Duration)
}

func kindOf(typ string) string {
	if len(typ) > 5 && typ[:5] == "chat." {
		return typ[5:]
	}
	return typ
}

// acquire waits for the chat's lease: another replica's run, or a crashed
// process's lease until it expires.
func (m *Manager) acquire(ctx context.Context, r *room) bool {
	wait := 100 * time.Millisecond
	deadline := time.Now().Add(2*m.opts.LeaseTTL + 5*time.Second)
	for {
		ok, err := m.opts.Store.AcquireLease(ctx, r.appID, r.chatID, m.opts.Owner, m.opts.LeaseTTL)
		if ok {
			return true
		}
		if err != nil && !errors.Is(err, store.ErrUnavailable) {
			m.log.Warn("acquire run lease", "chat_id", r.chatID, "err", err)
			return false
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
		wait = min(wait*2, 2*time.Second)
	}
}

func (m *Manager) renewLease(ctx context.Context, r *room) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(m.opts.LeaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if _, err := m.opts.Store.AcquireLease(ctx, r.appID, r.chatID, m.opts.Owner, m.opts.LeaseTTL); err != nil && ctx.Err() == nil {
					m.log.Warn("renew run lease", "chat_id", r.chatID, "err", err)
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

// roomSink persists and fans out what the engine emits.
type roomSink struct {
	m         *Manager
	r         *room
	sess      store.Session
	inputSeq  int64 // the user message this run answers; recorded on run_start
	completed bool  // the engine emitted run_complete
}

func (s *roomSink) Emit(ctx context.Context, ev engine.Event) error {
	data := ev.Data
	if data == nil {
		data = map[string]any{}
	}
	data["kind"] = ev.Kind
	if ev.Agent != "" {
		if _, ok := data["agent"]; !ok {
			data["agent"] = ev.Agent
		}
	}
	typ := "chat." + ev.Kind
	if ev.Kind == engine.KindRunComplete {
		s.completed = true
	}
	if ev.Kind == engine.KindRunStart && s.inputSeq > 0 {
		data["input_seq"] = s.inputSeq
	}
	if !ev.Stored() {
		f := Encode(typ, 0, time.Now(), data, false)
		if ev.Kind == engine.KindPrint {
			f = EncodePrint(time.Now(), data)
		}
		s.m.broadcast(s.r, f)
		return nil
	}
	switch ev.Kind {
	case engine.KindInputRequest, engine.KindToolCall:
		// Store what the chat waits for before the client can see the
		// question, so an answer that comes back at once finds it.
		kind, id := "input", str(data["request_id"])
		if ev.Kind == engine.KindToolCall {
			kind, id = "ui_tool", str(data["eventId"])
		}
		if id != "" && (ev.Kind == engine.KindInputRequest || data["awaiting_response"] == true) {
			if err := s.m.opts.Store.UpdateSession(ctx, s.r.appID, s.r.chatID, store.SessionUpdate{PendingKind: &kind, PendingID: &id}); err != nil {
				return err
			}
		}
	}
	switch ev.Kind {
	case engine.KindUsageDelta:
		s.recordUsage(ctx, ev, data)
	case engine.KindToolCall:
		if data["display"] == "artifact" {
			if art, err := json.Marshal(map[string]any{"tool_name": data["tool_name"], "component_type": data["component_type"],
				"payload": data["payload"], "eventId": data["corr"]}); err == nil {
				_ = s.m.opts.Store.UpdateSession(ctx, s.r.appID, s.r.chatID, store.SessionUpdate{LastArtifact: art})
			}
		}
	}
	_, err := s.m.publish(ctx, s.r, typ, ev.Agent, data, ev.Kind == engine.KindText)
	return err
}

// recordUsage stores one usage record and writes the per-call log line
// (the "token usage per (app_id, user_id, chat_id)" of the deployment guide).
func (s *roomSink) recordUsage(ctx context.Context, ev engine.Event, data map[string]any) {
	data["app_id"], data["user_id"], data["chat_id"], data["workflow_name"] = s.r.appID, s.sess.UserID, s.r.chatID, s.sess.Workflow
	num := func(k string) int64 {
		switch v := data[k].(type) {
		case int:
			return int64(v)
		case int64:
			return v
		case float64:
			return int64(v)
		}
		return 0
	}
	agent, _ := data["agent_name"].(string)
	if agent == "" {
		agent = ev.Agent
	}
	model, _ := data["model_name"].(string)
	u := store.UsageRecord{AppID: s.r.appID, UserID: s.sess.UserID, ChatID: s.r.chatID, Workflow: s.sess.Workflow, Agent: agent,
		Model: model, PromptTokens: num("prompt_tokens"), CompletionTokens: num("completion_tokens"), TotalTokens: num("total_tokens"),
		Duration: time.Duration(num("duration_ms")) * time.Millisecond}
	if err := s.m.opts.Store.RecordUsage(context.WithoutCancel(ctx), u); err != nil {
		s.m.log.Warn("record usage", "chat_id", s.r.chatID, "err", err)
	}
	s.m.observer().LLMCall(model, u.Duration, u.PromptTokens, u.CompletionTokens)
	s.m.log.LogAttrs(ctx, slog.LevelInfo, "llm usage", slog.String("app_id", u.AppID), slog.String("user_id", u.UserID),
		slog.String("chat_id", u.ChatID), slog.String("workflow", u.Workflow), slog.String("agent", u.Agent),
		slog.String("model", u.Model), slog.Int64("prompt_tokens", u.PromptTokens), slog.Int64("completion_tokens", u.CompletionTokens),
		slog.Int64("total_tokens", u.TotalTokens), slog.Int64("duration_ms", u.Duration.Milliseconds()))
}

// orderTranscript puts user messages where the workflow read them rather
// than where they were stored. A message sent during a run is stored (and
// acknowledged) at once, so its seq falls inside the run it interrupted; the
// run that answers it records input_seq on its run_start. Messages still
// queued for later runs are left out, and the one this run answers goes last.
func orderTranscript(evs []engine.StoredEvent, current int64, later map[int64]bool) []engine.StoredEvent {
	consumed := map[int64]bool{}
	for _, ev := range evs {
		if ev.Kind == engine.KindRunStart {
			if s := seqValue(ev.Data["input_seq"]); s > 0 {
				consumed[s] = true
			}
		}
	}
	isUser := func(ev engine.StoredEvent) bool { return ev.Kind == engine.KindText && ev.Agent == "user" }
	held := map[int64]engine.StoredEvent{}
	out := make([]engine.StoredEvent, 0, len(evs))
	var cur *engine.StoredEvent
	for i := range evs {
		ev := evs[i]
		switch {
		case isUser(ev) && ev.Seq == current:
			cur = &evs[i]
			continue
		case isUser(ev) && later[ev.Seq]:
			continue
		case isUser(ev) && consumed[ev.Seq]:
			held[ev.Seq] = ev
			continue
		case ev.Kind == engine.KindRunStart:
			if s := seqValue(ev.Data["input_seq"]); s > 0 {
				if u, ok := held[s]; ok {
					out = append(out, u)
					delete(held, s)
				}
			}
		}
		out = append(out, ev)
	}
	if cur != nil {
		out = append(out, *cur)
	}
	return out
}

func seqValue(v any) int64 {
	switch n := v.(type) {
	case float64:
		return int64(n)
	case int64:
		return n
	case int:
		return int64(n)
	case json.Number:
		i, _ := n.Int64()
		return i
	}
	return 0
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
