package ferret

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// front is a wire-protocol relay in front of FerretDB that makes its
// single-document updates atomic, as they are on MongoDB.
//
// FerretDB v1 runs an update (update, findAndModify, delete) as a query,
// then a change made in Go, then a separate SQLite transaction that
// rewrites the whole document: two connections updating one document at
// once lose each other's fields, a conditional update ("set the owner if
// there is none") admits two winners, and findAndModify $inc hands out one
// value twice. No SQLite URL option helps (the read is not in the write's
// transaction) and FerretDB has no setting for it.
//
// The front therefore locks what such a command may rewrite, from
// forwarding it until FerretDB's reply passes back: the document, when the
// command names one by _id equality, else the whole collection. Writes to
// different documents still run side by side; reads, inserts and
// everything else pass through untouched.
type front struct {
	ln      net.Listener
	backend string // FerretDB's own address

	mu     sync.Mutex
	colls  map[string]*collLocks // db + "." + collection
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// collLocks: a command on one document holds rw shared and its document's
// lock; a command on any other documents holds rw alone.
type collLocks struct {
	rw   sync.RWMutex
	mu   sync.Mutex
	docs map[string]*docLock
}

type docLock struct {
	mu   sync.Mutex
	refs int
}

// serializedCommands are the commands FerretDB runs as read-modify-write.
var serializedCommands = map[string]bool{"update": true, "findandmodify": true, "delete": true}

func newFront(ln net.Listener, backend string) *front {
	f := &front{ln: ln, backend: backend, colls: map[string]*collLocks{}, conns: map[net.Conn]struct{}{}}
	f.wg.Go(f.accept)
	return f
}

func (f *front) accept() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", f.backend)
		if err != nil {
			_ = c.Close()
			continue
		}
		if !f.track(c, b) {
			return
		}
		f.wg.Go(func() { f.relay(c, b) })
	}
}

// track registers a client/backend pair; false once the front is closed.
func (f *front) track(conns ...net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		for _, c := range conns {
			_ = c.Close()
		}
		return false
	}
	for _, c := range conns {
		f.conns[c] = struct{}{}
	}
	return true
}

func (f *front) untrack(conns ...net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
		delete(f.conns, c)
	}
}

// lock takes what a command of target may rewrite and returns its unlock.
func (f *front) lock(t target) func() {
	f.mu.Lock()
	c, ok := f.colls[t.ns]
	if !ok {
		c = &collLocks{docs: map[string]*docLock{}}
		f.colls[t.ns] = c
	}
	f.mu.Unlock()
	if !t.oneDoc {
		c.rw.Lock()
		return c.rw.Unlock
	}
	c.rw.RLock()
	c.mu.Lock()
	d, ok := c.docs[t.id]
	if !ok {
		d = &docLock{}
		c.docs[t.id] = d
	}
	d.refs++
	c.mu.Unlock()
	d.mu.Lock()
	return func() {
		d.mu.Unlock()
		c.mu.Lock()
		if d.refs--; d.refs == 0 {
			delete(c.docs, t.id)
		}
		c.mu.Unlock()
		c.rw.RUnlock()
	}
}

// close stops accepting, hangs up every connection and waits for the
// relays to finish.
func (f *front) close() {
	f.mu.Lock()
	f.closed = true
	for c := range f.conns {
		_ = c.Close()
	}
	f.mu.Unlock()
	_ = f.ln.Close()
	f.wg.Wait()
}

// relay carries one client connection's messages to its own FerretDB
// connection and back. A serialized command takes its lock before it is
// forwarded; the lock is let go when the reply to it (responseTo = its
// requestID) comes back, even to a client that hung up meanwhile, or when
// FerretDB hangs up.
func (f *front) relay(client, backend net.Conn) {
	defer f.untrack(client, backend)
	var (
		mu      sync.Mutex
		unlock  func() // the lock this connection holds, if any
		heldFor int32  // the requestID it is held for
	)
	release := func(responseTo int32, any bool) {
		mu.Lock()
		defer mu.Unlock()
		if unlock != nil && (any || responseTo == heldFor) {
			unlock()
			unlock = nil
		}
	}
	held := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return unlock != nil
	}
	done := make(chan struct{})
	go func() { // FerretDB -> client
		defer close(done)
		r := bufio.NewReader(backend)
		clientGone := false
		for {
			msg, err := readMessage(r)
			if err != nil {
				_ = client.Close()
				return
			}
			release(int32(binary.LittleEndian.Uint32(msg[8:12])), false)
			if !clientGone {
				if _, err := client.Write(msg); err != nil {
					clientGone = true // the rest is read only to see the reply the lock waits for
				}
			}
		}
	}()
	r := bufio.NewReader(client)
	for {
		msg, err := readMessage(r)
		if err != nil {
			break
		}
		t, serialized := serializedTarget(msg)
		if serialized {
			release(0, true) // a client that did not wait for its reply
			u := f.lock(t)
			mu.Lock()
			unlock, heldFor = u, int32(binary.LittleEndian.Uint32(msg[4:8]))
			mu.Unlock()
		}
		if _, err := backend.Write(msg); err != nil {
			break
		}
		if serialized && moreToCome(msg) { // no reply will come: let the next one go
			release(0, true)
		}
	}
	// A client that hung up (it timed out) leaves FerretDB running its
	// command: the command keeps its lock until FerretDB replies, or the
	// next one on the document would read it before this one writes it back
	// (a seq handed out twice, a status or lease rolled back: seen under
	// load in TestRollingRestartUnderLoad). Bounded, for a FerretDB that
	// never answers.
	giveUp := time.After(time.Minute)
