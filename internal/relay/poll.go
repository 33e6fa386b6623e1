package relay

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mozaiks/mozaiks/internal/store"
)

// Defaults of Options.
const (
	DefaultMinInterval = 20 * time.Millisecond
	DefaultMaxInterval = 400 * time.Millisecond
	DefaultRetention   = 10 * time.Second
	DefaultPeerEvery   = 3 * time.Second
	DefaultGapGrace    = 10 * time.Second
)

// Options tune a Poller; the zero value is fine.
type Options struct {
	// Origin names this process in the transient frames it writes (default:
	// random). Frames of its own origin are never delivered back.
	Origin string
	// MinInterval is the poll interval while watched chats are active;
	// idle polls back off to MaxInterval.
	MinInterval, MaxInterval time.Duration
	// Retention is how long transient frames stay in the store: far longer
	// than a poll interval, short because FerretDB scans them all per poll.
	Retention time.Duration
	// PeerEvery is how often the replica announces itself and counts the
	// others. Alone, it writes no frames and polls nothing: a single replica
	// on MongoDB pays only this. A replica that starts is heard of within
	// this time; until then the others do not write it their chunks (stored
	// events reach it anyway).
	PeerEvery time.Duration
	// GapGrace is how long a missing seq counts as an append still in
	// flight (its seq taken, its insert not landed) before it is skipped
	// as lost, counted from when the reader first finds the gap.
	GapGrace time.Duration
	Logger   *slog.Logger
}

// Stats counts a Poller's store operations since it started.
type Stats struct {
	Polls            int64 // poll rounds with at least one watched chat
	EventQueries     int64
	TransientQueries int64
	TransientInserts int64 // insert commands (each carries a batch)
	TransientFrames  int64 // frames written
	Purges           int64
	Dropped          int64 // transient frames dropped (store unavailable, queue full)
	Delivered        int64 // events and frames handed to watchers
	Announces        int64
	PeerQueries      int64 // reads of which chats the other replicas watch, between announces
	Unwatched        int64 // transient frames not written: no other replica watches their chat
	Peers            int64 // other replicas heard of in the last announce; -1 before it
}

// maxQueued bounds the transient frames waiting for the store; beyond it the
// oldest are dropped (they are only chunks: the stored message follows).
const maxQueued = 10000

const (
	eventLimit     = 1000
	transientLimit = 5000
	writeBatch     = 500
	// watchSlack: a watch gets the frames made after it started, less this
	// (clocks of two machines differ a little).
	watchSlack = time.Second
	peerAlive  = 10 * time.Second
	// watchedFresh: how long a replica trusts what it last read of the
	// chats the others watch before a frame makes it read again.
	watchedFresh = time.Second
)

// Poller is the relay for a store without change streams: one goroutine
// polls for every watched chat with one events query and one transient
// query per round, fast while anything moves and backing off when idle;
// another writes this process's transient frames in batches and purges old
// ones.
type Poller struct {
	feed store.Feed
	o    Options
	log  *slog.Logger

	stopAll context.CancelFunc
	wg      sync.WaitGroup

	mu      sync.Mutex
	watches map[string][]*watch // by chat id (unique across apps)
	wake    chan struct{}

	n     int64 // writer goroutine only
	outMu sync.Mutex
	// queued and settled count frames queued and written (or dropped);
	// progress is closed and replaced when settled grows (Flush waits on it).
	queued, settled int64
	progress        chan struct{}
	lastOf          map[string]int64 // chat id -> queued count at its last frame
	writing         map[string]bool  // chat id -> its frames are written, until its next Flush
	out             []store.Transient
	outWake         chan struct{}

	seen map[string]originSeen // reader goroutine only

	// elsewhere is what the last announce or peer read found: the chats
	// some other replica has sockets on. Nil before the first.
	elsewhere   atomic.Pointer[watchedElsewhere]
	announceNow chan struct{} // a chat got its first local watch
	refreshNow  chan struct{} // elsewhere is stale and a frame wants it

	polls, eventQ, transQ, inserts, frames, purges, dropped, delivered, announces, peerQ, unwatched atomic.Int64
	peers                                                                                           atomic.Int64 // -1: not known yet
}

