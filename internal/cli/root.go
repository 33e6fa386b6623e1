// Package cli holds the cobra commands: each binds flags to an Options struct
// and calls into a package that does the work. Only Main prints errors and
// picks exit codes.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/mozaiks/mozaiks/internal/uerr"
)

// IO is where a command reads and writes.
type IO struct {
	In  io.Reader
	Out io.Writer // data
	Err io.Writer // progress, logs, errors
}

// StdIO is the process's standard streams.
func StdIO() IO { return IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr} }

// NewRootCmd builds the command tree.
func NewRootCmd(stdio IO) *cobra.Command {
	root := &cobra.Command{
		Use:           "mozaiks",
		Short:         "Self-hosted AI agent-workflow runtime and its operator CLI",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdio.In)
	root.SetOut(stdio.Out)
	root.SetErr(stdio.Err)
	root.PersistentFlags().String("config", "", "YAML config file (lowest precedence after defaults)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return uerr.Usage("%v", err) })

	root.AddCommand(
		NewCmdServe(stdio, nil),
		NewCmdVersion(stdio, nil),
		newCmdCompletion(stdio),
		NewCmdHealthcheck(stdio, nil),
		NewCmdWorkflows(stdio, nil, nil),
		NewCmdBackup(stdio, nil), NewCmdRestore(stdio, nil),
	)
	root.AddCommand(operatorCommands(stdio)...)
	return root
}

// Main runs the CLI and returns the process exit code.
func Main(ctx context.Context, args []string, stdio IO) int {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := NewRootCmd(stdio)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return report(stdio.Err, err, ctx.Err() != nil)
}

// report prints err once and maps it to an exit code.
func report(w io.Writer, err error, interrupted bool) int {
	if err == nil {
		return uerr.ExitOK
	}
	if interrupted && errors.Is(err, context.Canceled) {
		fmt.Fprintln(w, "interrupted")
		return uerr.ExitInterrupted
	}
	if e, ok := uerr.As(err); ok {
		fmt.Fprintf(w, "Error: %s\n", e.Msg)
		if e.Hint != "" {
			fmt.Fprintf(w, "Hint: %s\n", e.Hint)
		}
		return e.ExitCode()
	}
	fmt.Fprintf(w, "Error: %v\n", err)
	if isUsage(err) {
		return uerr.ExitUsage
	}
	return uerr.ExitFailed
}

// isUsage recognises cobra's own argument errors, which are plain errors.
func isUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "accepts ", "requires at least", "invalid argument"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}
