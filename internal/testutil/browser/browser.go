// Package browser drives a real headless Chromium from Go tests through the
// DevTools protocol (chromedp). It owns finding the browser, starting one per
// test, the page helpers tests share (open, wait for a selector or text,
// evaluate JavaScript, click, type, screenshot) and collecting what the page
// logged, so a test can fail on a JavaScript error or a CSP violation.
//
// Chromium is Debian's `chromium` on PATH (or $MOZAIKS_CHROMIUM). When it is
// missing the test skips locally and fails under CI=true (internal/testenv).
package browser

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"encoding/json"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/mozaiks/mozaiks/internal/testenv"
)

// DefaultTimeout bounds each helper call (one navigation, one wait, one
// evaluation). It is generous because CI runs under -race on shared cores;
// it is a hang guard, not a speed assertion.
const DefaultTimeout = 45 * time.Second

// Options tune a Browser. The zero value is a 1280x900 headless window.
type Options struct {
	Width, Height int      // window size; default 1280x900
	ExtraFlags    []string // extra Chromium flags, "name" or "name=value"
}

// Browser is one Chromium process owned by one test.
type Browser struct {
	t        testing.TB
	allocCtx context.Context
	root     context.Context // the first tab; keeps the browser alive
}

// ExecPath returns the Chromium binary to use, or "" when there is none.
func ExecPath() string {
	if p := os.Getenv("MOZAIKS_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// New starts a headless Chromium for t and stops it when t ends.
func New(t testing.TB, o Options) *Browser {
	t.Helper()
	path := ExecPath()
	testenv.Need(t, path != "", "Chromium",
		"install Debian's chromium (apt-get install chromium) or set MOZAIKS_CHROMIUM")
	w, h := o.Width, o.Height
	if w == 0 || h == 0 {
		w, h = 1280, 900
	}
	flags := append([]chromedp.ExecAllocatorOption{}, chromedp.DefaultExecAllocatorOptions[:]...)
	flags = append(flags,
		chromedp.ExecPath(path),
		chromedp.WindowSize(w, h),
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	if os.Geteuid() == 0 {
		// Chromium refuses to run as root with its sandbox (CI containers).
		flags = append(flags, chromedp.NoSandbox)
	}
	for _, f := range o.ExtraFlags {
		name, val, ok := strings.Cut(f, "=")
		if ok {
			flags = append(flags, chromedp.Flag(name, val))
		} else {
			flags = append(flags, chromedp.Flag(name, true))
		}
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), flags...)
	root, cancelRoot := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelRoot()
		cancelAlloc()
	})
	// Start the process now, so a broken install fails here with its cause.
	// The first run binds the browser's life to its context: it must be root,
	// not a context with a timeout.
	if err := chromedp.Do(root); err != nil {
		t.Fatalf("start chromium %s: %v", path, err)
	}
	return &Browser{t: t, allocCtx: allocCtx, root: root}
}

// Page is one browser tab.
type Page struct {
	t       testing.TB
	ctx     context.Context
	Timeout time.Duration

	mu   sync.Mutex
	logs []string
}

// NewPage opens a new tab, closed when the test ends. Everything the page
// logs (console messages, uncaught exceptions, browser log entries such as CSP
// violations and failed loads) is collected; see Logs and Errors.
func (b *Browser) NewPage(t testing.TB) *Page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.root)
	t.Cleanup(cancel)
	p := &Page{t: t, ctx: ctx, Timeout: DefaultTimeout}
	err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			var parts []string
			for _, a := range ev.Args {
				if a.Value != nil {
					parts = append(parts, string(a.Value))
				} else {
					parts = append(parts, a.Description)
				}
			}
			p.addLog(fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(parts, " ")))
		case *runtime.EventExceptionThrown:
			msg := ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				msg += " " + ev.ExceptionDetails.Exception.Description
			}
			p.addLog("exception: " + msg)
		case *log.EventEntryAdded:
			p.addLog(fmt.Sprintf("log.%s(%s): %s %s", ev.Entry.Level, ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
		}
	})
	if err != nil {
		t.Fatalf("open tab: %v", err)
	}
	if _, err := chromedp.Call(ctx, log.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("enable log domain: %v", err)
	}
	if _, err := chromedp.Call(ctx, runtime.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("enable runtime domain: %v", err)
	}
	return p
}