type watchedElsewhere struct {
	chats map[string]bool
	at    time.Time
}

type originSeen struct {
	n    int64
	last time.Time
}

type watch struct {
	appID, chatID string
	after         int64 // reader goroutine only once added
	gapSeq        int64 // the missing seq being waited for (reader goroutine)
	gapSince      time.Time
	since         time.Time
	onEvent       func(store.Event)
	onTransient   func([]byte)
	stopped       atomic.Bool
}

// NewPoller starts a Poller on feed; Close stops it.
func NewPoller(feed store.Feed, o Options) *Poller {
	o.Origin = cmp.Or(o.Origin, randomOrigin())
	if o.MinInterval <= 0 {
		o.MinInterval = DefaultMinInterval
	}
	if o.MaxInterval < o.MinInterval {
		o.MaxInterval = max(DefaultMaxInterval, o.MinInterval)
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.GapGrace <= 0 {
		o.GapGrace = DefaultGapGrace
	}
	if o.PeerEvery <= 0 {
		o.PeerEvery = DefaultPeerEvery
	}
	p := &Poller{feed: feed, o: o, log: o.Logger, watches: map[string][]*watch{}, wake: make(chan struct{}, 1),
		outWake: make(chan struct{}, 1), seen: map[string]originSeen{}, progress: make(chan struct{}),
		lastOf: map[string]int64{}, writing: map[string]bool{}, announceNow: make(chan struct{}, 1), refreshNow: make(chan struct{}, 1)}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.peers.Store(-1)
	ctx, cancel := context.WithCancel(context.Background())
	p.stopAll = cancel
	p.wg.Add(2)
	go p.readLoop(ctx)
	go p.writeLoop(ctx)
	return p
}

// Close stops the reader and the writer and waits for them; transient
// frames not yet written are dropped.
func (p *Poller) Close() {
	p.stopAll()
	p.wg.Wait()
}

// Mode implements Relay.
func (p *Poller) Mode() string { return ModePoll }

// Origin is this process's origin id.
func (p *Poller) Origin() string { return p.o.Origin }

// Stats returns the counters.
func (p *Poller) Stats() Stats {
	return Stats{Polls: p.polls.Load(), EventQueries: p.eventQ.Load(), TransientQueries: p.transQ.Load(),
		TransientInserts: p.inserts.Load(), TransientFrames: p.frames.Load(), Purges: p.purges.Load(),
		Dropped: p.dropped.Load(), Delivered: p.delivered.Load(), Announces: p.announces.Load(), PeerQueries: p.peerQ.Load(),
		Unwatched: p.unwatched.Load(), Peers: p.peers.Load()}
}

// ErrClosed: the relay was closed.
var ErrClosed = errors.New("relay closed")

// Transient implements Relay: the frame is queued and written with others
// by the writer goroutine, so the caller (a streaming run) never waits for
// the store.
//
// Frames are written only for chats some other replica has a socket on, as
// last read: at announces, and again when a frame comes and the read is
// older than watchedFresh (in the background; meanwhile frames are written).
// The choice holds from a chat's first frame until its next Flush (the
// chat's next stored event, which ends the message): another replica gets
// all of a message's chunks, or none of them and then the message.
func (p *Poller) Transient(_ context.Context, appID, chatID string, frame []byte) error {
	if p.peers.Load() == 0 {
		return nil // alone: nobody to tell
	}
	p.outMu.Lock()
	write, ok := p.writing[chatID]
	if !ok {
		write = true
		if w := p.elsewhere.Load(); w != nil {
			if time.Since(w.at) > watchedFresh {
				select {
				case p.refreshNow <- struct{}{}:
				default:
				}
			} else {
				write = w.chats[chatID]
			}
		}
		p.writing[chatID] = write
	}
	if !write {
		p.outMu.Unlock()
		p.unwatched.Add(1)
		return nil
	}
	t := store.Transient{Origin: p.o.Origin, AppID: appID, ChatID: chatID, At: time.Now(), Frame: frame}
	if len(p.out) >= maxQueued {
		drop := len(p.out) / 2
		p.out = append(p.out[:0], p.out[drop:]...)
		p.dropped.Add(int64(drop))
		p.settleLocked(int64(drop))
	}
	p.out = append(p.out, t)
	p.queued++
	p.lastOf[chatID] = p.queued
	p.outMu.Unlock()
	select {
	case p.outWake <- struct{}{}:
	default:
	}
	return nil
}

// Flush waits until the chat's frames queued before it are written (or
// given up on). The chat runtime calls it before storing an event, so the
// chunks of a message are in the store before the message: a reader that
// finds the message then finds its chunks too, and delivers them first.
func (p *Poller) Flush(ctx context.Context, chatID string) error {
	p.outMu.Lock()
	delete(p.writing, chatID) // the next message decides afresh
	target, ok := p.lastOf[chatID]
	if ok && p.settled >= target {
		delete(p.lastOf, chatID)
	}
	for p.settled < target {
		ch := p.progress
		p.outMu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		p.outMu.Lock()
	}
	p.outMu.Unlock()
	return nil
}

func (p *Poller) settleLocked(n int64) {
	p.settled += n
	close(p.progress)
	p.progress = make(chan struct{})
}

// Watch implements Relay.
func (p *Poller) Watch(appID, chatID string, afterSeq int64, onEvent func(store.Event), onTransient func([]byte)) func() {
	w := &watch{appID: appID, chatID: chatID, after: afterSeq, since: time.Now(), onEvent: onEvent, onTransient: onTransient}
	p.mu.Lock()
	first := len(p.watches[chatID]) == 0
	p.watches[chatID] = append(p.watches[chatID], w)
	p.mu.Unlock()
	p.poke()
	if first && onTransient != nil {
		// Tell the other replicas now, so they start writing its chunks.
		select {
		case p.announceNow <- struct{}{}:
		default:
		}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			w.stopped.Store(true)
			p.mu.Lock()
			defer p.mu.Unlock()
			ws := p.watches[chatID]
			for i, x := range ws {
				if x == w {
					ws = append(ws[:i:i], ws[i+1:]...)
					break
				}
			}
			if len(ws) == 0 {
				delete(p.watches, chatID)
			} else {
				p.watches[chatID] = ws
			}
		})
	}
}

