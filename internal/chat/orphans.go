package chat

import (
	"context"

	"github.com/mozaiks/mozaiks/internal/engine"
	"github.com/mozaiks/mozaiks/internal/store"
)

// leftoverWork reports whether the chat has work left besides j's
// message: a run that a stopping replica handed off unfinished, or another
// user message that no run has read and no job here waits for (its replica
// stopped before running it), while the chat moved on. Several replicas
// only, and not within a recovery: the run for j then goes through
// recovery, which finishes the run and answers every unanswered message in
// seq order, j's included.
func (m *Manager) leftoverWork(ctx context.Context, r *room, j job, sess store.Session, st engine.State) bool {
	// Recovery takes only chats in progress.
	if m.opts.SingleProcess || j.msg == nil || j.resume || ctx.Value(recoveringKey{}) != nil || sess.Status != store.StatusInProgress {
		return false
	}
	ev, err := j.msg.wait(ctx)
	if err != nil || ev.Seq == 0 {
		return false
	}
	open, unanswered := r.pending(st)
	if open {
		return true
	}
	for _, u := range unanswered {
		if u.Seq != ev.Seq {
			return true
		}
	}
	return false
}

// unconsumedLater adds to later every user message no run has read: a
// resumed run continues the one that read its own message, and must not
// answer messages stored after it began (each gets its own run).
func unconsumedLater(evs []engine.StoredEvent, later map[string]bool) {
	_, unanswered := pendingWork(evs, engine.State{}, nil)
	for _, ev := range unanswered {
		if id := str(ev.Data["message_id"]); id != "" {
			later[id] = true
		}
	}
}

// recoveringKey marks the context of a recovery (recoverChat): the runs it
// makes do not start another one.
type recoveringKey struct{}

func inRecovery(ctx context.Context) context.Context {
	return context.WithValue(ctx, recoveringKey{}, true)
}

// askedAfterLastRun reports whether the last run asked the user for input
// after it started: it ended, even if the state that says so was not stored
// (its replica stopped first). Resuming it would answer its message again.
func askedAfterLastRun(evs []engine.StoredEvent) bool {
	asked := false
	for _, ev := range evs {
		switch ev.Kind {
		case engine.KindRunStart:
			asked = false
		case engine.KindInputRequest:
			asked = true
		}
	}
	return asked
}
