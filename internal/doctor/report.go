package doctor

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// ReportVersion is the version of the JSON document; bump it on any
// incompatible change (report.schema.json describes it).
const ReportVersion = 1

// Schema is the JSON Schema of the --json document.
//
//go:embed report.schema.json
var Schema []byte

// Report is the outcome of a doctor run.
type Report struct {
	Version   int           `json:"version"`
	StartedAt time.Time     `json:"started_at"`
	Checks    []CheckResult `json:"checks"`
}

// CheckResult is one check in the report.
type CheckResult struct {
	Code       string         `json:"code"`
	Name       string         `json:"name"`
	Severity   Severity       `json:"severity"`
	DurationMS int64          `json:"duration_ms"`
	Message    string         `json:"message"`
	Hint       string         `json:"hint"`
	Details    map[string]any `json:"details"`
}

// scrub replaces every occurrence of a known secret value, wherever a check
// may have let one slip (an echoed error body, a URI): defence in depth
// behind the checks' own care.
func (c *CheckResult) scrub(secrets []string) {
	if c.Details == nil {
		c.Details = map[string]any{}
	}
	c.Message = scrubString(c.Message, secrets)
	c.Hint = scrubString(c.Hint, secrets)
	for k, v := range c.Details {
		c.Details[k] = scrubValue(v, secrets)
	}
}

func scrubString(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "xxxxx")
		}
	}
	return s
}

func scrubValue(v any, secrets []string) any {
	switch t := v.(type) {
	case string:
		return scrubString(t, secrets)
	case []string:
		out := make([]string, len(t))
		for i, s := range t {
			out[i] = scrubString(s, secrets)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = scrubValue(e, secrets)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = scrubValue(e, secrets)
		}
		return out
	case map[string]string:
		out := make(map[string]string, len(t))
		for k, e := range t {
			out[k] = scrubString(e, secrets)
		}
		return out
	case error:
		return scrubString(t.Error(), secrets)
	default:
		// Numbers, booleans and durations cannot hold a secret; anything else
		// is rendered and scrubbed as text.
		switch v.(type) {
		case int, int64, float64, bool, nil:
			return v
		}
		return scrubString(fmt.Sprint(v), secrets)
	}
}

// WriteJSON renders the report as the stable JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// TableOptions shape the human rendering.
type TableOptions struct {
	Color   bool // ANSI colours (a TTY without NO_COLOR)
	Verbose bool // print details too
}

const (
	ansiReset  = "\x1b[0m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiRed    = "\x1b[31m"
	ansiDim    = "\x1b[2m"
)

func (s Severity) color() string {
	switch s {
	case OK:
		return ansiGreen
	case Warn:
		return ansiYellow
	case Fail:
		return ansiRed
	default:
		return ansiDim
	}
}

// WriteTable renders the report for people: one row per check, the hint
// under a row that is not ok, and a summary line.
func (r *Report) WriteTable(w io.Writer, o TableOptions) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CODE\tCHECK\tRESULT\tTIME\tMESSAGE")
	var total int64
	for _, c := range r.Checks {
		total += c.DurationMS
		sev := string(c.Severity)
		if o.Color {
			// Pad before colouring: tabwriter counts escape bytes as width.
			sev = c.Severity.color() + fmt.Sprintf("%-7s", sev) + ansiReset
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Code, c.Name, sev, fmtMS(c.DurationMS), oneLine(c.Message))
		if c.Hint != "" && c.Severity != OK {
			fmt.Fprintf(tw, "\t\t\t\t-> %s\n", oneLine(c.Hint))
		}
		if o.Verbose {
			for _, k := range sortedKeys(c.Details) {
				fmt.Fprintf(tw, "\t\t\t\t   %s: %s\n", k, oneLine(fmt.Sprint(c.Details[k])))
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	s := r.Summary()
	verdict := "all checks passed"
	switch {
	case s[Fail] > 0:
		verdict = fmt.Sprintf("%d check(s) failed", s[Fail])
	case s[Warn] > 0:
		verdict = fmt.Sprintf("passed with %d warning(s)", s[Warn])
	}
	_, err := fmt.Fprintf(w, "\n%s: %d ok, %d warn, %d fail, %d skipped\n", verdict, s[OK], s[Warn], s[Fail], s[Skipped])
	return err
}

func fmtMS(ms int64) string {
	if ms < 1000 {
		return fmt.Sprintf("%dms", ms)
	}
	return fmt.Sprintf("%.1fs", float64(ms)/1000)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// WriteList renders the registry for --list.
func WriteList(w io.Writer, checks []Check) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CODE\tCHECK\tNEEDS\tNOTE")
	for _, c := range checks {
		note := ""
		if c.Slow {
			note = "slow, opt-in with --slow"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Code, c.Name, orDash(strings.Join(c.Needs, ","), "-"), note)
	}
	return tw.Flush()
}
