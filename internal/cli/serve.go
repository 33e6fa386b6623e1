package cli

import (
	"context"

	"github.com/spf13/cobra"
)

// ServeOptions are the inputs of `mozaiks serve`.
type ServeOptions struct {
	IO IO
}

// NewCmdServe builds `mozaiks serve`.
func NewCmdServe(stdio IO, runF func(context.Context, *ServeOptions) error) *cobra.Command {
	opts := &ServeOptions{IO: stdio}
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the runtime: HTTP + WebSocket server",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return nil
		},
	}
}
