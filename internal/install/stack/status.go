package stack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// StatusOptions are the inputs of Status.
type StatusOptions struct {
	Project ProjectOptions
}

// ServiceStatus is one row of `mozaiks status`.
type ServiceStatus struct {
	Service   string        `json:"service"`
	Container string        `json:"container,omitempty"`
	State     string        `json:"state"`            // engine state, or "not created"
	Health    string        `json:"health,omitempty"` // healthy, unhealthy, starting; empty without a health check
	Ports     []PortBinding `json:"ports"`
	Image     string        `json:"image"`
	StartedAt *time.Time    `json:"started_at,omitempty"`
	UptimeSec int64         `json:"uptime_seconds"`
	Restarts  int           `json:"restarts"`
}

// StateNotCreated is the state of a service that has no container.
const StateNotCreated = "not created"

// Status reports every service of the compose file, and any container of
// the project that the file no longer names, in service order.
func Status(ctx context.Context, eng Engine, o StatusOptions, now time.Time) ([]ServiceStatus, error) {
	p, err := LoadProject(ctx, o.Project)
	if err != nil {
		return nil, err
	}
	if err := ping(ctx, eng); err != nil {
		return nil, err
	}
	cs, err := eng.ContainerList(ctx, projectFilter(p.Name))
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []ServiceStatus
	for _, c := range cs {
		full, err := eng.ContainerInspect(ctx, c.ID)
		if err != nil {
			return nil, err
		}
		svc := full.Labels[LabelService]
		seen[svc] = true
		st := ServiceStatus{
			Service: svc, Container: full.Name, State: full.State, Health: full.Health,
			Ports: full.Ports, Image: full.Image, Restarts: full.RestartCount,
		}
		slices.SortFunc(st.Ports, func(a, b PortBinding) int { return int(a.HostPort) - int(b.HostPort) })
		if full.State == "running" && !full.StartedAt.IsZero() {
			t := full.StartedAt
			st.StartedAt = &t
			st.UptimeSec = int64(now.Sub(t).Seconds())
		}
		out = append(out, st)
	}
	for _, name := range sortedKeys(p.Services) {
		if !seen[name] {
			out = append(out, ServiceStatus{Service: name, State: StateNotCreated, Image: p.Services[name].Image})
		}
	}
	slices.SortFunc(out, func(a, b ServiceStatus) int { return strings.Compare(a.Service, b.Service) })
	return out, nil
}

// WriteStatusJSON renders the status as a JSON array.
func WriteStatusJSON(w io.Writer, rows []ServiceStatus) error {
	if rows == nil {
		rows = []ServiceStatus{}
	}
	for i := range rows {
		if rows[i].Ports == nil {
			rows[i].Ports = []PortBinding{}
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rows)
}

// WriteStatusTable renders the status as an aligned table.
func WriteStatusTable(w io.Writer, rows []ServiceStatus) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tSTATE\tHEALTH\tPORTS\tIMAGE\tUPTIME\tRESTARTS")
	for _, r := range rows {
		health := r.Health
		if health == "" {
			health = "-"
		}
		uptime := "-"
		if r.StartedAt != nil {
			uptime = formatUptime(time.Duration(r.UptimeSec) * time.Second)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", r.Service, r.State, health, formatPorts(r.Ports), r.Image, uptime, r.Restarts)
	}
	return tw.Flush()
}

func formatPorts(ps []PortBinding) string {
	if len(ps) == 0 {
		return "-"
	}
	var parts []string
	for _, p := range ps {
		host := p.HostIP
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = ""
		} else {
			host += ":"
		}
		s := fmt.Sprintf("%s%d->%d/%s", host, p.HostPort, p.Target, p.Protocol)
		if !slices.Contains(parts, s) {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ",")
}

func formatUptime(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
