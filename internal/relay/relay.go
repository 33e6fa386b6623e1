// Package relay carries a chat's live frames between the replicas of one
// deployment, through the MongoDB they share (no other broker): stored
// events, which are already in the events collection, and transient frames
// (streamed chat.print chunks), which one replica announces through a side
// collection. A socket on any replica then sees what a run on any other
// replica emits.
//
// The chat runtime owns ordering: it merges what Watch delivers with its own
// process's frames by seq, so a socket never gets a seq twice or out of
// order. The relay's part is to deliver every stored event of a watched chat
// in seq order, exactly once per watch, and each transient frame of another
// replica once.
package relay

import (
	"context"

	"github.com/mozaiks/mozaiks/internal/store"
)

// Modes.
const (
	// ModeChangeStream: the server pushes new events (replica set, Atlas).
	ModeChangeStream = "change_stream"
	// ModePoll: one reader polls for all watched chats, adaptively.
	ModePoll = "poll"
	// ModeLocal: one process owns the store (the embedded store); nothing
	// crosses processes.
	ModeLocal = "local"
)

// Relay fans live frames out between the processes that share a store.
type Relay interface {
	// Transient announces an unstored frame (a chat.print chunk, already
	// encoded JSON) of a chat to the other replicas. Stored events need no
	// announcement: they are already in the events collection.
	Transient(ctx context.Context, appID, chatID string, frame []byte) error
	// Watch delivers, in order, the chat's stored events with seq >
	// afterSeq (as store.Event, from any replica, this one included: the
	// caller drops the seqs it already has) and the transient frames other
	// replicas announce, until stop is called. One process-wide reader
	// serves all watched chats. Callbacks run on the reader's goroutine:
	// they must not block for long, nor call stop.
	Watch(appID, chatID string, afterSeq int64, onEvent func(store.Event), onTransient func([]byte)) (stop func())
	Mode() string // "change_stream" | "poll" | "local"
}

// Local is the relay of a store only one process uses: nothing to carry.
type Local struct{}

// Transient implements Relay.
func (Local) Transient(context.Context, string, string, []byte) error { return nil }

// Watch implements Relay: this process's own frames are all there is.
func (Local) Watch(string, string, int64, func(store.Event), func([]byte)) func() { return func() {} }

// Mode implements Relay.
func (Local) Mode() string { return ModeLocal }
