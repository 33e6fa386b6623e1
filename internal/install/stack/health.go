package stack

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/pkg/stdcopy"
)

// pollInterval is how often readiness is re-checked; the engine runs health
// checks on its own schedule, so polling faster gains nothing.
var pollInterval = 250 * time.Millisecond

// ReadinessError is a service that did not become ready; it carries the
// container's last log lines, which is usually all an operator needs.
type ReadinessError struct {
	Service   string
	Container string
	Reason    string
	LastLogs  []string
}

func (e *ReadinessError) Error() string {
	s := fmt.Sprintf("service %s (container %s) %s", e.Service, e.Container, e.Reason)
	if len(e.LastLogs) > 0 {
		s += "\nlast log lines:\n  " + strings.Join(e.LastLogs, "\n  ")
	}
	return s
}

// waitFor waits until container id of service meets condition (a compose
// depends_on condition) or deadline passes.
func waitFor(ctx context.Context, eng Engine, service, id, condition string, deadline time.Time) error {
	fail := func(reason string) error {
		return &ReadinessError{Service: service, Container: shortID(id), Reason: reason, LastLogs: lastLogs(ctx, eng, id, 20)}
	}
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		c, err := eng.ContainerInspect(ctx, id)
		if err != nil {
			return err
		}
		done, reason := ready(c, condition)
		if done {
			return nil
		}
		if reason != "" {
			return fail(reason)
		}
		if time.Now().After(deadline) {
			state := c.State
			if c.Health != "" {
				state += ", " + c.Health
			}
			return fail(fmt.Sprintf("did not become %s in time (it is %s)", condWord(condition), state))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// ready says whether c meets condition; a non-empty reason means it never will.
func ready(c Container, condition string) (bool, string) {
	switch condition {
	case types.ServiceConditionCompletedSuccessfully:
		if c.State == "exited" || c.State == "dead" {
			if c.ExitCode == 0 {
				return true, ""
			}
			return false, fmt.Sprintf("exited with code %d", c.ExitCode)
		}
		return false, ""
	case types.ServiceConditionHealthy:
		switch {
		case c.Health == "healthy":
			return true, ""
		case c.Health == "unhealthy":
			return false, "is unhealthy"
		case c.State == "exited" || c.State == "dead":
			return false, fmt.Sprintf("exited with code %d", c.ExitCode)
		case c.Health == "" && c.State == "running":
			return false, "has no healthcheck, so it can never be healthy"
		}
		return false, ""
	default: // service_started
		switch c.State {
		case "running":
			return true, ""
		case "exited", "dead":
			return false, fmt.Sprintf("exited with code %d", c.ExitCode)
		}
		return false, ""
	}
}

func condWord(condition string) string {
	switch condition {
	case types.ServiceConditionHealthy:
		return "healthy"
	case types.ServiceConditionCompletedSuccessfully:
		return "completed"
	}
	return "running"
}

// lastLogs is best effort: a failure to read logs must not hide the
// failure being reported.
func lastLogs(ctx context.Context, eng Engine, id string, n int) []string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	c, err := eng.ContainerInspect(ctx, id)
	if err != nil {
		return nil
	}
	rc, err := eng.ContainerLogs(ctx, id, LogOptions{Tail: fmt.Sprint(n)})
	if err != nil {
		return nil
	}
	defer rc.Close()
	var buf bytes.Buffer
	if c.TTY {
		_, _ = io.Copy(&buf, rc)
	} else {
		_, _ = stdcopy.StdCopy(&buf, &buf, rc)
	}
	text := strings.TrimRight(buf.String(), "\n")
	if text == "" {
		return nil
	}
	return strings.Split(text, "\n")
}
