package doctor

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRegistryValidates(t *testing.T) {
	t.Parallel()
	run := func(context.Context, *Env) Result { return Result{} }
	if _, err := NewRegistry(Check{Code: "A01", Run: run}, Check{Code: "A01", Run: run}); err == nil {
		t.Fatal("duplicate code accepted")
	}
	if _, err := NewRegistry(Check{Code: "A01", Needs: []string{"B01"}, Run: run}); err == nil {
		t.Fatal("unknown prerequisite accepted")
	}
	if _, err := NewRegistry(Check{Code: "A01"}); err == nil {
		t.Fatal("check without run func accepted")
	}
	reg := DefaultRegistry()
	codes := map[string]bool{}
	for _, c := range reg.Checks() {
		codes[c.Code] = true
	}
	for _, want := range strings.Fields("CFG01 SEC01 MDB01 LLM01 RT01 CORS01 WS01 WS02 WS03 WS04 STR01 TLS01 DKR01 DKR02 NET01 HST01") {
		if !codes[want] {
			t.Errorf("check %s missing from the registry", want)
		}
	}
}

func TestSelect(t *testing.T) {
	t.Parallel()
	reg := DefaultRegistry()
	codes := func(cs []Check) string {
		var s []string
		for _, c := range cs {
			s = append(s, c.Code)
		}
		return strings.Join(s, " ")
	}
	tests := []struct {
		only, skip []string
		slow       bool
		want       string
		err        string
	}{
		{only: []string{"ws01", " RT01"}, want: "RT01 WS01"},
		{only: []string{"WS04"}, want: "WS04"}, // named explicitly: runs without --slow
		{only: []string{"NOPE1"}, err: "unknown check code NOPE1"},
		{skip: []string{"X"}, err: "unknown check code X"},
	}
	for _, tc := range tests {
		got, err := reg.Select(tc.only, tc.skip, tc.slow)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Select(%v,%v): err %v, want %q", tc.only, tc.skip, err, tc.err)
			}
			continue
		}
		if err != nil || codes(got) != tc.want {
			t.Errorf("Select(%v,%v) = %q, %v; want %q", tc.only, tc.skip, codes(got), err, tc.want)
		}
	}
	all, _ := reg.Select(nil, []string{"HST01"}, false)
	if s := codes(all); strings.Contains(s, "WS04") || strings.Contains(s, "HST01") || !strings.Contains(s, "WS03") {
		t.Errorf("default selection %q: WS04 needs --slow, HST01 was skipped", s)
	}
	withSlow, _ := reg.Select(nil, nil, true)
	if !strings.Contains(codes(withSlow), "WS04") {
		t.Error("--slow does not add WS04")
	}
}

