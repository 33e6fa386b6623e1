package console

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// Every file the page names (stylesheet, scripts, module imports) is
// embedded, and nothing is loaded from another origin.
func TestReferencedFilesAreEmbedded(t *testing.T) {
	t.Parallel()
	refs := regexp.MustCompile(`(?:href|src)="([^"]+)"|from "([^"]+)"`)
	seen := 0
	err := fs.WalkDir(Static(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(Static(), path)
		if err != nil {
			return err
		}
		for _, m := range refs.FindAllStringSubmatch(string(b), -1) {
			ref := m[1] + m[2]
			switch {
			case ref == "data:," || strings.HasPrefix(ref, "#"):
				continue
			case strings.Contains(ref, "//"):
				t.Errorf("%s loads %s from another origin", path, ref)
				continue
			}
			name := strings.TrimPrefix(strings.TrimPrefix(ref, AssetPrefix), "./")
			if _, err := fs.Stat(Static(), name); err != nil {
				t.Errorf("%s names %s, which is not embedded", path, ref)
			}
			seen++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen < 8 {
		t.Fatalf("found only %d references; the pattern is broken", seen)
	}
}

func TestHandlerPaths(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	Register(mux)
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/", 200},
		{"/console/app.js", 200},
		{"/console/index.html", 301},
		{"/console/missing.js", 404},
		{"/other", 404},
	} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", tc.path, nil))
		if rec.Code != tc.want {
			t.Errorf("GET %s = %d, want %d", tc.path, rec.Code, tc.want)
		}
		if tc.want == 200 && rec.Header().Get("Content-Security-Policy") != CSP {
			t.Errorf("GET %s without the CSP", tc.path)
		}
	}
}