func (p *Page) addLog(s string) {
	p.mu.Lock()
	p.logs = append(p.logs, s)
	p.mu.Unlock()
}

// Logs returns everything the page logged so far.
func (p *Page) Logs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.logs...)
}

// Errors returns the logged lines that are errors: uncaught exceptions,
// console.error, and browser log entries at level error (CSP violations,
// failed resource loads). A test that expects some (e.g. a refused socket
// while the server is down) filters them itself.
func (p *Page) Errors() []string {
	var out []string
	for _, l := range p.Logs() {
		if strings.HasPrefix(l, "exception:") || strings.HasPrefix(l, "console.error") ||
			strings.HasPrefix(l, "log.error") {
			out = append(out, l)
		}
	}
	return out
}

// Context is the tab's context, for chromedp actions the helpers lack.
func (p *Page) Context() context.Context { return p.ctx }

// Run runs chromedp actions with the page timeout; any error fails the test.
func (p *Page) Run(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	p.run(what, actions...)
}

func (p *Page) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := p.try(actions...); err != nil {
		p.t.Fatalf("browser: %s: %v\npage logs:\n%s", what, err, strings.Join(p.Logs(), "\n"))
	}
}

func (p *Page) try(actions ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(p.ctx, p.Timeout)
	defer cancel()
	return chromedp.Do(ctx, actions...)
}

// call runs one action that returns a value, with the page timeout.
func call[T any](p *Page, what string, a chromedp.Action[T]) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, p.Timeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		p.t.Fatalf("browser: %s: %v\npage logs:\n%s", what, err, strings.Join(p.Logs(), "\n"))
	}
	return v
}

// Open navigates to url and waits for the load event.
func (p *Page) Open(url string) {
	p.t.Helper()
	p.run("open "+url, chromedp.Navigate(url))
}

// Reload reloads the page and waits for the load event.
func (p *Page) Reload() {
	p.t.Helper()
	p.run("reload", chromedp.Reload())
}

// WaitVisible waits until the first element matching the CSS selector is visible.
func (p *Page) WaitVisible(sel string) {
	p.t.Helper()
	p.run("wait visible "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
}

// WaitGone waits until no element matches the CSS selector.
func (p *Page) WaitGone(sel string) {
	p.t.Helper()
	p.run("wait gone "+sel, chromedp.WaitNotPresent(chromedp.CSS(sel)))
}

// WaitFunc polls the JavaScript expression until it is truthy.
func (p *Page) WaitFunc(what, expr string) {
	p.t.Helper()
	call(p, "wait "+what, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(p.Timeout)))
}

// WaitText waits until the text content of some element matching sel
// contains text.
func (p *Page) WaitText(sel, text string) {
	p.t.Helper()
	expr := fmt.Sprintf(`Array.from(document.querySelectorAll(%s)).some(e => e.textContent.includes(%s))`,
		jsString(sel), jsString(text))
	p.WaitFunc(fmt.Sprintf("text %q in %s", text, sel), expr)
}

// Text returns the text content of the first element matching sel.
func (p *Page) Text(sel string) string {
	p.t.Helper()
	var s string
	p.Eval(fmt.Sprintf(`(document.querySelector(%s) || {}).textContent || ""`, jsString(sel)), &s)
	return s
}

// Count returns how many elements match sel.
func (p *Page) Count(sel string) int {
	p.t.Helper()
	var n int
	p.Eval(fmt.Sprintf(`document.querySelectorAll(%s).length`, jsString(sel)), &n)
	return n
}

