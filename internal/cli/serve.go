package cli

import (
	"context"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mozaiks/mozaiks/internal/app"
	"github.com/mozaiks/mozaiks/internal/config"
	"github.com/mozaiks/mozaiks/internal/uerr"
)

// ServeOptions are the inputs of `mozaiks serve`.
type ServeOptions struct {
	IO         IO
	Flags      *pflag.FlagSet
	ConfigFile string
}

// NewCmdServe builds `mozaiks serve`.
func NewCmdServe(stdio IO, runF func(context.Context, *ServeOptions) error) *cobra.Command {
	opts := &ServeOptions{IO: stdio}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the runtime: HTTP + WebSocket server",
		Long: `Run the runtime. Without MONGO_URI it uses the embedded store (SQLite in --data-dir).
Settings come from flags, then the environment, then .env in the working directory,
then --config, then defaults.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Flags = cmd.Flags()
			opts.ConfigFile, _ = cmd.Flags().GetString("config")
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runServe(cmd.Context(), opts)
		},
	}
	config.BindFlags(cmd.Flags(), "port", "addr", "mongo_uri", "data_dir", "workflows_path", "default_app_id", "cors_origins",
		"openai_api_key", "openai_base_url", "default_llm_model", "llm_provider", "log_format", "log_level", "auth_enabled", "shutdown_timeout", "run_lease",
		"llm_first_byte_timeout", "llm_idle_timeout", "llm_timeout", "console")
	return cmd
}

func runServe(ctx context.Context, opts *ServeOptions) error {
	cfg, err := config.Load(config.LoadOptions{Flags: opts.Flags, ConfigFile: opts.ConfigFile})
	if err != nil {
		return uerr.Wrap(err, uerr.ExitUsage, err.Error(), "fix the setting named above (flag, environment, .env or --config)")
	}
	return app.Run(ctx, cfg, app.Options{Stderr: opts.IO.Err})
}
