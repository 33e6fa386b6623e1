//go:build !mozaiks_runtime

package cli

import "github.com/spf13/cobra"

// operatorCommands are the commands an operator runs on a host: they bring in
// the Docker client, compose-go, the form library and the doctor. The runtime
// image is built with -tags mozaiks_runtime and leaves them out (see
// operator_runtime.go), which keeps it small.
func operatorCommands(stdio IO) []*cobra.Command {
	return []*cobra.Command{
		NewCmdInit(stdio, nil),
		NewCmdUp(stdio, nil), NewCmdDown(stdio, nil), NewCmdStatus(stdio, nil), NewCmdLogs(stdio, nil),
		NewCmdDoctor(stdio, nil),
	}
}
