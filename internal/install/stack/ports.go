package stack

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	"github.com/mozaiks/mozaiks/internal/procnet"
	"github.com/mozaiks/mozaiks/internal/uerr"
)

// checkPorts makes sure every host port the project publishes is free
// before anything is created, and names what holds a busy one. Ports that
// this project's own containers publish are skipped: a re-run keeps or
// replaces those containers, which frees the port first.
func checkPorts(ctx context.Context, eng Engine, p *Project, own []Container) error {
	mine := map[string]bool{}
	for _, c := range own {
		for _, b := range c.Ports {
			mine[portKey(b.HostPort, b.Protocol)] = true
		}
	}
	var busy []publishedPort
	for _, name := range sortedKeys(p.Services) {
		ports, err := servicePorts(p.Services[name])
		if err != nil {
			return err
		}
		for i, pp := range ports {
			if pp.Host == 0 || mine[portKey(pp.Host, pp.Protocol)] {
				continue
			}
			if raw := p.rawPorts[name]; i < len(raw) {
				pp.Raw = raw[i]
			}
			if !portFree(pp) {
				busy = append(busy, pp)
			}
		}
	}
	if len(busy) == 0 {
		return nil
	}
	pp := busy[0]
	holder := portHolder(ctx, eng, pp)
	msg := fmt.Sprintf("port %d (service %s) is already in use by %s", pp.Host, pp.Service, holder)
	if len(busy) > 1 {
		var more []string
		for _, b := range busy[1:] {
			more = append(more, fmt.Sprintf("%d (service %s)", b.Host, b.Service))
		}
		msg += "; also busy: " + strings.Join(more, ", ")
	}
	return uerr.New(uerr.ExitFailed, msg, portHint(pp))
}

func portKey(port uint16, proto string) string {
	if proto == "" {
		proto = "tcp"
	}
	return strconv.Itoa(int(port)) + "/" + proto
}

// portFree tries to listen where the engine would publish.
func portFree(pp publishedPort) bool {
	addr := net.JoinHostPort(pp.HostIP, strconv.Itoa(int(pp.Host)))
	if pp.Protocol == "udp" {
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

func portHolder(ctx context.Context, eng Engine, pp publishedPort) string {
	if all, err := eng.ContainerList(ctx, nil); err == nil {
		for _, c := range all {
			for _, b := range c.Ports {
				if b.HostPort == pp.Host && strings.EqualFold(b.Protocol, pp.Protocol) {
					if proj := c.Labels[LabelProject]; proj != "" {
						return fmt.Sprintf("container %s (compose project %s)", c.Name, proj)
					}
					return "container " + c.Name
				}
			}
		}
	}
	if pp.Protocol == "tcp" {
		if who := procnet.PortHolder("/proc", int(pp.Host)); who != "" {
			return "process " + who
		}
	}
	return "another process"
}

var varRef = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)

// portHint names the setting that moves the port: the variable in the
// published part of the port mapping when there is one.
func portHint(pp publishedPort) string {
	published := pp.Raw
	if i := strings.LastIndex(published, ":"); i > 0 {
		published = published[:i]
	}
	if m := varRef.FindStringSubmatch(published); m != nil {
		return fmt.Sprintf("stop what holds it, or set %s in .env to a free port", m[1])
	}
	// Not a variable: editing the file would be undone by the next
	// `mozaiks init`, which derives the proxy's ports from the public URL.
	return fmt.Sprintf("stop what holds it, or move service %s: in files written by mozaiks init, re-run it with another port "+
		"in --public-url (the proxy) or --http-port (the runtime) rather than editing the compose file", pp.Service)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return sortedCopy(keys)
}
