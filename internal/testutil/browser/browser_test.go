package browser

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

const testPage = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>harness</title>
<script src="/app.js" defer></script></head>
<body><main><h1>Harness</h1><label for="name">Name</label><input id="name">
<button id="go" type="button">Go</button><p id="out"></p>%s</main></body></html>`

const testScript = `document.getElementById("go").addEventListener("click", () => {
  const out = document.getElementById("out");
  out.textContent = "hello, " + document.getElementById("name").value;
  setTimeout(() => { out.textContent += "!" }, 100);
});`

func testServer(t *testing.T, extra string) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'")
		fmt.Fprintf(w, testPage, extra)
	})
	mux.HandleFunc("/app.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		fmt.Fprint(w, testScript)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestPageHelpers(t *testing.T) {
	b := New(t, Options{})
	srv := testServer(t, "")
	p := b.NewPage(t)
	p.Open(srv.URL)
	p.WaitVisible("#go")
	p.SetValue("#name", "Ada")
	p.Click("#go")
	p.WaitText("#out", "hello, Ada!")
	if got := p.Text("#out"); got != "hello, Ada!" {
		t.Fatalf("text = %q", got)
	}
	var sum int
	p.Eval("Promise.resolve(40 + 2)", &sum)
	if sum != 42 {
		t.Fatalf("eval = %d", sum)
	}
	if n := p.Count("button"); n != 1 {
		t.Fatalf("count = %d", n)
	}
	path := p.Screenshot("after click")
	png, err := os.ReadFile(path)
	if err != nil || len(png) < 8 || string(png[1:4]) != "PNG" {
		t.Fatalf("screenshot %s is not a PNG (err %v)", path, err)
	}
	if errs := p.Errors(); len(errs) != 0 {
		t.Fatalf("unexpected page errors: %v", errs)
	}
	p.AxeSerious("harness")
}

// An inline script on a page with a strict CSP is refused; the harness must
// report that as an error, since that is how a console regression shows up.
func TestErrorsIncludeCSPViolation(t *testing.T) {
	b := New(t, Options{})
	srv := testServer(t, `<script>document.title = "inline ran"</script>`)
	p := b.NewPage(t)
	p.Open(srv.URL)
	var title string
	p.Eval("document.title", &title)
	if title == "inline ran" {
		t.Fatalf("inline script ran despite CSP")
	}
	p.WaitFunc("CSP report logged", `new Promise(r => setTimeout(() => r(true), 200))`)
	found := false
	for _, e := range p.Errors() {
		if strings.Contains(e, "Content Security Policy") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no CSP violation among errors; logs: %v", p.Logs())
	}
}

func TestAxeFindsMissingLabel(t *testing.T) {
	b := New(t, Options{})
	srv := testServer(t, `<input id="unlabelled">`)
	p := b.NewPage(t)
	p.Open(srv.URL)
	found := false
	for _, v := range p.Axe("missing-label") {
		if v.ID == "label" {
			found = true
		}
	}
	if !found {
		t.Fatalf("axe did not report the unlabelled input")
	}
}