func (p *Poller) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// readLoop polls while anything is watched: at MinInterval after a round
// that found something, doubling up to MaxInterval while nothing moves, and
// never sooner after a round than the round took. A new watch polls at
// once.
func (p *Poller) readLoop(ctx context.Context) {
	defer p.wg.Done()
	interval := p.o.MinInterval
	timer := time.NewTimer(interval)
	defer timer.Stop()
	failing := false // log an outage once, and its end
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
			interval = p.o.MinInterval
		case <-timer.C:
		}
		began := time.Now()
		found, err := p.pollOnce(ctx)
		took := time.Since(began)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if !failing {
				p.log.Warn("relay: cannot read new frames; retrying", "err", err)
			}
			failing, interval = true, p.o.MaxInterval
		case found:
			interval = p.o.MinInterval
		default:
			interval = min(interval*2, p.o.MaxInterval)
		}
		// A slow store (FerretDB scans whole collections) gets as long to
		// breathe as the round took: the reader uses at most half of it.
		interval = max(interval, took)
		if failing && err == nil {
			p.log.Info("relay: reading new frames again")
			failing = false
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		if found || err != nil || p.watching() {
			timer.Reset(interval)
		}
		// Nothing watched: sleep until a Watch pokes.
	}
}

func (p *Poller) watching() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.watches) > 0
}

// WatchedElsewhere says whether, as last read, another replica has a socket
// on the chat (and so gets its transient frames).
func (p *Poller) WatchedElsewhere(chatID string) bool {
	w := p.elsewhere.Load()
	return w != nil && w.chats[chatID]
}

// Alone says the last announce found no other replica: the Poller then
// writes no frames and reads nothing back, not even this process's events.
func (p *Poller) Alone() bool { return p.peers.Load() == 0 }

