// Package workflows holds the example workflows embedded in the binary. A
// folder of the same name under MOZAIKS_WORKFLOWS_PATH replaces one of them.
package workflows

import (
	"embed"
	"io/fs"
)

//go:embed assistant triage approval
var files embed.FS

// FS holds one folder per example workflow.
var FS fs.FS = files
