//go:build !mozaiks_runtime

package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mozaiks/mozaiks/internal/config"
	"github.com/mozaiks/mozaiks/internal/doctor"
	"github.com/mozaiks/mozaiks/internal/uerr"
)

// DoctorOptions are the inputs of `mozaiks doctor`.
type DoctorOptions struct {
	IO         IO
	Dir        string
	ConfigFile string
	URL        string
	Origin     string
	Prod       bool
	Kind       string
	CAFile     string
	JSON       bool
	List       bool
	Only       []string
	Skip       []string
	Strict     bool
	Fix        bool
	Slow       bool
	Verbose    bool

	Environ  []string          // nil: the process environment
	Color    bool              // colour the table (decided from the terminal by NewCmdDoctor)
	Registry *doctor.Registry  // nil: doctor.DefaultRegistry()
	Prepare  func(*doctor.Env) // tests adjust the environment (trusted CAs, thresholds)
}

// NewCmdDoctor builds `mozaiks doctor`.
func NewCmdDoctor(stdio IO, runF func(context.Context, *DoctorOptions) error) *cobra.Command {
	opts := &DoctorOptions{IO: stdio}
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the deployment: config, secrets, Mongo, LLM, proxy, WebSockets, TLS, Docker, host",
		Long: `Runs a registry of checks and reports each with a stable code, a severity
(ok, warn, fail, skipped), a message and a one-line remedy.

Exit status: 0 when nothing failed, 3 when a check failed (or warned, with --strict).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.ConfigFile, _ = cmd.Flags().GetString("config")
			opts.Color = wantColor(stdio)
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runDoctor(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Dir, "dir", "", "deployment directory (.env, docker-compose.yml); default the working directory")
	f.StringVar(&opts.URL, "url", "", "public URL to probe through the proxy (default MOZAIKS_PUBLIC_URL, else http://127.0.0.1:PORT)")
	f.StringVar(&opts.Origin, "origin", "", "browser origin of the front-end to test, e.g. https://app.example.com")
	f.BoolVar(&opts.Prod, "prod", false, "judge the production deployment (docker-compose.prod.yml); the default when .env says MOZAIKS_DEPLOYMENT=prod")
	f.StringVar(&opts.Kind, "kind", "", "deployment kind to judge: bare, compose-dev, compose-prod or k8s (default: from --prod, .env and the files)")
	f.StringVar(&opts.CAFile, "ca-file", "", "PEM file of a private CA to trust (besides the system roots) when checking TLS")
	f.BoolVar(&opts.JSON, "json", false, "print the report as JSON")
	f.BoolVar(&opts.List, "list", false, "list the checks and exit")
	f.StringSliceVar(&opts.Only, "only", nil, "run only these check codes (comma-separated)")
	f.StringSliceVar(&opts.Skip, "skip", nil, "skip these check codes (comma-separated)")
	f.BoolVar(&opts.Strict, "strict", false, "warnings fail too (exit 3)")
	f.BoolVar(&opts.Fix, "fix", false, "apply safe local fixes (chmod 600 .env, generate missing secrets) and re-check")
	f.BoolVar(&opts.Slow, "slow", false, "include slow checks (WS04 keeps a socket idle for 65 s)")
	f.BoolVarP(&opts.Verbose, "verbose", "v", false, "show each check's details in the table")
	return cmd
}

// wantColor: colour only on a terminal, and never with NO_COLOR set.
func wantColor(stdio IO) bool {
	if _, set := os.LookupEnv("NO_COLOR"); set {
		return false
	}
	f, ok := stdio.Out.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func runDoctor(ctx context.Context, opts *DoctorOptions) error {
	reg := opts.Registry
	if reg == nil {
		reg = doctor.DefaultRegistry()
	}
	if opts.List {
		return doctor.WriteList(opts.IO.Out, reg.Checks())
	}
	checks, err := reg.Select(opts.Only, opts.Skip, opts.Slow)
	if err != nil {
		return uerr.Usage("%v", err)
	}
	if opts.Origin != "" {
		o, err := config.NormalizeOrigin(opts.Origin)
		if err != nil {
			return uerr.Usage("--origin: %v", err)
		}
		opts.Origin = o
	}
	switch opts.Kind {
	case "", doctor.KindBare, doctor.KindComposeDev, doctor.KindComposeProd, doctor.KindK8s:
	default:
		return uerr.Usage("--kind %q: want bare, compose-dev, compose-prod or k8s", opts.Kind)
	}
	if opts.URL != "" && !strings.HasPrefix(opts.URL, "http://") && !strings.HasPrefix(opts.URL, "https://") {
		return uerr.Usage("--url %q: want an absolute http:// or https:// URL", opts.URL)
	}
	env, err := doctor.NewEnv(doctor.EnvOptions{
		Load:   config.LoadOptions{Dir: opts.Dir, ConfigFile: opts.ConfigFile, Environ: opts.Environ},
		URL:    opts.URL,
		Origin: opts.Origin,
		Prod:   opts.Prod,
		Kind:   opts.Kind,
		CAFile: opts.CAFile,
	})
	if err != nil {
		// A .env parse error quotes the offending line, which may hold a
		// secret: name the file only.
		msg := "cannot read the configuration: " + err.Error()
		if strings.Contains(err.Error(), "parse ") && strings.Contains(err.Error(), ".env") {
			msg = "cannot parse " + filepath.Join(opts.Dir, ".env") + ": a line is not KEY=VALUE"
		}
		return uerr.Wrap(err, uerr.ExitFailed, msg, "fix .env (or the --config file) and run mozaiks doctor again")
	}
	if opts.Prepare != nil {
		opts.Prepare(env)
	}
	defer env.Close()
	rep := doctor.Run(ctx, env, checks, doctor.RunOptions{
		Fix: opts.Fix,
		OnFix: func(code, what string) {
			fmt.Fprintf(opts.IO.Err, "fixed %s: %s\n", code, what)
		},
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if opts.JSON {
		err = rep.WriteJSON(opts.IO.Out)
	} else {
		err = rep.WriteTable(opts.IO.Out, doctor.TableOptions{Color: opts.Color, Verbose: opts.Verbose})
	}
	if err != nil {
		return err
	}
	if rep.Failed(opts.Strict) {
		var codes []string
		for _, c := range rep.Checks {
			if c.Severity == doctor.Fail || (opts.Strict && c.Severity == doctor.Warn) {
				codes = append(codes, c.Code)
			}
		}
		what := "failed"
		if opts.Strict {
			what = "failed or warned (--strict)"
		}
		return uerr.New(uerr.ExitCheckFailed, fmt.Sprintf("%d doctor check(s) %s: %s", len(codes), what, strings.Join(codes, ", ")),
			"follow the hints above, then run mozaiks doctor again")
	}
	return nil
}
