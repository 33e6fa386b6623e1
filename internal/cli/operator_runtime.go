//go:build mozaiks_runtime

package cli

import "github.com/spf13/cobra"

// operatorCommands: none in the runtime image's binary (-tags mozaiks_runtime),
// which only serves, checks health, validates workflows and prints its version.
func operatorCommands(IO) []*cobra.Command { return nil }
