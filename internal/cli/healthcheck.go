package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/mozaiks/mozaiks/internal/app"
	"github.com/mozaiks/mozaiks/internal/uerr"
)

// HealthcheckOptions are the inputs of `mozaiks healthcheck`, the container's
// health probe: the image has no shell and no curl.
type HealthcheckOptions struct {
	IO      IO
	URL     string
	Timeout time.Duration
	Getenv  func(string) string
	// Mongo probes MONGO_URI from here (inside the runtime container, where
	// the compose network's names resolve) and prints the result as JSON:
	// how `mozaiks doctor` judges Mongo in a compose deployment.
	Mongo bool
	// LLM lists the models of OPENAI_BASE_URL (or LLMBaseURL) with
	// OPENAI_API_KEY from here and prints the answer as JSON.
	LLM        bool
	LLMBaseURL string
}

// NewCmdHealthcheck builds `mozaiks healthcheck`.
func NewCmdHealthcheck(stdio IO, runF func(context.Context, *HealthcheckOptions) error) *cobra.Command {
	opts := &HealthcheckOptions{IO: stdio, Getenv: os.Getenv}
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 if the local runtime is ready (GET /api/ready answers 200)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runHealthcheck(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.URL, "url", "", "URL to probe (default http://127.0.0.1:$PORT/api/ready, PORT default 8000; MOZAIKS_ADDR wins)")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", 3*time.Second, "give up after this long")
	cmd.Flags().BoolVar(&opts.Mongo, "mongo", false, "probe MONGO_URI instead (3 pings) and print the classified result as JSON")
	cmd.Flags().BoolVar(&opts.LLM, "llm", false, "list the LLM endpoint's models instead (OPENAI_BASE_URL, OPENAI_API_KEY) and print the answer as JSON")
	cmd.Flags().StringVar(&opts.LLMBaseURL, "llm-base-url", "", "with --llm: the base URL to try instead of OPENAI_BASE_URL")
	return cmd
}

func runMongoHealthcheck(ctx context.Context, opts *HealthcheckOptions) error {
	return app.ProbeMongo(ctx, opts.Getenv("MONGO_URI"), opts.Timeout, opts.IO.Out)
}

func runHealthcheck(ctx context.Context, opts *HealthcheckOptions) error {
	if opts.Timeout <= 0 {
		return uerr.Usage("--timeout must be positive")
	}
	if opts.Mongo {
		return runMongoHealthcheck(ctx, opts)
	}
	if opts.LLM {
		base := opts.LLMBaseURL
		if base == "" {
			base = opts.Getenv("OPENAI_BASE_URL")
		}
		if base == "" {
			base = "https://api.openai.com/v1"
		}
		return app.ProbeLLM(ctx, base, opts.Getenv("OPENAI_API_KEY"), opts.Timeout+7*time.Second, opts.IO.Out)
	}
	url := opts.URL
	if url == "" {
		url = "http://" + localAddr(opts.Getenv) + "/api/ready"
	}
	if opts.Timeout <= 0 {
		return uerr.Usage("--timeout must be positive")
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return uerr.Usage("invalid --url %q", url)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return uerr.Wrap(err, uerr.ExitFailed, "not ready: "+url+" did not answer within "+opts.Timeout.String(), "")
		}
		return uerr.Wrap(err, uerr.ExitFailed, "not ready: cannot reach "+url, "")
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return uerr.New(uerr.ExitFailed, fmt.Sprintf("not ready: %s answered %d", url, resp.StatusCode), "")
	}
	return nil
}

// localAddr is where `mozaiks serve` in this container listens, as its own
// configuration decides it: MOZAIKS_ADDR, else PORT, else 8000; a wildcard
// host is reached through loopback.
func localAddr(getenv func(string) string) string {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	host, port := "127.0.0.1", "8000"
	if p := getenv("PORT"); p != "" {
		port = p
	}
	if a := getenv("MOZAIKS_ADDR"); a != "" {
		if h, p, err := net.SplitHostPort(a); err == nil {
			if h != "" && h != "0.0.0.0" && h != "::" {
				host = h
			}
			if p != "" {
				port = p
			}
		}
	}
	return net.JoinHostPort(host, port)
}