// pollOnce reads what is new for every watched chat and delivers it:
// transient frames first, so the chunks of a message reach sockets before
// the stored message that ends them. found says something was delivered or
// is about to be (a gap still in flight): poll again soon.
func (p *Poller) pollOnce(ctx context.Context) (found bool, _ error) {
	p.mu.Lock()
	byChat := make(map[string][]*watch, len(p.watches))
	cursors := make([]store.ChatCursor, 0, len(p.watches))
	for id, ws := range p.watches {
		byChat[id] = append([]*watch(nil), ws...)
		after := ws[0].after
		for _, w := range ws[1:] {
			after = min(after, w.after)
		}
		cursors = append(cursors, store.ChatCursor{AppID: ws[0].appID, ChatID: id, After: after})
	}
	p.mu.Unlock()
	if len(cursors) == 0 || p.Alone() {
		return false, nil
	}
	p.polls.Add(1)
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()

	now := time.Now()
	seen := make(map[string]int64, len(p.seen))
	for o, s := range p.seen {
		if now.Sub(s.last) > 2*p.o.Retention {
			delete(p.seen, o) // a replica gone quiet (or gone): its frames are purged
			continue
		}
		seen[o] = s.n
	}
	// Events first, chunks second, delivered the other way round: a
	// message's chunks are written before the message (Flush), so the
	// chunk query finds every chunk of a message the event query found.
	p.eventQ.Add(1)
	evs, err := p.feed.TailEvents(qctx, cursors, eventLimit)
	if err != nil {
		return false, err
	}
	p.transQ.Add(1)
	trs, terr := p.feed.TailTransients(qctx, store.TransientQuery{Chats: cursors, Seen: seen, Since: now.Add(-p.o.Retention),
		Exclude: p.o.Origin, Limit: transientLimit})
	for _, t := range trs {
		if s, ok := p.seen[t.Origin]; ok && t.N <= s.n {
			continue
		}
		p.seen[t.Origin] = originSeen{n: t.N, last: now}
		for _, w := range byChat[t.ChatID] {
			// A watch gets no frame made well before it started: an origin
			// ahead of this reader in other chats has older frames of
			// this one still unread.
			if !w.stopped.Load() && w.onTransient != nil && t.At.After(w.since.Add(-watchSlack)) {
				w.onTransient(t.Frame)
				p.delivered.Add(1)
				found = true
			}
		}
	}

	if len(evs) == eventLimit {
		found = true
	}
	for i := 0; i < len(evs); {
		j := i
		for j < len(evs) && evs[j].ChatID == evs[i].ChatID {
			j++
		}
		for _, w := range byChat[evs[i].ChatID] {
			if p.deliver(w, evs[i:j]) {
				found = true
			}
		}
		i = j
	}
	return found, terr
}

// deliver hands w the events after its cursor, in order, stopping at a
// missing seq: concurrent appends can land out of order, and the missing one
// is probably in flight. A gap that lasts GapGrace is a failed append,
// skipped. It says whether anything was delivered or is awaited.
func (p *Poller) deliver(w *watch, evs []store.Event) bool {
	moved := false
	for _, ev := range evs {
		if ev.Seq <= w.after {
			continue
		}
		if ev.Seq != w.after+1 {
			// The gap's age is measured from when this reader first saw
			// it, not from the event's timestamp: under load an append
			// lands seconds after its timestamp, later than the next one.
			if w.gapSeq != w.after+1 {
				w.gapSeq, w.gapSince = w.after+1, time.Now()
			}
			if time.Since(w.gapSince) < p.o.GapGrace {
				return true
			}
		}
		if w.stopped.Load() {
			return moved
		}
		w.onEvent(ev)
		w.after = ev.Seq
		p.delivered.Add(1)
		moved = true
	}
	return moved
}

