package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mozaiks/mozaiks/internal/backup"
	"github.com/mozaiks/mozaiks/internal/buildinfo"
	"github.com/mozaiks/mozaiks/internal/config"
	"github.com/mozaiks/mozaiks/internal/store"
	"github.com/mozaiks/mozaiks/internal/store/mongo"
	"github.com/mozaiks/mozaiks/internal/store/sqlite"
	"github.com/mozaiks/mozaiks/internal/uerr"
)

// BackupOptions are the inputs of `mozaiks backup`.
type BackupOptions struct {
	IO         IO
	Flags      *pflag.FlagSet // store settings (--mongo-uri, --data-dir)
	ConfigFile string
	Out        string // archive path, "-" for stdout
	Force      bool   // overwrite Out
	JSON       bool   // print the manifest on stdout
	Progress   bool   // draw a progress bar on stderr (decided from the terminal)
	Environ    []string
	KeyVault   *config.KeyVaultOptions // tests: a local vault
}

// NewCmdBackup builds `mozaiks backup`.
func NewCmdBackup(stdio IO, runF func(context.Context, *BackupOptions) error) *cobra.Command {
	opts := &BackupOptions{IO: stdio}
	cmd := &cobra.Command{
		Use:   "backup --out FILE",
		Short: "Write every session, event and usage record to one portable archive",
		Long: `Write the store's sessions, events and usage records to one archive (a zip with a
manifest of counts and SHA-256 checksums). The store is the one serve would use:
MongoDB when MONGO_URI is set (streamed through the driver), else the embedded store
in --data-dir, which can be backed up while serve runs (a consistent snapshot taken
with VACUUM INTO, without serve's lock, into a temporary file beside --out: it needs
as much free space there as the database takes). Restore it with 'mozaiks restore FILE',
into either kind of store.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Flags = cmd.Flags()
			opts.ConfigFile, _ = cmd.Flags().GetString("config")
			opts.Progress = isTerminal(stdio.Err)
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runBackup(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Out, "out", "o", "", "archive to write (- for stdout)")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "overwrite --out if it exists")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the archive's manifest as JSON on stdout")
	config.BindFlags(cmd.Flags(), "mongo_uri", "data_dir")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

func runBackup(ctx context.Context, opts *BackupOptions) error {
	if opts.Out == "" {
		return uerr.Usage("--out is required")
	}
	if opts.Out == "-" && opts.JSON {
		return uerr.Usage("--json prints to stdout, which --out - already uses for the archive")
	}
	if opts.Out != "-" {
		if st, err := os.Stat(filepath.Dir(opts.Out)); err != nil || !st.IsDir() {
			return uerr.Usage("--out %s: no directory %s to write into", opts.Out, filepath.Dir(opts.Out))
		}
	}
	if opts.Out != "-" && !opts.Force {
		if _, err := os.Stat(opts.Out); err == nil {
			return uerr.New(uerr.ExitFailed, opts.Out+" already exists", "choose another --out, or add --force to overwrite it")
		}
	}
	cfg, err := config.Load(config.LoadOptions{Flags: opts.Flags, ConfigFile: opts.ConfigFile, Environ: opts.Environ,
		KeyVault: opts.KeyVault})
	if err != nil {
		return uerr.Wrap(err, uerr.ExitUsage, err.Error(), "fix the setting named above (flag, environment, .env or --config)")
	}

	tmpDir := ""
	if opts.Out != "-" {
		tmpDir = filepath.Dir(opts.Out)
	}
	src, where, closeSrc, err := openBackupSource(ctx, cfg, tmpDir)
	if err != nil {
		return err
	}
	defer closeSrc()

	var progress backup.Progress
	if opts.Progress {
		progress = newBarProgress(opts.IO.Err)
	}
	wopts := backup.WriteOptions{Source: where.backend, Producer: "mozaiks " + buildinfo.Get().Version, Progress: progress}
	start := time.Now()
	var m backup.Manifest
	if opts.Out == "-" {
		m, err = backup.Write(ctx, opts.IO.Out, src, wopts)
	} else {
		m, err = writeAtomically(opts.Out, func(w io.Writer) (backup.Manifest, error) {
			return backup.Write(ctx, w, src, wopts)
		})
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return uerr.Wrap(err, uerr.ExitFailed, "back up "+where.name+" failed", "")
	}
	fmt.Fprintf(opts.IO.Err, "Backed up %d sessions, %d events, %d usage records from %s to %s in %s\n",
		m.Counts.Sessions, m.Counts.Events, m.Counts.Usage, where.name, opts.Out, time.Since(start).Round(time.Millisecond))
	if opts.JSON {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(m)
	}
	return nil
}

// storeDesc names a store for messages.
type storeDesc struct {
	backend string // embedded | mongodb
	name    string // "the embedded store in ./data", "MongoDB mongodb://host/db"
}

func openBackupSource(ctx context.Context, cfg *config.Config, tmpDir string) (store.Exporter, storeDesc, func(), error) {
	if cfg.MongoURI != "" {
		s, d, err := openMongoStore(ctx, cfg)
		if err != nil {
			return nil, d, nil, err
		}
		return s, d, func() { s.Close() }, nil
	}
	d := storeDesc{backend: "embedded", name: "the embedded store in " + cfg.DataDir}
	src, cleanup, err := backup.EmbeddedSource(ctx, cfg.DataDir, tmpDir)
	if errors.Is(err, sqlite.ErrNoDatabase) {
		return nil, d, nil, uerr.Wrap(err, uerr.ExitFailed, "no embedded store in "+cfg.DataDir,
			"point --data-dir (MOZAIKS_DATA_DIR) at serve's data directory, or set MONGO_URI to back up MongoDB")
	}
	if err != nil {
		return nil, d, nil, uerr.Wrap(err, uerr.ExitFailed, "snapshot "+d.name+" failed", "")
	}
	return src, d, cleanup, nil
}

// openMongoStore opens the Mongo store and checks it answers, so an
// unreachable server is a missing prerequisite (exit 4), said at once.
func openMongoStore(ctx context.Context, cfg *config.Config) (*mongo.Store, storeDesc, error) {
	d := storeDesc{backend: "mongodb", name: "MongoDB " + config.RedactURI(cfg.MongoURI)}
	s, err := mongo.Open(ctx, cfg.MongoURI, mongo.Options{})
	if err != nil {
		return nil, d, uerr.Wrap(err, uerr.ExitUsage, "invalid MONGO_URI "+config.RedactURI(cfg.MongoURI), "")
	}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, d, uerr.Prerequisite(err, "cannot reach "+d.name, "check MONGO_URI and that MongoDB is running (mozaiks doctor --only MDB01)")
	}
	return s, d, nil
}

// writeAtomically writes path through a temporary file beside it, renamed
// into place only when write succeeds: an interrupted backup leaves no
// half-written archive under the name a restore would use.
func writeAtomically(path string, write func(io.Writer) (backup.Manifest, error)) (backup.Manifest, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return backup.Manifest{}, err
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	m, err := write(f)
	if err != nil {
		return backup.Manifest{}, err
	}
	if err := f.Chmod(0o600); err != nil {
		return backup.Manifest{}, err
	}
	if err := f.Sync(); err != nil {
		return backup.Manifest{}, err
	}
	if err := f.Close(); err != nil {
		return backup.Manifest{}, err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return backup.Manifest{}, err
	}
	ok = true
	return m, nil
}
