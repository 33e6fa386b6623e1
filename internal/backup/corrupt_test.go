package backup_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/mozaiks/mozaiks/internal/backup"
)

// rewrite copies the archive at path to a new file, passing every entry's
// content through edit (by name).
func rewrite(t *testing.T, path string, edit func(name string, b []byte) []byte) string {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if b = edit(f.Name, b); b == nil {
			continue
		}
		w, err := zw.Create(f.Name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return writeBytes(t, out.Bytes())
}

func writeBytes(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "edited.zip")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func editManifest(t *testing.T, fn func(m *backup.Manifest)) func(string, []byte) []byte {
	return func(name string, b []byte) []byte {
		if name != backup.ManifestEntry {
			return b
		}
		var m backup.Manifest
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		fn(&m)
		out, _ := json.Marshal(m)
		return out
	}
}

func TestCorruptArchiveRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var n atomic.Int64
	src := openEmbedded(t)
	for _, c := range []string{"a", "b", "c"} {
		if err := writeChat(ctx, src, c, 30, &n); err != nil {
			t.Fatal(err)
		}
	}
	good, _ := writeFile(t, src, "embedded")
	raw, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	// Where events.jsonl's compressed bytes sit in the file.
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	var evOff, evLen int64
	for _, f := range zr.File {
		if f.Name == backup.EventsEntry {
			evOff, _ = f.DataOffset()
			evLen = int64(f.CompressedSize64)
		}
	}

	for _, tc := range []struct {
		name string
		path func() string
		want error
	}{
		{"flipped byte in events", func() string {
			b := bytes.Clone(raw)
			b[evOff+evLen/2] ^= 0x55
			return writeBytes(t, b)
		}, backup.ErrCorrupt},
		{"truncated", func() string { return writeBytes(t, raw[:len(raw)*2/3]) }, backup.ErrCorrupt},
		{"not a zip", func() string { return writeBytes(t, []byte("hello, I am not a backup\n")) }, backup.ErrCorrupt},
		{"event edited, manifest kept", func() string {
			return rewrite(t, good, func(name string, b []byte) []byte {
				if name == backup.EventsEntry {
					return bytes.Replace(b, []byte("message 7 of b"), []byte("message 8 of b"), 1)
				}
				return b
			})
		}, backup.ErrCorrupt},
		{"event dropped", func() string {
			return rewrite(t, good, func(name string, b []byte) []byte {
				if name == backup.EventsEntry {
					_, rest, _ := bytes.Cut(b, []byte("\n"))
					return rest
				}
				return b
			})
		}, backup.ErrCorrupt},
		{"manifest checksum altered", func() string {
			return rewrite(t, good, editManifest(t, func(m *backup.Manifest) {
				m.Entries[1].SHA256 = "00" + m.Entries[1].SHA256[2:]
			}))
		}, backup.ErrCorrupt},
		{"manifest count altered", func() string {
			return rewrite(t, good, editManifest(t, func(m *backup.Manifest) { m.Entries[0].Records-- }))
		}, backup.ErrCorrupt},
		{"manifest missing", func() string {
			return rewrite(t, good, func(name string, b []byte) []byte {
				if name == backup.ManifestEntry {
					return nil
				}
				return b
			})
		}, backup.ErrCorrupt},
		{"usage entry missing", func() string {
			return rewrite(t, good, func(name string, b []byte) []byte {
				if name == backup.UsageEntry {
					return nil
				}
				return b
			})
		}, backup.ErrCorrupt},
		{"newer version", func() string {
			return rewrite(t, good, editManifest(t, func(m *backup.Manifest) { m.Version = backup.Version + 1 }))
		}, backup.ErrVersion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dst := openEmbedded(t)
			_, err := restore(t, tc.path(), dst, backup.RestoreOptions{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("restore: %v, want %v", err, tc.want)
			}
			t.Log(err)
			c, err := dst.Count(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if c.Total() != 0 {
				t.Fatalf("refused archive still wrote %+v", c)
			}
		})
	}

	// The untouched archive restores (so the cases above fail for their edit).
	if _, err := restore(t, good, openEmbedded(t), backup.RestoreOptions{}); err != nil {
		t.Fatalf("good archive: %v", err)
	}
}
