package stack

import (
	"fmt"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/mozaiks/mozaiks/internal/uerr"
)

// StartOrder sorts services so each comes after everything it depends_on,
// ties broken by name so runs are reproducible. A cycle or a dependency on an
// unknown service is an error naming the services involved.
func StartOrder(services types.Services) ([]string, error) {
	names := make([]string, 0, len(services))
	for n := range services {
		names = append(names, n)
	}
	slices.Sort(names)
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[string]int{}
	var order []string
	var visit func(n string, path []string) error
	visit = func(n string, path []string) error {
		switch state[n] {
		case done:
			return nil
		case visiting:
			i := slices.Index(path, n)
			cycle := append(slices.Clone(path[i:]), n)
			return uerr.New(uerr.ExitFailed, "depends_on cycle: "+strings.Join(cycle, " -> "), "remove one of these depends_on entries")
		}
		state[n] = visiting
		deps := make([]string, 0, len(services[n].DependsOn))
		for d := range services[n].DependsOn {
			deps = append(deps, d)
		}
		slices.Sort(deps)
		for _, d := range deps {
			if _, ok := services[d]; !ok {
				if !services[n].DependsOn[d].Required {
					continue
				}
				return uerr.New(uerr.ExitFailed, fmt.Sprintf("service %s depends on unknown service %s", n, d), "fix depends_on in the compose file")
			}
			if err := visit(d, append(path, n)); err != nil {
				return err
			}
		}
		state[n] = done
		order = append(order, n)
		return nil
	}
	for _, n := range names {
		if err := visit(n, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}
