package ferret

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Server is a FerretDB a test owns: it can be stopped and started again on
// the same address and data directory (to test recovery).
type Server struct {
	Addr string // 127.0.0.1:port
	Dir  string // SQLite files
	URI  string // mongodb://Addr/

	mu   sync.Mutex
	stop func()
}

// NewServer starts a FerretDB for t on a free port with data in t.TempDir();
// it is stopped on cleanup.
func NewServer(t testing.TB) *Server {
	t.Helper()
	addr, err := FreeAddr()
	if err != nil {
		t.Fatalf("ferretdb: free port: %v", err)
	}
	s := &Server{Addr: addr, Dir: t.TempDir()}
	s.Start(t)
	t.Cleanup(s.Stop)
	return s
}

// Start starts the server: again after Stop (same port, same data), or for
// the first time when made as &Server{Addr: a, Dir: d} (to start a server
// only after a client gave up on it; the caller then registers Stop). The
// port can be taken by someone else in between; then Start retries briefly.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil {
		return
	}
	var err error
	for range 50 {
		var uri string
		uri, s.stop, err = ServeLogger(context.Background(), s.Addr, s.Dir, testLogger())
		if err == nil {
			s.URI = uri
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("ferretdb: %v", err)
}

// Stop stops the server and waits for it; clients see their connections
// closed. FerretDB gives connected clients up to 3 s to hang up first.
func (s *Server) Stop() {
	s.mu.Lock()
	stop := s.stop
	s.stop = nil
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// DB returns a URI for a fresh database of this server, unique to this call.
func (s *Server) DB(t testing.TB) string {
	return s.URI + dbName(t)
}

var (
	shared     *Server
	sharedErr  error
	sharedOnce sync.Once
)

// Start returns the URI (no database) of the FerretDB shared by every test
// of this test binary, starting it on first use. It lives until the process
// exits; tests share the server but not their data (see DB). Its data
// directory outlives the process (nothing runs at exit), so each start
// removes those left by earlier runs.
//
// Not in memory: FerretDB gives an in-memory database a single connection,
// and its updates deadlock on it.
func Start(t testing.TB) string {
	t.Helper()
	sharedOnce.Do(func() {
		removeStaleDirs()
		dir, err := os.MkdirTemp("", sharedDirPrefix)
		if err != nil {
			sharedErr = err
			return
		}
		uri, stop, err := ServeLogger(context.Background(), "127.0.0.1:0", dir, testLogger())
		if err != nil {
			sharedErr = err
			return
		}
		shared = &Server{URI: uri, Dir: dir, stop: stop}
	})
	if sharedErr != nil {
		t.Fatalf("ferretdb: %v", sharedErr)
	}
	return shared.URI
}

const sharedDirPrefix = "mozaiks-ferretdb-"

// removeStaleDirs deletes shared data directories untouched for hours: a
// directory in use gains a file with every new test database.
func removeStaleDirs() {
	old, _ := filepath.Glob(filepath.Join(os.TempDir(), sharedDirPrefix+"*"))
	for _, d := range old {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() && time.Since(fi.ModTime()) > 6*time.Hour {
			_ = os.RemoveAll(d)
		}
	}
}

// DB returns a URI of the shared FerretDB with a database unique to this
// call, dropped on cleanup.
func DB(t testing.TB) string {
	t.Helper()
	uri := Start(t) + dbName(t)
	t.Cleanup(func() { dropDB(uri) })
	return uri
}

var dbSeq atomic.Int64

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// dbName fits FerretDB's rule for database names: ^[a-zA-Z0-9_-]{1,63}$.
func dbName(t testing.TB) string {
	prefix := fmt.Sprintf("t%d_", dbSeq.Add(1))
	name := prefix + unsafeChars.ReplaceAllString(t.Name(), "_")
	if len(name) > 63 {
		name = name[:63]
	}
	return name
}

// dropDB frees a test database; a failure only costs memory, so it is ignored.
func dropDB(uri string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(5 * time.Second))
	if err != nil {
		return
	}
	defer c.Disconnect(ctx)
	u, err := url.Parse(uri)
	if err != nil {
		return
	}
	_ = c.Database(strings.Trim(u.Path, "/")).Drop(ctx)
}
