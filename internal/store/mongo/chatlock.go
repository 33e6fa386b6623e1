package mongo

import (
	"hash/maphash"
	"sync"
)

// chatLocks serialises this process's writes to one session document.
//
// MongoDB needs none of it: each update is atomic on the server. FerretDB v1
// (the test server) runs an update as a read and a whole-document write
// back, so two concurrent updates of one session lose each other's changes
// (a state set reverts, a $inc vanishes, two runners both get the lease).
// Serialising them here makes FerretDB behave within one process, at the
// cost on MongoDB of same-chat updates queueing in-process instead of on the
// server's document lock.
type chatLocks struct {
	seed  maphash.Seed
	locks [256]sync.Mutex
}

func newChatLocks() *chatLocks { return &chatLocks{seed: maphash.MakeSeed()} }

// lock locks chatID's stripe and returns its unlock.
func (c *chatLocks) lock(chatID string) func() {
	m := &c.locks[maphash.String(c.seed, chatID)%uint64(len(c.locks))]
	m.Lock()
	return m.Unlock
}