func TestRunPrerequisitesTimeoutsPanics(t *testing.T) {
	t.Parallel()
	env := &Env{}
	checks := []Check{
		{Code: "A01", Name: "a", Run: func(context.Context, *Env) Result { return fail("a broke", "fix a", nil) }},
		{Code: "B01", Name: "b", Needs: []string{"A01"}, Run: func(context.Context, *Env) Result { t.Error("B01 ran although A01 failed"); return Result{} }},
		{Code: "C01", Name: "c", Needs: []string{"B01"}, Run: func(context.Context, *Env) Result { return Result{} }},
		{Code: "D01", Name: "d", Timeout: 50 * time.Millisecond, Run: func(ctx context.Context, _ *Env) Result {
			<-ctx.Done()
			return Result{}
		}},
		{Code: "E01", Name: "e", Run: func(context.Context, *Env) Result { panic("boom") }},
		{Code: "F01", Name: "f", Needs: []string{"D01", "G01"}, Run: func(context.Context, *Env) Result { return Result{} }},
		{Code: "H01", Name: "h", Run: func(context.Context, *Env) Result { return warn("meh", "", nil) }},
	}
	rep := Run(context.Background(), env, checks, RunOptions{})
	got := map[string]CheckResult{}
	for _, c := range rep.Checks {
		got[c.Code] = c
	}
	want := map[string]struct {
		sev Severity
		msg string
	}{
		"A01": {Fail, "a broke"},
		"B01": {Skipped, "needs A01, which failed"},
		"C01": {Skipped, "needs B01, which was skipped"},
		"D01": {Fail, "timed out after 50ms"},
		"E01": {Fail, "crashed"},
		"F01": {Skipped, "needs D01, which failed"}, // G01 is not in the run: not waited for
		"H01": {Warn, "meh"},
	}
	for code, w := range want {
		if got[code].Severity != w.sev || !strings.Contains(got[code].Message, w.msg) {
			t.Errorf("%s = %s %q, want %s %q", code, got[code].Severity, got[code].Message, w.sev, w.msg)
		}
	}
	if rep.Checks[0].Code != "A01" || rep.Checks[6].Code != "H01" {
		t.Error("report not in check order")
	}
	if !rep.Failed(false) {
		t.Error("Failed(false) with failures")
	}
	warnOnly := &Report{Checks: []CheckResult{{Severity: Warn}, {Severity: OK}}}
	if warnOnly.Failed(false) || !warnOnly.Failed(true) {
		t.Error("warnings fail only with --strict")
	}
}

func TestScrubRemovesSecretsEverywhere(t *testing.T) {
	t.Parallel()
	env := &Env{Values: map[string]string{"openai_api_key": "sk-live-abcdef123456", "mongo_uri": "mongodb://u:hunter2hunter2@db/x"},
		DotEnv: map[string]string{"MONGO_INITDB_ROOT_PASSWORD": "rootpw-9876543"}}
	checks := []Check{{Code: "A01", Name: "a", Run: func(context.Context, *Env) Result {
		return fail("key sk-live-abcdef123456 rejected", "password hunter2hunter2", map[string]any{
			"nested": map[string]any{"x": []any{"rootpw-9876543"}}, "list": []string{"sk-live-abcdef123456"}, "n": 3,
		})
	}}}
	rep := Run(context.Background(), env, checks, RunOptions{})
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	_ = rep.WriteTable(&buf, TableOptions{Verbose: true})
	for _, s := range []string{"sk-live-abcdef123456", "hunter2hunter2", "rootpw-9876543"} {
		if strings.Contains(buf.String(), s) {
			t.Errorf("secret %q in output:\n%s", s, buf.String())
		}
	}
	if !strings.Contains(buf.String(), `"n": 3`) {
		t.Error("numbers must survive scrubbing")
	}
}

func TestTableColourOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	rep := &Report{Checks: []CheckResult{
		{Code: "A01", Name: "a", Severity: OK, Message: "fine"},
		{Code: "B01", Name: "b", Severity: Fail, Message: "broken", Hint: "do this"},
		{Code: "C01", Name: "c", Severity: Skipped, Message: "needs B01"},
	}}
	var plain, colour bytes.Buffer
	_ = rep.WriteTable(&plain, TableOptions{})
	_ = rep.WriteTable(&colour, TableOptions{Color: true})
	if strings.Contains(plain.String(), "\x1b[") {
		t.Error("escape codes without colour")
	}
	if !strings.Contains(colour.String(), ansiRed) {
		t.Error("no colour for a failure")
	}
	for _, want := range []string{"-> do this", "1 check(s) failed: 1 ok, 0 warn, 1 fail, 1 skipped"} {
		if !strings.Contains(plain.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, plain.String())
		}
	}
}

// TestOperatingGuideCoversEveryCode: docs/operating.md has a troubleshooting
// section for each check the registry knows, so a doctor code printed in a
// report always has its page.
func TestOperatingGuideCoversEveryCode(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "operating.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range All() {
		if !strings.Contains(string(b), "\n### "+c.Code+"\n") {
			t.Errorf("docs/operating.md has no section \"### %s\" (%s)", c.Code, c.Name)
		}
	}
}
