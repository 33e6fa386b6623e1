//go:build !mozaiks_runtime

package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mozaiks/mozaiks/internal/install/stack"
	"github.com/mozaiks/mozaiks/internal/uerr"
)

func TestStackCommandsParseFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, got any)
	}{
		{"up", []string{"up", "--dir", "/srv/m", "-f", "c.yml", "--pull", "never", "--timeout", "30s", "-p", "proj"}, func(t *testing.T, got any) {
			o := got.(*UpOptions)
			if o.Stack != (StackOptions{Dir: "/srv/m", File: "c.yml", ProjectName: "proj"}) || o.Pull != "never" || o.Timeout != 30*time.Second {
				t.Errorf("up options = %+v", o)
			}
		}},
		{"up defaults", []string{"up", "--prod"}, func(t *testing.T, got any) {
			o := got.(*UpOptions)
			if o.Stack != (StackOptions{Dir: ".", Prod: true}) || o.Pull != stack.PullMissing || o.Timeout != 3*time.Minute {
				t.Errorf("up options = %+v", o)
			}
		}},
		{"down", []string{"down", "--volumes"}, func(t *testing.T, got any) {
			if o := got.(*DownOptions); !o.Volumes {
				t.Errorf("down options = %+v", o)
			}
		}},
		{"status", []string{"status", "--json", "-f", "x.yml"}, func(t *testing.T, got any) {
			if o := got.(*StatusOptions); !o.JSON || o.Stack.File != "x.yml" {
				t.Errorf("status options = %+v", o)
			}
		}},
		{"logs: -f is follow, --file the file", []string{"logs", "runtime", "-f", "--tail", "20", "--timestamps", "--file", "y.yml"}, func(t *testing.T, got any) {
			o := got.(*LogsOptions)
			if o.Service != "runtime" || !o.Follow || o.Tail != "20" || !o.Timestamps || o.Stack.File != "y.yml" {
				t.Errorf("logs options = %+v", o)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got any
			stdio := IO{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}
			capture := func(_ context.Context, o any) error { got = o; return nil }
			cmds := map[string]func() error{
				"up": func() error {
					c := NewCmdUp(stdio, func(ctx context.Context, o *UpOptions) error { return capture(ctx, o) })
					c.SetArgs(tt.args[1:])
					return c.Execute()
				},
				"down": func() error {
					c := NewCmdDown(stdio, func(ctx context.Context, o *DownOptions) error { return capture(ctx, o) })
					c.SetArgs(tt.args[1:])
					return c.Execute()
				},
				"status": func() error {
					c := NewCmdStatus(stdio, func(ctx context.Context, o *StatusOptions) error { return capture(ctx, o) })
					c.SetArgs(tt.args[1:])
					return c.Execute()
				},
				"logs": func() error {
					c := NewCmdLogs(stdio, func(ctx context.Context, o *LogsOptions) error { return capture(ctx, o) })
					c.SetArgs(tt.args[1:])
					return c.Execute()
				},
			}
			if err := cmds[tt.args[0]](); err != nil {
				t.Fatal(err)
			}
			tt.check(t, got)
		})
	}
}

// TestStackHelpNeverDialsDocker: the Docker client is a lazy func that
// --help must not call.
func TestStackHelpNeverDialsDocker(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"up", "down", "status", "logs"} {
		var out bytes.Buffer
		root := NewRootCmd(IO{Out: &out, Err: &out})
		root.SetArgs([]string{name, "--help"})
		if err := root.Execute(); err != nil {
			t.Fatalf("%s --help: %v", name, err)
		}
		if !bytes.Contains(out.Bytes(), []byte("--dir")) {
			t.Errorf("%s --help output lacks --dir:\n%s", name, out.String())
		}
	}
	dialled := errors.New("dialled")
	opts := &UpOptions{IO: IO{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}, Docker: func() (stack.Engine, error) { return nil, dialled }}
	if err := runUp(context.Background(), opts); !errors.Is(err, dialled) {
		t.Fatalf("runUp did not go through the Docker func: %v", err)
	}
}

// TestUpEngineDownExit4 goes through Main: no engine is exit 4 with a hint.
func TestUpEngineDownExit4(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte("services:\n  web:\n    image: nginx\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(dir, "dead.sock"))
	for _, cmd := range []string{"up", "down", "status", "logs"} {
		var out, errOut bytes.Buffer
		code := Main(context.Background(), []string{cmd, "--dir", dir}, IO{In: strings.NewReader(""), Out: &out, Err: &errOut})
		if code != uerr.ExitPrerequisite || !strings.Contains(errOut.String(), "Hint: start Docker") {
			t.Errorf("%s: exit %d, stderr %q; want 4 with a start-Docker hint", cmd, code, errOut.String())
		}
	}
}
