package backup

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mozaiks/mozaiks/internal/store"
	"github.com/mozaiks/mozaiks/internal/store/sqlite"
)

// EmbeddedSource snapshots the embedded store in dataDir (VACUUM INTO a file
// in tmpDir; "" means the system's temporary directory) and opens the
// snapshot for export. It takes no lock on dataDir, so it works while
// `mozaiks serve` runs; the live database is held only for the copy, not
// while the archive is compressed. cleanup closes and deletes the snapshot.
func EmbeddedSource(ctx context.Context, dataDir, tmpDir string) (_ store.Exporter, cleanup func(), _ error) {
	dir, err := os.MkdirTemp(tmpDir, "mozaiks-backup-*")
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot directory: %w", err)
	}
	path := filepath.Join(dir, sqlite.FileName)
	if err := sqlite.Snapshot(ctx, dataDir, path); err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	snap, err := sqlite.OpenSnapshot(path)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return snap, func() {
		snap.Close()
		os.RemoveAll(dir)
	}, nil
}
