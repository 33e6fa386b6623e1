package initwiz

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/pmezard/go-difflib/difflib"
)

// change is what writing one file would do.
type change struct {
	File
	Old     []byte
	OldMode fs.FileMode
	Exists  bool
}

func (c change) modified() bool { return c.Exists && !bytes.Equal(c.Old, c.Data) }
func (c change) added() bool    { return !c.Exists }

// loosened: same content, but others may read what should be private (a
// hand-written .env); tightening needs no confirmation.
func (c change) loosened() bool { return c.Exists && c.OldMode.Perm()&^c.Mode.Perm() != 0 }

// plan compares the rendered files with what is on disk.
func plan(dir string, files []File) ([]change, error) {
	out := make([]change, 0, len(files))
	for _, f := range files {
		path := filepath.Join(dir, filepath.FromSlash(f.Path))
		old, err := os.ReadFile(path)
		switch {
		case err == nil:
			fi, err := os.Stat(path)
			if err != nil {
				return nil, fmt.Errorf("stat %s: %w", f.Path, err)
			}
			out = append(out, change{File: f, Old: old, OldMode: fi.Mode(), Exists: true})
		case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
			// ENOTDIR: a file stands where a directory should; the write reports it.
			out = append(out, change{File: f})
		default:
			return nil, fmt.Errorf("read %s: %w", f.Path, err)
		}
	}
	return out, nil
}

// redactor hides secret values in both sides of a diff. A secret that stays
// the same reads <redacted:KEY> on both sides (no diff line); one that changes
// reads <old KEY> and <new KEY>, so the operator sees that it changes, not to what.
type redactor struct{ old, new boundedReplacer }

func newRedactor(oldVals, newVals map[string]string) redactor {
	var o, n boundedReplacer
	keys := make([]string, 0, len(newVals))
	for k := range newVals {
		keys = append(keys, k)
	}
	for k := range oldVals {
		if _, ok := newVals[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		ov, nv := oldVals[k], newVals[k]
		if ov == nv {
			if ov != "" {
				o = append(o, [2]string{ov, "<redacted:" + k + ">"})
				n = append(n, [2]string{nv, "<redacted:" + k + ">"})
			}
			continue
		}
		if ov != "" {
			o = append(o, [2]string{ov, "<old " + k + ">"})
		}
		if nv != "" {
			n = append(n, [2]string{nv, "<new " + k + ">"})
		}
	}
	// Longest values first, so a secret inside a longer one (the Mongo
	// password inside its URI) never leaves the rest of the longer one bare.
	for _, r := range []boundedReplacer{o, n} {
		sort.SliceStable(r, func(i, j int) bool { return len(r[i][0]) > len(r[j][0]) })
	}
	return redactor{old: o, new: n}
}

// boundedReplacer replaces whole values only: a match must not continue a
// word on either side, so a short secret ("abc1") is not cut out of other
// text that happens to contain it (which both mangled the diff and told
// where the secret's letters occur). The Mongo password in its URI is
// bounded by ':' and '@', a key in YAML by quotes or the line's end.
type boundedReplacer [][2]string

func (r boundedReplacer) Replace(s string) string {
	if len(r) == 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		matched := false
		for _, p := range r {
			v := p[0]
			if strings.HasPrefix(s[i:], v) && !wordByte(s, i-1) && !wordByte(s, i+len(v)) {
				b.WriteString(p[1])
				i += len(v)
				matched = true
				break
			}
		}
		if !matched {
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String()
}

// wordByte: s[i] exists and continues a token (letters, digits, _ - . + /
// which base64 and hex secrets are made of; not =, which ends a .env key).
func wordByte(s string, i int) bool {
	if i < 0 || i >= len(s) {
		return false
	}
	c := s[i]
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_-.+/", c) >= 0
}

// redactEnvValues hides the value of every .env key that is not known to be
// harmless: kept keys may hold anyone's secrets.
func redactEnvValues(text string) string {
	lines := strings.SplitAfter(text, "\n")
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		k, _, ok := strings.Cut(strings.TrimPrefix(t, "export "), "=")
		if !ok || (managedKeys[k] && !secretKeys[k]) || strings.Contains(t, "<redacted:") || strings.Contains(t, "<old ") || strings.Contains(t, "<new ") {
			continue
		}
		nl := ""
		if strings.HasSuffix(l, "\n") {
			nl = "\n"
		}
		lines[i] = k + "=<redacted>" + nl
	}
	return strings.Join(lines, "")
}

// unifiedDiff renders one change with secrets redacted.
func unifiedDiff(c change, r redactor) string {
	oldText, newText := r.old.Replace(string(c.Old)), r.new.Replace(string(c.Data))
	if c.Path == ".env" {
		oldText, newText = redactEnvValues(oldText), redactEnvValues(newText)
	}
	from := "a/" + c.Path
	if !c.Exists {
		from = "/dev/null"
	}
	d, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: splitLines(oldText), B: splitLines(newText),
		FromFile: from, ToFile: "b/" + c.Path, Context: 3,
	})
	return d
}

// splitLines keeps the line endings, and marks a last line that has none.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		return lines[:len(lines)-1]
	}
	lines[len(lines)-1] += "\n\\ No newline at end of file\n"
	return lines
}