// writeLoop writes queued transient frames in batches (one insert while the
// previous one is in flight carries everything queued meanwhile) and purges
// frames older than Retention.
func (p *Poller) writeLoop(ctx context.Context) {
	defer p.wg.Done()
	purge := time.NewTicker(p.o.Retention / 2)
	defer purge.Stop()
	announce := time.NewTimer(0)
	defer announce.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-announce.C:
			p.announce(ctx)
			announce.Reset(p.o.PeerEvery)
		case <-p.announceNow:
			p.announce(ctx)
		case <-p.refreshNow:
			if w := p.elsewhere.Load(); w == nil || time.Since(w.at) > watchedFresh {
				p.refreshPeers(ctx)
			}
		case <-purge.C:
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if _, err := p.feed.PurgeTransients(pctx, time.Now().Add(-p.o.Retention)); err != nil && ctx.Err() == nil {
				p.log.Warn("relay: purge old transient frames", "err", err)
			}
			cancel()
			p.purges.Add(1)
		case <-p.outWake:
			for p.flush(ctx) {
			}
		}
	}
}

// announce says this replica is alive, and which chats it has sockets on,
// and learns how many others are and which chats they watch. Another
// replica counts as alive while it announced within three periods, and at
// least peerAlive: a replica slowed down by its database is not taken for
// gone.
func (p *Poller) announce(ctx context.Context) {
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	p.mu.Lock()
	watching := make([]string, 0, len(p.watches))
	for id, ws := range p.watches {
		for _, w := range ws {
			if w.onTransient != nil {
				watching = append(watching, id)
				break
			}
		}
	}
	p.mu.Unlock()
	slices.Sort(watching)
	now := time.Now()
	peers, err := p.feed.Announce(actx, p.o.Origin, watching, now, p.aliveSince(now))
	p.announces.Add(1)
	if err != nil {
		if ctx.Err() == nil {
			p.log.Warn("relay: announce replica", "err", err)
		}
		return // keep the last count
	}
	p.learn(now, peers)
}

// refreshPeers reads again which chats the other replicas watch.
func (p *Poller) refreshPeers(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	now := time.Now()
	peers, err := p.feed.Peers(rctx, p.o.Origin, p.aliveSince(now))
	p.peerQ.Add(1)
	if err != nil {
		if ctx.Err() == nil {
			p.log.Warn("relay: read which chats other replicas watch", "err", err)
		}
		return
	}
	p.learn(now, peers)
}

func (p *Poller) aliveSince(now time.Time) time.Time {
	return now.Add(-max(3*p.o.PeerEvery, peerAlive))
}

func (p *Poller) learn(at time.Time, peers []store.Peer) {
	w := &watchedElsewhere{chats: map[string]bool{}, at: at}
	for _, pr := range peers {
		for _, id := range pr.Watching {
			w.chats[id] = true
		}
	}
	p.elsewhere.Store(w)
	n := int64(len(peers))
	if old := p.peers.Swap(n); old != n {
		p.log.Info("relay: replicas sharing live frames", "others", n)
		if old == 0 {
			p.poke()
		}
	}
}

// flush writes one batch; it says whether more is queued. The batch is
// grouped by chat (each chat's frames keep their order) and numbered as
// grouped, so each chat's frames are one document with consecutive numbers.
func (p *Poller) flush(ctx context.Context) bool {
	p.outMu.Lock()
	n := min(len(p.out), writeBatch)
	batch := append([]store.Transient(nil), p.out[:n]...)
	p.out = append(p.out[:0], p.out[n:]...)
	more := len(p.out) > 0
	p.outMu.Unlock()
	if len(batch) == 0 {
		return false
	}
	first := map[string]int{}
	for i, t := range batch {
		if _, ok := first[t.ChatID]; !ok {
			first[t.ChatID] = i
		}
	}
	slices.SortStableFunc(batch, func(a, b store.Transient) int { return cmp.Compare(first[a.ChatID], first[b.ChatID]) })
	for i := range batch {
		p.n++
		batch[i].N = p.n
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	p.inserts.Add(1)
	err := p.feed.PutTransients(wctx, batch)
	p.outMu.Lock()
	p.settleLocked(int64(len(batch)))
	p.outMu.Unlock()
	if err != nil {
		p.dropped.Add(int64(len(batch)))
		if ctx.Err() == nil {
			p.log.Warn("relay: write transient frames", "frames", len(batch), "err", err)
		}
		return more
	}
	p.frames.Add(int64(len(batch)))
	return more
}

func randomOrigin() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
