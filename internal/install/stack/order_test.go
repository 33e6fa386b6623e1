package stack

import (
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

func svc(name string, deps ...string) types.ServiceConfig {
	s := types.ServiceConfig{Name: name}
	if len(deps) > 0 {
		s.DependsOn = types.DependsOnConfig{}
		for _, d := range deps {
			s.DependsOn[d] = types.ServiceDependency{Condition: types.ServiceConditionHealthy, Required: true}
		}
	}
	return s
}

func services(ss ...types.ServiceConfig) types.Services {
	out := types.Services{}
	for _, s := range ss {
		out[s.Name] = s
	}
	return out
}

func TestStartOrder(t *testing.T) {
	t.Parallel()
	optional := svc("web", "cache")
	optional.DependsOn["cache"] = types.ServiceDependency{Condition: types.ServiceConditionStarted, Required: false}
	tests := []struct {
		name    string
		in      types.Services
		want    string
		wantErr string
	}{
		{"single", services(svc("a")), "a", ""},
		{"dev stack", services(svc("runtime", "mongo"), svc("mongo")), "mongo runtime", ""},
		{"chain against name order", services(svc("a", "b"), svc("b", "c"), svc("c")), "c b a", ""},
		{"diamond", services(svc("app", "db", "cache"), svc("db", "base"), svc("cache", "base"), svc("base")), "base cache db app", ""},
		{"independent by name", services(svc("z"), svc("m"), svc("a")), "a m z", ""},
		{"cycle", services(svc("a", "b"), svc("b", "c"), svc("c", "a")), "", "depends_on cycle: a -> b -> c -> a"},
		{"self cycle", services(svc("a", "a")), "", "depends_on cycle: a -> a"},
		{"unknown dependency", services(svc("a", "ghost")), "", "service a depends on unknown service ghost"},
		{"optional unknown dependency", services(optional), "web", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := StartOrder(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s := strings.Join(got, " "); s != tt.want {
				t.Fatalf("order = %q, want %q", s, tt.want)
			}
		})
	}
}
