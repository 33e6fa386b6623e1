//go:build !mozaiks_runtime

package cli

import (
	"context"
	"os"
	"strconv"
	"strings"

	"github.com/charmbracelet/x/term"
	"github.com/spf13/cobra"

	"github.com/mozaiks/mozaiks/internal/buildinfo"
	"github.com/mozaiks/mozaiks/internal/install/initwiz"
)

// InitOptions are the inputs of `mozaiks init`.
type InitOptions struct {
	IO             IO
	Dir            string
	NonInteractive bool
	Force          bool
	SkipChecks     bool
	// Answers holds the answer flags that were set, by env name.
	Answers map[string]string
	Environ func() []string
}

// NewCmdInit builds `mozaiks init`.
func NewCmdInit(stdio IO, runF func(context.Context, *InitOptions) error) *cobra.Command {
	opts := &InitOptions{IO: stdio, Environ: os.Environ}
	values := map[string]*string{}
	bools := map[string]*bool{}
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Set up a deployment: .env, compose files, proxy config, Kubernetes manifests",
		Long: `Asks for (or takes as flags) the deployment, database, LLM, public URL, CORS origins,
app id and reverse proxy, checks Mongo and the LLM key against the real services, and
writes a working deployment into --dir. Re-running keeps secrets and earlier answers and
shows a diff (secrets redacted) before overwriting anything.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Answers = map[string]string{}
			for _, q := range initwiz.Questions {
				if !cmd.Flags().Changed(q.Flag) {
					continue
				}
				if q.Bool {
					opts.Answers[q.Env] = strconv.FormatBool(*bools[q.Flag])
				} else {
					opts.Answers[q.Env] = *values[q.Flag]
				}
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runInit(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Dir, "dir", ".", "directory to write into (created if missing)")
	f.BoolVar(&opts.NonInteractive, "non-interactive", false, "never ask; fail listing the missing answers (implied when stdin is not a terminal)")
	f.BoolVar(&opts.Force, "force", false, "overwrite changed files without asking")
	f.BoolVar(&opts.SkipChecks, "skip-checks", false, "do not ping Mongo or list the LLM's models")
	for _, q := range initwiz.Questions {
		help := q.Help + " (" + q.Env + ")"
		if q.Bool {
			bools[q.Flag] = f.Bool(q.Flag, false, help)
		} else {
			values[q.Flag] = f.String(q.Flag, "", help)
		}
	}
	return cmd
}

func runInit(ctx context.Context, opts *InitOptions) error {
	interactive := false
	if in, ok := opts.IO.In.(*os.File); ok {
		interactive = term.IsTerminal(in.Fd())
	}
	var environ []string
	if opts.Environ != nil {
		environ = opts.Environ()
	}
	accessible := false
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "ACCESSIBLE="); ok && v != "" {
			accessible = true
		}
	}
	return initwiz.Run(ctx, initwiz.Options{
		Dir:            opts.Dir,
		NonInteractive: opts.NonInteractive,
		Force:          opts.Force,
		SkipChecks:     opts.SkipChecks,
		Flags:          opts.Answers,
		Environ:        environ,
		In:             opts.IO.In,
		Out:            opts.IO.Out,
		Err:            opts.IO.Err,
		Interactive:    interactive,
		Accessible:     accessible,
		ImageTag:       imageTag(buildinfo.Get().Version),
	})
}

// imageTag is the runtime image matching this binary: a release's version
// without the "v", otherwise latest.
func imageTag(version string) string { return ImageTag(version) }

// ImageTag is the mozaiks/runtime tag for a build version: X.Y.Z for a
// release vX.Y.Z, "dev" for anything else (what `make image` tags a local
// build), so init pins exactly the image this binary's version builds.
func ImageTag(version string) string {
	v := strings.TrimPrefix(version, "v")
	if v == "" || strings.ContainsAny(v, "+-") || strings.Count(v, ".") != 2 {
		return "dev"
	}
	return v
}
