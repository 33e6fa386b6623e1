package store

import "context"

// Write is one step of a chat's batch (Batcher): an event with the session
// update stored with it, a session update alone (Event nil), or a usage
// record (Usage set).
type Write struct {
	Event   *Event
	Message bool // the event is a message (counts in MessageCount)
	Update  SessionUpdate
	Usage   *UsageRecord
}

// Batcher is implemented by a store that can carry out several writes of one
// chat as one step: a chat's run queues its bookkeeping (run_start,
// select_speaker, the reply, the input request, the state it ends in) faster
// than one write at a time commits, and storing what is queued together
// costs one transaction instead of one each.
type Batcher interface {
	// WriteBatch carries out ws in order, all or none, each as AppendEventUpdate,
	// UpdateSession and RecordUsage would. It returns the stored events, one
	// per write with an Event, in order (seqs consecutive).
	WriteBatch(ctx context.Context, appID, chatID string, ws []Write) ([]Event, error)
}

// Fold merges u into acc as applying acc then u would leave the session.
func (acc *SessionUpdate) Fold(u SessionUpdate) {
	if u.Status != nil {
		acc.Status, acc.StatusUnlessAfter = u.Status, u.StatusUnlessAfter
	}
	if u.State != nil {
		acc.State = u.State
	}
	if u.PendingKind != nil {
		acc.PendingKind = u.PendingKind
	}
	if u.PendingID != nil {
		acc.PendingID = u.PendingID
	}
	if u.LastArtifact != nil {
		acc.LastArtifact = u.LastArtifact
	}
	if u.Fence != "" {
		acc.Fence = u.Fence
	}
}
