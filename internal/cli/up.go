//go:build !mozaiks_runtime

package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mozaiks/mozaiks/internal/install/stack"
)

// DockerFunc connects to the Docker engine lazily, so that `--help` and
// flag errors never dial it.
type DockerFunc func() (stack.Engine, error)

func newDocker() (stack.Engine, error) { return stack.NewDocker() }

// StackOptions are the flags every stack command shares.
type StackOptions struct {
	Dir         string
	File        string
	Prod        bool
	ProjectName string
}

func (o StackOptions) project() stack.ProjectOptions {
	return stack.ProjectOptions{Dir: o.Dir, File: o.File, Prod: o.Prod, Name: o.ProjectName}
}

// bindStackFlags binds the shared flags; fileShort is "" where -f means
// something else (logs --follow).
func bindStackFlags(fs *pflag.FlagSet, o *StackOptions, fileShort string) {
	fs.StringVar(&o.Dir, "dir", ".", "directory holding the compose file and .env")
	fs.StringVarP(&o.File, "file", fileShort, "", "compose file (default docker-compose.yml, or docker-compose.prod.yml with --prod)")
	fs.BoolVar(&o.Prod, "prod", false, "use docker-compose.prod.yml")
	fs.StringVarP(&o.ProjectName, "project-name", "p", "", "compose project name (default: name: in the file, or the directory name)")
}

// UpOptions are the inputs of `mozaiks up`.
type UpOptions struct {
	IO      IO
	Docker  DockerFunc
	Stack   StackOptions
	Pull    string
	Timeout time.Duration
	// AllowMismatch: start the file even where .env declares the other kind.
	AllowMismatch bool
}

// NewCmdUp builds `mozaiks up`.
func NewCmdUp(stdio IO, runF func(context.Context, *UpOptions) error) *cobra.Command {
	opts := &UpOptions{IO: stdio, Docker: newDocker}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start the compose stack through the Docker Engine API and wait until it is healthy",
		Long: `Start the services of docker-compose.yml (or --prod / -f FILE) without the docker
compose CLI: checks the engine and host ports first, pulls missing images, creates the
network and volumes, starts services in depends_on order and waits for their health
checks. Re-running changes only services whose configuration changed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runUp(cmd.Context(), opts)
		},
	}
	bindStackFlags(cmd.Flags(), &opts.Stack, "f")
	cmd.Flags().StringVar(&opts.Pull, "pull", stack.PullMissing, "when to pull images: missing, always or never")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", 3*time.Minute, "how long to wait for every service to be ready")
	cmd.Flags().BoolVar(&opts.AllowMismatch, "allow-mismatch", false,
		"start the dev file where .env says MOZAIKS_DEPLOYMENT=prod (or the prod file where it says dev)")
	return cmd
}

func runUp(ctx context.Context, opts *UpOptions) error {
	// Before dialling Docker: the refusal must not depend on the engine.
	if err := stack.CheckDeployment(opts.Stack.project(), opts.AllowMismatch); err != nil {
		return err
	}
	eng, err := opts.Docker()
	if err != nil {
		return err
	}
	res, err := stack.Up(ctx, eng, stack.UpOptions{
		Project: opts.Stack.project(), Pull: opts.Pull, Timeout: opts.Timeout, Err: opts.IO.Err,
		AllowMismatch: opts.AllowMismatch,
	})
	if err != nil {
		return err
	}
	rows, err := stack.Status(ctx, eng, stack.StatusOptions{Project: opts.Stack.project()}, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.Err, "project %s is up\n", res.Project)
	return stack.WriteStatusTable(opts.IO.Out, rows)
}

// DownOptions are the inputs of `mozaiks down`.
type DownOptions struct {
	IO      IO
	Docker  DockerFunc
	Stack   StackOptions
	Volumes bool
}

// NewCmdDown builds `mozaiks down`.
func NewCmdDown(stdio IO, runF func(context.Context, *DownOptions) error) *cobra.Command {
	opts := &DownOptions{IO: stdio, Docker: newDocker}
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop and remove the stack's containers and network (volumes with --volumes)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runDown(cmd.Context(), opts)
		},
	}
	bindStackFlags(cmd.Flags(), &opts.Stack, "f")
	cmd.Flags().BoolVarP(&opts.Volumes, "volumes", "v", false, "also remove named volumes: this deletes the data")
	return cmd
}

func runDown(ctx context.Context, opts *DownOptions) error {
	eng, err := opts.Docker()
	if err != nil {
		return err
	}
	return stack.Down(ctx, eng, stack.DownOptions{Project: opts.Stack.project(), Volumes: opts.Volumes, Err: opts.IO.Err})
}

// StatusOptions are the inputs of `mozaiks status`.
type StatusOptions struct {
	IO     IO
	Docker DockerFunc
	Stack  StackOptions
	JSON   bool
}

// NewCmdStatus builds `mozaiks status`.
func NewCmdStatus(stdio IO, runF func(context.Context, *StatusOptions) error) *cobra.Command {
	opts := &StatusOptions{IO: stdio, Docker: newDocker}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the stack's services: state, health, ports, image, uptime, restarts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runStatus(cmd.Context(), opts)
		},
	}
	bindStackFlags(cmd.Flags(), &opts.Stack, "f")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print as JSON")
	return cmd
}

func runStatus(ctx context.Context, opts *StatusOptions) error {
	eng, err := opts.Docker()
	if err != nil {
		return err
	}
	rows, err := stack.Status(ctx, eng, stack.StatusOptions{Project: opts.Stack.project()}, time.Now())
	if err != nil {
		return err
	}
	if opts.JSON {
		return stack.WriteStatusJSON(opts.IO.Out, rows)
	}
	return stack.WriteStatusTable(opts.IO.Out, rows)
}

// LogsOptions are the inputs of `mozaiks logs`.
type LogsOptions struct {
	IO         IO
	Docker     DockerFunc
	Stack      StackOptions
	Service    string
	Follow     bool
	Tail       string
	Timestamps bool
}

// NewCmdLogs builds `mozaiks logs`.
func NewCmdLogs(stdio IO, runF func(context.Context, *LogsOptions) error) *cobra.Command {
	opts := &LogsOptions{IO: stdio, Docker: newDocker}
	cmd := &cobra.Command{
		Use:   "logs [SERVICE]",
		Short: "Show (or follow) the stack's container logs, prefixed by service",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Service = args[0]
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runLogs(cmd.Context(), opts)
		},
	}
	// -f is --follow here, as in docker compose logs; the file is --file.
	bindStackFlags(cmd.Flags(), &opts.Stack, "")
	cmd.Flags().BoolVarP(&opts.Follow, "follow", "f", false, "keep streaming new log lines")
	cmd.Flags().StringVarP(&opts.Tail, "tail", "n", "all", "number of lines to show from the end of each log")
	cmd.Flags().BoolVarP(&opts.Timestamps, "timestamps", "t", false, "show timestamps")
	return cmd
}

func runLogs(ctx context.Context, opts *LogsOptions) error {
	eng, err := opts.Docker()
	if err != nil {
		return err
	}
	return stack.Logs(ctx, eng, stack.LogsOptions{
		Project: opts.Stack.project(), Service: opts.Service, Follow: opts.Follow,
		Tail: opts.Tail, Timestamps: opts.Timestamps, Out: opts.IO.Out,
	})
}
