package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mozaiks/mozaiks/internal/backup"
	"github.com/mozaiks/mozaiks/internal/config"
	"github.com/mozaiks/mozaiks/internal/store"
	"github.com/mozaiks/mozaiks/internal/store/sqlite"
	"github.com/mozaiks/mozaiks/internal/uerr"
)

// RestoreOptions are the inputs of `mozaiks restore`.
type RestoreOptions struct {
	IO         IO
	Flags      *pflag.FlagSet // target store settings (--mongo-uri, --data-dir)
	ConfigFile string
	File       string
	Force      bool
	JSON       bool
	Progress   bool
	Environ    []string
	KeyVault   *config.KeyVaultOptions // tests: a local vault
}

// NewCmdRestore builds `mozaiks restore`.
func NewCmdRestore(stdio IO, runF func(context.Context, *RestoreOptions) error) *cobra.Command {
	opts := &RestoreOptions{IO: stdio}
	cmd := &cobra.Command{
		Use:   "restore FILE",
		Short: "Restore a backup archive into an empty store (embedded or MongoDB)",
		Long: `Restore an archive written by 'mozaiks backup' into the store serve would use:
MongoDB when MONGO_URI is set, else the embedded store in --data-dir (stop serve first:
it holds that directory). Either kind restores from either kind, so this also migrates
embedded -> MongoDB and back. Every entry is checked against the manifest's counts and
checksums before anything is written; a corrupt archive changes nothing. A target that
already holds data is refused unless --force, which replaces its content.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.File = args[0]
			opts.Flags = cmd.Flags()
			opts.ConfigFile, _ = cmd.Flags().GetString("config")
			opts.Progress = isTerminal(stdio.Err)
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runRestore(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Force, "force", false, "replace the content of a target that is not empty")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print what was restored as JSON on stdout")
	config.BindFlags(cmd.Flags(), "mongo_uri", "data_dir")
	return cmd
}

// restoreResult is the --json output.
type restoreResult struct {
	File     string          `json:"file"`
	Target   string          `json:"target"`
	Restored store.Counts    `json:"restored"`
	Manifest backup.Manifest `json:"manifest"`
}

func runRestore(ctx context.Context, opts *RestoreOptions) error {
	a, err := backup.OpenFile(opts.File)
	if errors.Is(err, fs.ErrNotExist) {
		return uerr.Wrap(err, uerr.ExitUsage, "no such file: "+opts.File, "")
	}
	if err != nil {
		return corruptError(opts.File, err)
	}
	defer a.Close()
	cfg, err := config.Load(config.LoadOptions{Flags: opts.Flags, ConfigFile: opts.ConfigFile, Environ: opts.Environ,
		KeyVault: opts.KeyVault})
	if err != nil {
		return uerr.Wrap(err, uerr.ExitUsage, err.Error(), "fix the setting named above (flag, environment, .env or --config)")
	}
	dst, where, closeDst, err := openRestoreTarget(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeDst()

	var progress backup.Progress
	if opts.Progress {
		progress = newBarProgress(opts.IO.Err)
	}
	start := time.Now()
	n, err := a.Restore(ctx, dst, backup.RestoreOptions{Force: opts.Force, Progress: progress})
	var ne *backup.NotEmptyError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.As(err, &ne):
		return uerr.Wrap(err, uerr.ExitFailed, where.name+" is not empty: "+ne.Error(),
			"restore into an empty store, or add --force to replace its content")
	case errors.Is(err, backup.ErrCorrupt), errors.Is(err, backup.ErrVersion):
		return corruptError(opts.File, err)
	default:
		return uerr.Wrap(err, uerr.ExitFailed, fmt.Sprintf("restore into %s failed after %d sessions, %d events, %d usage records",
			where.name, n.Sessions, n.Events, n.Usage), "fix the cause, then run the restore again with --force")
	}
	fmt.Fprintf(opts.IO.Err, "Restored %d sessions, %d events, %d usage records from %s (%s backup of %s) into %s in %s\n",
		n.Sessions, n.Events, n.Usage, opts.File, a.Manifest.Source, a.Manifest.CreatedAt.Format(time.RFC3339),
		where.name, time.Since(start).Round(time.Millisecond))
	if opts.JSON {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(restoreResult{File: opts.File, Target: where.backend, Restored: n, Manifest: a.Manifest})
	}
	return nil
}

func corruptError(file string, err error) error {
	if errors.Is(err, backup.ErrVersion) {
		return uerr.Wrap(err, uerr.ExitFailed, file+": "+err.Error(), "restore it with a newer mozaiks")
	}
	return uerr.Wrap(err, uerr.ExitFailed, "refusing "+file+": "+err.Error(),
		"nothing was restored; use another copy of the backup, or take a new one")
}

// restoreTarget is a store that can take a restore.
type restoreTarget interface {
	store.Importer
	Close() error
}

func openRestoreTarget(ctx context.Context, cfg *config.Config) (restoreTarget, storeDesc, func(), error) {
	if cfg.MongoURI != "" {
		s, d, err := openMongoStore(ctx, cfg)
		if err != nil {
			return nil, d, nil, err
		}
		return s, d, func() { s.Close() }, nil
	}
	d := storeDesc{backend: "embedded", name: "the embedded store in " + cfg.DataDir}
	s, err := sqlite.Open(ctx, cfg.DataDir)
	if errors.Is(err, store.ErrLocked) {
		return nil, d, nil, uerr.Wrap(err, uerr.ExitFailed, err.Error(), "stop mozaiks serve, then restore (serve holds its data directory)")
	}
	if err != nil {
		return nil, d, nil, uerr.Wrap(err, uerr.ExitFailed, "open "+d.name+" failed", "")
	}
	return s, d, func() { s.Close() }, nil
}

// isTerminal reports whether w is a terminal (progress bars only there).
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && isTTY(f)
}
