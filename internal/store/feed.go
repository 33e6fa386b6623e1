package store

import (
	"context"
	"time"
)

// ChatCursor names a chat and the last seq a reader has of it.
type ChatCursor struct {
	AppID, ChatID string
	After         int64
}

// Transient is an unstored frame (a streamed chunk, already encoded) that
// one process announces to the others watching its chat.
type Transient struct {
	Origin string // the announcing process
	// N numbers an origin's frames in the order they are written: a reader
	// that has a frame of an origin has every one numbered below it.
	N      int64
	AppID  string
	ChatID string
	At     time.Time
	Frame  []byte
}

// TransientQuery selects the transient frames a reader has not seen yet.
type TransientQuery struct {
	Chats []ChatCursor // the chats watched (After is ignored)
	// Seen is the highest N read so far per origin; frames of an origin
	// not in Seen are read from Since on.
	Seen    map[string]int64
	Since   time.Time
	Exclude string // the reader's own origin
	Limit   int
}

// Feed is what a store shared by several processes offers for fanning live
// frames out between them (package relay): one query reads the new events of
// many chats, and a side collection carries the transient frames, which are
// never stored as events. The embedded store has no Feed: it is locked to
// one process.
type Feed interface {
	// TailEvents returns the stored events with seq > After of the given
	// chats, ordered by chat and seq, at most limit of them, in one query.
	TailEvents(ctx context.Context, chats []ChatCursor, limit int) ([]Event, error)
	// PutTransients stores frames, in N order, for the other processes to
	// read.
	PutTransients(ctx context.Context, frames []Transient) error
	// TailTransients returns the frames q selects, ordered by origin and N.
	TailTransients(ctx context.Context, q TransientQuery) ([]Transient, error)
	// PurgeTransients deletes frames (and announcements) made before
	// cutoff; it returns how many.
	PurgeTransients(ctx context.Context, cutoff time.Time) (int64, error)
	// Announce records that origin is alive at now and has sockets on the
	// chats watching (chat ids), and returns the other origins that
	// announced themselves after since (Peers).
	Announce(ctx context.Context, origin string, watching []string, now, since time.Time) ([]Peer, error)
	// Peers returns the origins other than origin that announced
	// themselves after since, with the chats each said it watches.
	Peers(ctx context.Context, origin string, since time.Time) ([]Peer, error)
}

// Peer is another process's last announcement.
type Peer struct {
	Origin   string
	Watching []string // chat ids it has sockets on
}