// Eval evaluates a JavaScript expression and decodes its (JSON) value into
// out, which may be nil. Promises are awaited.
func (p *Page) Eval(expr string, out any) {
	p.t.Helper()
	if out == nil {
		call(p, "eval "+abbrev(expr), chromedp.Evaluate[chromedp.Void](expr, chromedp.EvalAwaitPromise))
		return
	}
	raw := call(p, "eval "+abbrev(expr), chromedp.Evaluate[[]byte](expr, chromedp.EvalAwaitPromise))
	if err := json.Unmarshal(raw, out); err != nil {
		p.t.Fatalf("browser: eval %s: decode %s: %v", abbrev(expr), abbrev(string(raw)), err)
	}
}

// Click clicks the first element matching sel once it is visible.
func (p *Page) Click(sel string) {
	p.t.Helper()
	p.run("click "+sel, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

// SetValue replaces the value of an input/textarea/select matching sel and
// fires input and change events, as a user edit would.
func (p *Page) SetValue(sel, value string) {
	p.t.Helper()
	expr := fmt.Sprintf(`(() => { const e = document.querySelector(%s); if (!e) throw new Error("no element %s");
		e.focus(); e.value = %s;
		e.dispatchEvent(new Event("input", {bubbles: true}));
		e.dispatchEvent(new Event("change", {bubbles: true})); return true })()`,
		jsString(sel), strings.ReplaceAll(sel, `"`, `'`), jsString(value))
	p.Eval(expr, nil)
}

// Type focuses sel and types text with real key events (use "\r" for Enter).
func (p *Page) Type(sel, text string) {
	p.t.Helper()
	p.run("type into "+sel, chromedp.Focus(chromedp.CSS(sel)), chromedp.SendKeys(chromedp.CSS(sel), text))
}

// Press sends keys to whatever has the focus, as a keyboard user would
// (see github.com/chromedp/chromedp/kb for names: kb.Tab, kb.Enter, ...).
func (p *Page) Press(keys string) {
	p.t.Helper()
	p.run("press keys", chromedp.KeyEvent(keys))
}

// Focused returns the id of the focused element ("" when it has none).
func (p *Page) Focused() string {
	p.t.Helper()
	var id string
	p.Eval(`(document.activeElement && document.activeElement.id) || ""`, &id)
	return id
}

// Emulate sets the viewport, e.g. 390x844 with mobile=true for a phone.
func (p *Page) Emulate(width, height int, mobile bool) {
	p.t.Helper()
	opts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(1)}
	if mobile {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch)
	}
	p.run("emulate viewport", chromedp.EmulateViewport(int64(width), int64(height), opts...))
}

// Screenshot saves a full-page PNG named name+".png" into ArtifactDir and
// returns its path.
func (p *Page) Screenshot(name string) string {
	p.t.Helper()
	// Quality 100 makes chromedp ask for PNG.
	buf := call(p, "screenshot "+name, chromedp.FullScreenshot(100))
	path := filepath.Join(ArtifactDir(p.t), safeName(name)+".png")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		p.t.Fatalf("write screenshot: %v", err)
	}
	p.t.Logf("screenshot: %s", path)
	return path
}

var artifactDirs sync.Map // test name -> dir

// ArtifactDir is where a test writes its artifacts (screenshots, reports):
// $MOZAIKS_ARTIFACTS/<test name> when that is set (CI keeps it), else a
// temporary directory removed after the test.
func ArtifactDir(t testing.TB) string {
	t.Helper()
	if d, ok := artifactDirs.Load(t.Name()); ok {
		return d.(string)
	}
	var dir string
	if root := os.Getenv("MOZAIKS_ARTIFACTS"); root != "" {
		dir = filepath.Join(root, safeName(t.Name()))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatalf("artifact dir: %v", err)
		}
	} else {
		dir = t.TempDir()
	}
	artifactDirs.Store(t.Name(), dir)
	t.Cleanup(func() { artifactDirs.Delete(t.Name()) })
	return dir
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func safeName(s string) string { return unsafeChars.ReplaceAllString(s, "_") }

func jsString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\u2028", `\u2028`, "\u2029", `\u2029`)
	return `"` + r.Replace(s) + `"`
}

func abbrev(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}
