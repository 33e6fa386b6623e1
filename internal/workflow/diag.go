package workflow

import "fmt"

// Severity of a diagnostic.
const (
	SevError   = "error"
	SevWarning = "warning"
)

// Diagnostic is one problem found while loading a workflow.
type Diagnostic struct {
	Workflow string `json:"workflow"`
	File     string `json:"file"` // as shown to the user: a path, or builtin:<name>/<file>
	Line     int    `json:"line,omitempty"`
	Field    string `json:"field,omitempty"` // e.g. agents[2].name
	Severity string `json:"severity"`
	Message  string `json:"message"`
}

// String renders the diagnostic as `file:line: field: message`, with
// warnings marked so that an operator can tell them from errors.
func (d Diagnostic) String() string {
	loc := d.File
	if d.Line > 0 {
		loc = fmt.Sprintf("%s:%d", d.File, d.Line)
	}
	msg := d.Message
	if d.Severity == SevWarning {
		msg = "warning: " + msg
	}
	if d.Field != "" {
		return fmt.Sprintf("%s: %s: %s", loc, d.Field, msg)
	}
	return fmt.Sprintf("%s: %s", loc, msg)
}

// HasErrors reports whether any diagnostic is an error.
func HasErrors(ds []Diagnostic) bool {
	for _, d := range ds {
		if d.Severity == SevError {
			return true
		}
	}
	return false
}
