// Package doctor is the registry of `mozaiks doctor` checks, the runner that
// executes them concurrently with prerequisites and timeouts, and the report
// (data) with its two renderings: a table for people and a JSON document.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Severity is a check's outcome.
type Severity string

const (
	OK      Severity = "ok"
	Warn    Severity = "warn"
	Fail    Severity = "fail"
	Skipped Severity = "skipped"
)

// Result is what a check found. Message and Hint are user-safe (the vizerror
// idea): they never carry an internal error's text unless it was vetted, and
// the runner scrubs every known secret value from them anyway.
type Result struct {
	Severity Severity
	Message  string
	Hint     string
	Details  map[string]any
}

// Check is one named probe.
type Check struct {
	Code    string   // stable: CFG01, WS01 ...
	Name    string   // short human name
	Needs   []string // codes that must not fail (or be skipped) for this one to run
	Slow    bool     // opt-in with --slow
	Timeout time.Duration
	Run     func(ctx context.Context, env *Env) Result
	// Fix applies the safe local remedy, if the check has one, and says what it
	// did ("" when nothing was needed).
	Fix func(ctx context.Context, env *Env) (string, error)
}

// DefaultTimeout bounds a check that sets none.
const DefaultTimeout = 15 * time.Second

func ok(msg string, details map[string]any) Result {
	return Result{Severity: OK, Message: msg, Details: details}
}

func warn(msg, hint string, details map[string]any) Result {
	return Result{Severity: Warn, Message: msg, Hint: hint, Details: details}
}

func fail(msg, hint string, details map[string]any) Result {
	return Result{Severity: Fail, Message: msg, Hint: hint, Details: details}
}

func skip(reason string) Result { return Result{Severity: Skipped, Message: reason} }

// Registry is an ordered set of checks.
type Registry struct{ checks []Check }

// NewRegistry builds a registry and rejects duplicate codes or unknown prerequisites.
func NewRegistry(checks ...Check) (*Registry, error) {
	seen := map[string]bool{}
	for _, c := range checks {
		if c.Code == "" || c.Run == nil {
			return nil, fmt.Errorf("check %q: code and run func are required", c.Name)
		}
		if seen[c.Code] {
			return nil, fmt.Errorf("duplicate check code %s", c.Code)
		}
		seen[c.Code] = true
	}
	for _, c := range checks {
		for _, n := range c.Needs {
			if !seen[n] {
				return nil, fmt.Errorf("check %s needs unknown check %s", c.Code, n)
			}
		}
	}
	return &Registry{checks: slices.Clone(checks)}, nil
}

// Checks returns the checks in registry order.
func (r *Registry) Checks() []Check { return slices.Clone(r.checks) }

// Select picks the checks to run: only (empty: all), minus skip; slow checks
// only with slow or when named in only. Unknown codes are an error.
func (r *Registry) Select(only, skipCodes []string, slow bool) ([]Check, error) {
	known := map[string]bool{}
	for _, c := range r.checks {
		known[c.Code] = true
	}
	norm := func(codes []string) (map[string]bool, error) {
		m := map[string]bool{}
		var unknown []string
		for _, c := range codes {
			c = strings.ToUpper(strings.TrimSpace(c))
			if c == "" {
				continue
			}
			if !known[c] {
				unknown = append(unknown, c)
			}
			m[c] = true
		}
		if len(unknown) > 0 {
			return nil, fmt.Errorf("unknown check code %s (see --list)", strings.Join(unknown, ", "))
		}
		return m, nil
	}
	onlySet, err := norm(only)
	if err != nil {
		return nil, err
	}
	skipSet, err := norm(skipCodes)
	if err != nil {
		return nil, err
	}
	var out []Check
	for _, c := range r.checks {
		switch {
		case len(onlySet) > 0 && !onlySet[c.Code]:
		case skipSet[c.Code]:
		case c.Slow && !slow && !onlySet[c.Code]:
		default:
			out = append(out, c)
		}
	}
	return out, nil
}

