package browser

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

//go:embed axe/axe.min.js
var axeSource string

// AxeViolation is one failed axe-core rule with the elements it failed on.
type AxeViolation struct {
	ID      string `json:"id"`
	Impact  string `json:"impact"` // minor, moderate, serious, critical
	Help    string `json:"help"`
	HelpURL string `json:"helpUrl"`
	Nodes   []struct {
		Target         []any  `json:"target"`
		HTML           string `json:"html"`
		FailureSummary string `json:"failureSummary"`
	} `json:"nodes"`
}

func (v AxeViolation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s [%s] %s (%s)", v.ID, v.Impact, v.Help, v.HelpURL)
	for _, n := range v.Nodes {
		fmt.Fprintf(&b, "\n    %v %s\n      %s", n.Target, n.HTML, strings.ReplaceAll(n.FailureSummary, "\n", "\n      "))
	}
	return b.String()
}

// Axe runs axe-core (vendored, see axe/README.md) in the page as it is now
// and returns its violations. The full result is written to
// ArtifactDir/<name>.axe.json. axe is injected through the DevTools
// protocol, so it works on pages whose Content-Security-Policy forbids
// inline and foreign scripts.
func (p *Page) Axe(name string) []AxeViolation {
	p.t.Helper()
	if _, err := chromedp.Call(p.ctx, page.SetBypassCSP, page.SetBypassCSPParams{Enabled: true}); err != nil {
		p.t.Fatalf("bypass CSP for axe: %v", err)
	}
	var loaded bool
	p.Eval(axeSource+"\n;typeof axe === 'object'", &loaded)
	if !loaded {
		p.t.Fatalf("axe-core did not load")
	}
	var raw json.RawMessage
	p.Eval(`axe.run(document, {resultTypes: ["violations"]}).then(r => ({violations: r.violations, url: r.url}))`, &raw)
	if err := os.WriteFile(filepath.Join(ArtifactDir(p.t), safeName(name)+".axe.json"), raw, 0o644); err != nil {
		p.t.Fatalf("write axe report: %v", err)
	}
	var res struct {
		Violations []AxeViolation `json:"violations"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		p.t.Fatalf("decode axe result: %v", err)
	}
	return res.Violations
}

// AxeSerious runs Axe and fails the test for every violation of impact
// serious or critical; lesser ones are logged.
func (p *Page) AxeSerious(name string) {
	p.t.Helper()
	for _, v := range p.Axe(name) {
		if v.Impact == "serious" || v.Impact == "critical" {
			p.t.Errorf("accessibility (%s): %s", name, v)
		} else {
			p.t.Logf("accessibility note (%s): %s", name, v)
		}
	}
}
