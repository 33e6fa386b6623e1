package cli

import (
	"github.com/spf13/cobra"

	"github.com/mozaiks/mozaiks/internal/uerr"
)

func newCmdCompletion(stdio IO) *cobra.Command {
	return &cobra.Command{
		Use:       "completion bash|zsh|fish|powershell",
		Short:     "Print a shell completion script",
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"bash", "zsh", "fish", "powershell"},
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(stdio.Out, true)
			case "zsh":
				return root.GenZshCompletion(stdio.Out)
			case "fish":
				return root.GenFishCompletion(stdio.Out, true)
			case "powershell":
				return root.GenPowerShellCompletionWithDesc(stdio.Out)
			}
			return uerr.Usage("unknown shell %q (want bash, zsh, fish or powershell)", args[0])
		},
	}
}
