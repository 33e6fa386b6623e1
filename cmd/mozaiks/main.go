// Command mozaiks is the self-hosted AI agent-workflow runtime and its operator CLI.
package main

import (
	"context"
	"os"

	"github.com/mozaiks/mozaiks/internal/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args[1:], cli.StdIO()))
}