// RunOptions tune a run.
type RunOptions struct {
	Fix bool
	// OnFix is told about each fix applied (for progress output).
	OnFix func(code, what string)
}

// Run executes checks concurrently. A check waits for those of its
// prerequisites that are in the run; if one failed or was skipped, it is
// skipped with the reason. The report lists checks in the given order.
func Run(ctx context.Context, env *Env, checks []Check, ro RunOptions) *Report {
	rep := &Report{Version: ReportVersion, StartedAt: env.now().UTC()}
	rep.Checks = make([]CheckResult, len(checks))
	idx := map[string]int{}
	done := make([]chan struct{}, len(checks))
	for i, c := range checks {
		idx[c.Code] = i
		done[i] = make(chan struct{})
	}
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[i])
			var blocked []string
			for _, n := range c.Needs {
				j, in := idx[n]
				if !in {
					continue
				}
				select {
				case <-done[j]:
				case <-ctx.Done():
				}
				if s := rep.Checks[j].Severity; s == Fail || s == Skipped || s == "" {
					blocked = append(blocked, fmt.Sprintf("%s, which %s", n, map[Severity]string{Fail: "failed", Skipped: "was skipped", "": "was interrupted"}[s]))
				}
			}
			// Checks that read the loaded configuration cannot run without
			// it, even when CFG01 itself is not part of this run (--only).
			if _, in := idx["CFG01"]; !in && env.Config == nil && slices.Contains(c.Needs, "CFG01") {
				blocked = append(blocked, "a valid configuration (run CFG01 to see what is wrong)")
			}
			var res Result
			start := env.now()
			if len(blocked) > 0 {
				res = skip("needs " + strings.Join(blocked, ", "))
			} else {
				res = runOne(ctx, env, c)
				if ro.Fix && c.Fix != nil && (res.Severity == Fail || res.Severity == Warn) {
					res = applyFix(ctx, env, c, res, ro)
				}
			}
			rep.Checks[i] = CheckResult{
				Code: c.Code, Name: c.Name, Severity: res.Severity,
				DurationMS: env.now().Sub(start).Milliseconds(),
				Message:    res.Message, Hint: res.Hint, Details: res.Details,
			}
			rep.Checks[i].scrub(env.Secrets())
		}()
	}
	wg.Wait()
	return rep
}

func orDash(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// runOne runs a check under its timeout and turns a panic into a failure so
// one broken probe cannot take the report down.
func runOne(ctx context.Context, env *Env, c Check) (res Result) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			res = fail("the check crashed (a bug in mozaiks doctor)", "report it with the output of --json", map[string]any{"panic": fmt.Sprint(p)})
		}
	}()
	res = c.Run(ctx, env)
	if res.Severity == "" {
		res.Severity = OK
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) && res.Severity == OK {
		res = fail(fmt.Sprintf("timed out after %s", timeout), "", res.Details)
	}
	return res
}

func applyFix(ctx context.Context, env *Env, c Check, before Result, ro RunOptions) Result {
	what, err := c.Fix(ctx, env)
	if err != nil {
		before.Details = withDetail(before.Details, "fix_error", err.Error())
		return before
	}
	if what == "" {
		return before
	}
	if ro.OnFix != nil {
		ro.OnFix(c.Code, what)
	}
	after := runOne(ctx, env, c)
	after.Details = withDetail(after.Details, "fixed", what)
	return after
}

func withDetail(d map[string]any, k string, v any) map[string]any {
	if d == nil {
		d = map[string]any{}
	}
	d[k] = v
	return d
}

// Summary counts results by severity.
func (r *Report) Summary() map[Severity]int {
	m := map[Severity]int{}
	for _, c := range r.Checks {
		m[c.Severity]++
	}
	return m
}

// Failed reports whether any check failed, or warned when strict.
func (r *Report) Failed(strict bool) bool {
	s := r.Summary()
	return s[Fail] > 0 || (strict && s[Warn] > 0)
}

// sortedKeys is for deterministic rendering of details.
func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