wait:
	for held() {
		select {
		case <-done: // FerretDB hung up
			break wait
		case <-giveUp:
			break wait
		case <-time.After(5 * time.Millisecond):
		}
	}
	_ = backend.Close()
	<-done
	release(0, true)
}

const (
	opMsg          = 2013
	maxMessageSize = 48 << 20
	headerSize     = 16
)

// readMessage reads one whole wire-protocol message, header included.
func readMessage(r io.Reader) ([]byte, error) {
	var h [headerSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := int32(binary.LittleEndian.Uint32(h[:4]))
	if n < headerSize || n > maxMessageSize {
		return nil, fmt.Errorf("wire message of %d bytes", n)
	}
	msg := make([]byte, n)
	copy(msg, h[:])
	if _, err := io.ReadFull(r, msg[headerSize:]); err != nil {
		return nil, err
	}
	return msg, nil
}

// moreToCome reports an OP_MSG whose sender expects no reply.
func moreToCome(msg []byte) bool {
	return len(msg) >= headerSize+4 && binary.LittleEndian.Uint32(msg[12:16]) == opMsg &&
		binary.LittleEndian.Uint32(msg[16:20])&2 != 0
}

// target is what a serialized command may rewrite: one document of the
// collection ns (by _id), or any of its documents.
type target struct {
	ns     string // database.collection
	oneDoc bool
	id     string // the _id's BSON type and value, when oneDoc
}

// serializedTarget tells whether an OP_MSG carries one of the serialized
// commands, and what it may rewrite.
func serializedTarget(msg []byte) (target, bool) {
	if binary.LittleEndian.Uint32(msg[12:16]) != opMsg {
		return target{}, false
	}
	body, seqs, err := opMsgSections(msg[headerSize:])
	if err != nil {
		return target{}, false
	}
	elems, err := body.Elements()
	if err != nil || len(elems) == 0 {
		return target{}, false
	}
	cmd := strings.ToLower(elems[0].Key())
	if !serializedCommands[cmd] {
		return target{}, false
	}
	db, _ := body.Lookup("$db").StringValueOK()
	coll, _ := elems[0].Value().StringValueOK()
	t := target{ns: db + "." + coll}
	var filters []bson.Raw
	switch cmd {
	case "findandmodify":
		q, _ := body.Lookup("query").DocumentOK()
		filters = append(filters, q)
	default: // update: updates[].q; delete: deletes[].q
		name := cmd + "s"
		stmts := seqs[name]
		if arr, ok := body.Lookup(name).ArrayOK(); ok {
			vals, _ := arr.Values()
			for _, v := range vals {
				if d, ok := v.DocumentOK(); ok {
					stmts = append(stmts, d)
				}
			}
		}
		for _, st := range stmts {
			if multi, _ := st.Lookup("multi").BooleanOK(); multi {
				return t, true
			}
			q, _ := st.Lookup("q").DocumentOK()
			filters = append(filters, q)
		}
	}
	for i, q := range filters {
		id, ok := idEquality(q)
		if !ok || (i > 0 && id != t.id) {
			return target{ns: t.ns}, true
		}
		t.oneDoc, t.id = true, id
	}
	return t, true
}

// idEquality returns the _id a filter names by equality ({_id: v}, v not
// an operator document), as its BSON type and bytes.
func idEquality(q bson.Raw) (string, bool) {
	if q == nil {
		return "", false
	}
	v, err := q.LookupErr("_id")
	if err != nil {
		return "", false
	}
	switch v.Type {
	case bson.TypeArray, bson.TypeRegex:
		return "", false
	case bson.TypeEmbeddedDocument:
		if e, err := v.Document().Elements(); err != nil || (len(e) > 0 && strings.HasPrefix(e[0].Key(), "$")) {
			return "", false
		}
	}
	return string(rune(v.Type)) + string(v.Value), true
}

// opMsgSections returns the OP_MSG's body (section kind 0) and its
// document sequences (kind 1) by identifier.
func opMsgSections(b []byte) (bson.Raw, map[string][]bson.Raw, error) {
	if len(b) < 4 {
		return nil, nil, errors.New("short OP_MSG")
	}
	flags := binary.LittleEndian.Uint32(b)
	b = b[4:]
	if flags&1 != 0 { // checksumPresent
		if len(b) < 4 {
			return nil, nil, errors.New("short OP_MSG")
		}
		b = b[:len(b)-4]
	}
	var body bson.Raw
	seqs := map[string][]bson.Raw{}
	for len(b) > 0 {
		kind := b[0]
		b = b[1:]
		if len(b) < 4 {
			return nil, nil, errors.New("short OP_MSG section")
		}
		n := int(int32(binary.LittleEndian.Uint32(b)))
		if n < 4 || n > len(b) {
			return nil, nil, errors.New("bad OP_MSG section size")
		}
		sec := b[:n]
		b = b[n:]
		switch kind {
		case 0:
			body = bson.Raw(sec)
		case 1:
			sec = sec[4:]
			i := bytes.IndexByte(sec, 0)
			if i < 0 {
				return nil, nil, errors.New("bad OP_MSG sequence")
			}
			id := string(sec[:i])
			for docs := sec[i+1:]; len(docs) >= 4; {
				m := int(int32(binary.LittleEndian.Uint32(docs)))
				if m < 5 || m > len(docs) {
					return nil, nil, errors.New("bad OP_MSG sequence document")
				}
				seqs[id] = append(seqs[id], bson.Raw(docs[:m]))
				docs = docs[m:]
			}
		default:
			return nil, nil, fmt.Errorf("OP_MSG section kind %d", kind)
		}
	}
	if body == nil {
		return nil, nil, errors.New("OP_MSG without a body")
	}
	return body, seqs, nil
}
