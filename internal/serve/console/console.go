// Package console owns the browser console served at /: a page of plain
// HTML, CSS and JavaScript embedded in the binary (no build step, no CDN),
// that speaks only the runtime's public HTTP API and WebSocket protocol. It
// owns the page's files and the headers they are served with (a strict
// Content-Security-Policy: no inline script, nothing from other origins).
package console

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"strings"
	"sync"
)

//go:embed static
var files embed.FS

// Static is the page's files (index.html at the root).
func Static() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	return sub
}

// CSP is the page's Content-Security-Policy. Scripts and styles come only
// from this origin, as files (no inline code, no eval); the page connects
// only to this origin (its API and WebSocket).
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// AssetPrefix is the path under which the page's assets are served.
const AssetPrefix = "/console/"

// Register mounts the page at / (exactly) and its assets under /console/.
func Register(mux *http.ServeMux) {
	h := Handler()
	mux.Handle("GET /{$}", h)
	mux.Handle("GET "+AssetPrefix, h)
}

// Handler serves index.html for / and the assets under /console/.
func Handler() http.Handler {
	fsrv := http.FileServerFS(Static())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		// The files change with the binary: revalidate rather than cache stale code.
		h.Set("Cache-Control", "no-cache")
		r2 := r.Clone(r.Context())
		switch {
		case r.URL.Path == "/":
			r2.URL.Path = "/"
		case len(r.URL.Path) > len(AssetPrefix) && r.URL.Path[:len(AssetPrefix)] == AssetPrefix:
			r2.URL.Path = "/" + r.URL.Path[len(AssetPrefix):]
			if r2.URL.Path == "/index.html" {
				// FileServer would redirect to "./"; the page lives at /.
				http.Redirect(w, r, "/", http.StatusMovedPermanently)
				return
			}
		default:
			http.NotFound(w, r)
			return
		}
		if tag, ok := etags()[strings.TrimPrefix(r2.URL.Path, "/")]; ok {
			h.Set("ETag", tag) // the file server answers If-None-Match with 304
		}
		fsrv.ServeHTTP(w, r2)
	})
}

// etags are the files' content hashes, computed once: the embedded files
// have no modification time, so without them every load refetches all.
var etags = sync.OnceValue(func() map[string]string {
	m := map[string]string{}
	_ = fs.WalkDir(Static(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(Static(), path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		m[path] = `"` + hex.EncodeToString(sum[:8]) + `"`
		return nil
	})
	m[""] = m["index.html"]
	return m
})
