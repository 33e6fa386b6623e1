package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mozaiks/mozaiks/internal/config"
	"github.com/mozaiks/mozaiks/internal/uerr"
	"github.com/mozaiks/mozaiks/internal/workflow"
	"github.com/mozaiks/mozaiks/workflows"
)

// WorkflowsOptions are the inputs of `mozaiks workflows list|validate`.
type WorkflowsOptions struct {
	IO         IO
	Path       string // workflows directory (or, for validate, one workflow folder); "" reads MOZAIKS_WORKFLOWS_PATH
	JSON       bool
	ConfigFile string
	Environ    []string // nil: the process environment
	Builtin    fs.FS    // the embedded examples; nil: none
}

// NewCmdWorkflows builds `mozaiks workflows` and its subcommands.
func NewCmdWorkflows(stdio IO, listF, validateF func(context.Context, *WorkflowsOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "workflows",
		Short: "List and validate workflow folders",
		Args:  cobra.NoArgs,
	}
	list := &WorkflowsOptions{IO: stdio, Builtin: workflows.FS}
	listCmd := &cobra.Command{
		Use:   "list",
		Short: "List the workflows the runtime would serve (built-in examples and MOZAIKS_WORKFLOWS_PATH)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			list.ConfigFile, _ = cmd.Flags().GetString("config")
			if listF != nil {
				return listF(cmd.Context(), list)
			}
			return runWorkflowsList(cmd.Context(), list)
		},
	}
	listCmd.Flags().StringVar(&list.Path, "path", "", "workflows directory (default MOZAIKS_WORKFLOWS_PATH, else ./workflows)")
	listCmd.Flags().BoolVar(&list.JSON, "json", false, "print as JSON")

	val := &WorkflowsOptions{IO: stdio}
	valCmd := &cobra.Command{
		Use:   "validate [DIR]",
		Short: "Check workflow folders and print every problem as file:line: field: message",
		Long: `Check a directory of workflow folders (default MOZAIKS_WORKFLOWS_PATH, else ./workflows),
or a single workflow folder. Every problem is printed as file:line: field: message;
warnings are printed too. Exits 1 when there is an error.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			val.ConfigFile, _ = cmd.Flags().GetString("config")
			if len(args) == 1 {
				val.Path = args[0]
			}
			if validateF != nil {
				return validateF(cmd.Context(), val)
			}
			return runWorkflowsValidate(cmd.Context(), val)
		},
	}
	valCmd.Flags().BoolVar(&val.JSON, "json", false, "print the diagnostics as JSON")
	cmd.AddCommand(listCmd, valCmd)
	return cmd
}

// workflowsPath resolves the directory: the explicit path, else the setting.
func workflowsPath(opts *WorkflowsOptions) (string, error) {
	if opts.Path != "" {
		return opts.Path, nil
	}
	vals, _, err := config.Resolve(config.LoadOptions{ConfigFile: opts.ConfigFile, Environ: opts.Environ})
	if err != nil {
		return "", uerr.Wrap(err, uerr.ExitUsage, "cannot read the configuration", "check .env and --config")
	}
	return vals["workflows_path"], nil
}

type listEntry struct {
	workflow.Manifest
	Pattern string `json:"orchestration_pattern"`
	Source  string `json:"source"`
}

func runWorkflowsList(_ context.Context, opts *WorkflowsOptions) error {
	dir, err := workflowsPath(opts)
	if err != nil {
		return err
	}
	set, diags := workflow.LoadSet(dir, opts.Builtin)
	var entries []listEntry
	for _, name := range set.Names() {
		m, _ := set.Manifest(name)
		wf, _ := set.Get(name)
		entries = append(entries, listEntry{Manifest: m, Pattern: wf.Orchestrator.Pattern, Source: wf.Source})
	}
	if broken := brokenFolders(diags); broken > 0 {
		fmt.Fprintf(opts.IO.Err, "%d workflow folder(s) in %s have errors and are not listed; run: mozaiks workflows validate %s\n", broken, dir, dir)
	}
	if opts.JSON {
		if entries == nil {
			entries = []listEntry{}
		}
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(entries)
	}
	tw := tabwriter.NewWriter(opts.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTARTUP\tPATTERN\tAGENTS\tUI TOOLS\tSOURCE")
	for _, e := range entries {
		var tools []string
		for _, t := range e.Tools {
			tools = append(tools, t.UIToolID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.WorkflowName, e.StartupMode, e.Pattern,
			strings.Join(e.Agents, ","), orDash(strings.Join(tools, ",")), e.Source)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func brokenFolders(diags []workflow.Diagnostic) int {
	seen := map[string]bool{}
	for _, d := range diags {
		if d.Severity == workflow.SevError {
			seen[d.Workflow] = true
		}
	}
	return len(seen)
}

func runWorkflowsValidate(_ context.Context, opts *WorkflowsOptions) error {
	dir, err := workflowsPath(opts)
	if err != nil {
		return err
	}
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		return uerr.New(uerr.ExitUsage, fmt.Sprintf("%s is not a directory", dir), "pass a workflows directory or one workflow folder")
	}
	var diags []workflow.Diagnostic
	var names []string
	if workflow.IsWorkflowDir(dir) {
		wf, ds := workflow.LoadDir(dir)
		diags = ds
		if wf != nil {
			names = []string{wf.Name}
		}
	} else {
		set, ds := workflow.LoadSet(dir, nil)
		diags, names = ds, set.Names()
	}
	if opts.JSON {
		out := struct {
			Valid       []string              `json:"valid"`
			Diagnostics []workflow.Diagnostic `json:"diagnostics"`
		}{Valid: append([]string{}, names...), Diagnostics: append([]workflow.Diagnostic{}, diags...)}
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		for _, d := range diags {
			fmt.Fprintln(opts.IO.Out, d.String())
		}
	}
	errs, warns := 0, 0
	for _, d := range diags {
		if d.Severity == workflow.SevError {
			errs++
		} else {
			warns++
		}
	}
	if !opts.JSON {
		fmt.Fprintf(opts.IO.Err, "%d workflow(s) valid, %d error(s), %d warning(s)\n", len(names), errs, warns)
	}
	if errs > 0 {
		return uerr.New(uerr.ExitFailed, fmt.Sprintf("%d error(s) in the workflows under %s", errs, dir), "fix the problems listed above")
	}
	if len(names) == 0 {
		return uerr.New(uerr.ExitFailed, "no workflow folders in "+dir, "a workflow folder holds orchestrator.yaml and agents.yaml")
	}
	return nil
}
