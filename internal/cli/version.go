package cli

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mozaiks/mozaiks/internal/buildinfo"
)

// VersionOptions are the inputs of `mozaiks version`.
type VersionOptions struct {
	IO   IO
	JSON bool
}

// NewCmdVersion builds `mozaiks version`.
func NewCmdVersion(stdio IO, runF func(context.Context, *VersionOptions) error) *cobra.Command {
	opts := &VersionOptions{IO: stdio}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print version, commit, build date, Go version and platform",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runVersion(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print as JSON")
	return cmd
}

func runVersion(_ context.Context, opts *VersionOptions) error {
	info := buildinfo.Get()
	if opts.JSON {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(info)
	}
	_, err := fmt.Fprintln(opts.IO.Out, info.String())
	return err
}
