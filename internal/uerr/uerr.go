// Package uerr is the user-facing error: a message and a hint that are safe to
// print, an exit code, and the internal cause kept apart so that nothing
// internal (or secret) leaks into output unless it is asked for.
package uerr

import (
	"errors"
	"fmt"
)

// Exit codes, as spec/operator.md fixes them.
const (
	ExitOK           = 0
	ExitFailed       = 1
	ExitUsage        = 2
	ExitCheckFailed  = 3
	ExitPrerequisite = 4
	ExitInterrupted  = 130
)

// Error is an error meant for the operator.
type Error struct {
	Msg  string // what failed, one line
	Hint string // what to do next, one line (optional)
	Code int    // exit code; 0 means ExitFailed
	Err  error  // internal cause, for logs and errors.Is/As
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// ExitCode is the code the process should exit with.
func (e *Error) ExitCode() int {
	if e.Code == 0 {
		return ExitFailed
	}
	return e.Code
}

// New builds an Error with an exit code.
func New(code int, msg, hint string) *Error { return &Error{Msg: msg, Hint: hint, Code: code} }

// Wrap builds an Error around a cause.
func Wrap(err error, code int, msg, hint string) *Error {
	return &Error{Msg: msg, Hint: hint, Code: code, Err: err}
}

// Usage is a usage error (exit 2).
func Usage(format string, args ...any) *Error {
	return &Error{Msg: fmt.Sprintf(format, args...), Code: ExitUsage}
}

// Prerequisite is a missing prerequisite (exit 4), e.g. no Docker engine.
func Prerequisite(err error, msg, hint string) *Error {
	return &Error{Msg: msg, Hint: hint, Code: ExitPrerequisite, Err: err}
}

// As returns the *Error in err's chain, if any.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
