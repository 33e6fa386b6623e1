// Package ferret runs FerretDB v1 (SQLite backend) in-process: a real
// MongoDB wire-protocol server for the Mongo store's tests, and for any
// process that wants a throwaway MongoDB (the fake-mongo image).
//
// FerretDB v1 is a test server only: its SQLite backend scans whole
// collections, and it lacks transactions, change streams, TTL indexes and
// more (spec/runtime.md §3).
package ferret

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// newMu serialises ferretdb.New: it writes a package-level version record,
// which the race detector rightly flags when two servers start at once.
var newMu sync.Mutex

// Serve starts FerretDB listening on listenAddr (host:port; port 0 picks a
// free one) with its SQLite files in dataDir (created if missing; "" keeps
// every database in memory and loses it on stop), logging errors to
// slog.Default(). In-memory databases suit reads and inserts only: FerretDB
// gives each a single connection and its updates deadlock on it. It returns the server's mongodb:// URI (no
// database in the path) and stop, which shuts the server down and waits for
// it. The server also stops when ctx ends.
func Serve(ctx context.Context, listenAddr, dataDir string) (uri string, stop func(), err error) {
	return ServeLogger(ctx, listenAddr, dataDir, errorLogger(slog.Default().Handler()))
}

// ServeLogger is Serve with FerretDB's own logger (nil: discard).
func ServeLogger(ctx context.Context, listenAddr, dataDir string, logger *slog.Logger) (uri string, stop func(), err error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	sqliteURL := "file:" + filepath.ToSlash(os.TempDir()) + "/?mode=memory"
	if dataDir != "" {
		abs, err := filepath.Abs(dataDir)
		if err != nil {
			return "", nil, fmt.Errorf("ferretdb data directory: %w", err)
		}
		if err := os.MkdirAll(abs, 0o750); err != nil {
			return "", nil, fmt.Errorf("create ferretdb data directory: %w", err)
		}
		sqliteURL = "file:" + filepath.ToSlash(abs) + "/"
	}
	// Clients reach FerretDB through the front, which makes its updates
	// atomic (see front). Listening first also tells whether listenAddr
	// is free before ferretdb.New, which leaks its SQLite backend when its
	// own listen fails (and FerretDB's -race build panics over the leak in
	// a finalizer).
	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		return "", nil, fmt.Errorf("start ferretdb: %w", err)
	}
	newMu.Lock()
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: sqliteURL,
	})
	newMu.Unlock()
	if err != nil {
		_ = ln.Close()
		return "", nil, fmt.Errorf("start ferretdb on %s: %w", listenAddr, err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(runCtx) // always nil
	}()
	backend, err := url.Parse(f.MongoDBURI()) // waits for FerretDB to listen
	if err != nil {
		cancel()
		<-done
		_ = ln.Close()
		return "", nil, fmt.Errorf("start ferretdb: %w", err)
	}
	fr := newFront(ln, backend.Host)
	stopped := make(chan struct{})
	var once sync.Once
	stop = func() {
		once.Do(func() {
			fr.close()
			cancel()
			<-done
			close(stopped)
		})
		<-stopped
	}
	go stopWhenDone(runCtx, stopped, stop)
	return "mongodb://" + ln.Addr().String() + "/", stop, nil
}

// stopWhenDone stops the server when ctx ends, unless it stopped already.
func stopWhenDone(ctx context.Context, stopped <-chan struct{}, stop func()) {
	select {
	case <-ctx.Done():
		stop()
	case <-stopped:
	}
}

// errorLogger keeps FerretDB's chatter out of our logs: it logs every
// connection at info and every failed command (even a client's routine
// endSessions, which it does not implement) at warn, with the whole message.
func errorLogger(h slog.Handler) *slog.Logger {
	return slog.New(levelHandler{Handler: h, min: slog.LevelError}).With("component", "ferretdb")
}

type levelHandler struct {
	slog.Handler
	min slog.Level
}

func (h levelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h levelHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return levelHandler{Handler: h.Handler.WithAttrs(a), min: h.min}
}

func (h levelHandler) WithGroup(name string) slog.Handler {
	return levelHandler{Handler: h.Handler.WithGroup(name), min: h.min}
}

// testLogger is silent unless FERRETDB_LOG is set (then: everything to stderr).
func testLogger() *slog.Logger {
	if os.Getenv("FERRETDB_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("component", "ferretdb")
}

// FreeAddr returns a 127.0.0.1 address that was free a moment ago, for a
// server that must come back on the same port after a restart.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
