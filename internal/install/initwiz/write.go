package initwiz

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// writeAll writes every file or none: each goes to a temporary file beside
// its target first, and only when all of them are on disk are they renamed
// into place. Directories it had to create are removed again on failure.
func writeAll(dir string, files []File) (err error) {
	var created []string
	var temps []string
	defer func() {
		if err == nil {
			return
		}
		for _, t := range temps {
			os.Remove(t)
		}
		for i := len(created) - 1; i >= 0; i-- {
			os.Remove(created[i]) // only succeeds while empty, which is what we want
		}
	}()
	mkdir := func(d string) error {
		var missing []string
		for p := d; ; p = filepath.Dir(p) {
			if _, err := os.Lstat(p); err == nil {
				break
			} else if !errors.Is(err, os.ErrNotExist) {
				return err
			}
			missing = append(missing, p)
			if filepath.Dir(p) == p {
				break
			}
		}
		for i := len(missing) - 1; i >= 0; i-- {
			if err := os.Mkdir(missing[i], 0o755); err != nil {
				return err
			}
			created = append(created, missing[i])
		}
		return nil
	}
	if err := mkdir(dir); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	targets := make([]string, len(files))
	for i, f := range files {
		target := filepath.Join(dir, filepath.FromSlash(f.Path))
		targets[i] = target
		if err := mkdir(filepath.Dir(target)); err != nil {
			return fmt.Errorf("create %s: %w", filepath.Dir(target), err)
		}
		tmp, err := writeTemp(target, f)
		if tmp != "" {
			temps = append(temps, tmp)
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", target, err)
		}
	}
	for i, tmp := range temps {
		if err := os.Rename(tmp, targets[i]); err != nil {
			return fmt.Errorf("replace %s: %w", targets[i], err)
		}
	}
	temps = nil
	return nil
}

// writeTemp writes f next to target with f's mode (set before any data is
// written, so a secret is never readable by others, not even briefly).
func writeTemp(target string, f File) (string, error) {
	t, err := os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".tmp-*")
	if err != nil {
		return "", err
	}
	name := t.Name()
	if err := t.Chmod(f.Mode); err != nil {
		t.Close()
		return name, err
	}
	if _, err := t.Write(f.Data); err != nil {
		t.Close()
		return name, err
	}
	if err := t.Sync(); err != nil {
		t.Close()
		return name, err
	}
	return name, t.Close()
}
