package cli

import (
	"github.com/spf13/cobra"

	"github.com/cxstream/cxstream/internal/api"
	"github.com/cxstream/cxstream/internal/config"
)

func newAPICmd(g *globals) *cobra.Command {
	var (
		addr  string
		noSLA bool
	)
	cmd := &cobra.Command{
		Use:   "api",
		Short: "HTTP API and web console for agents and analysts: queue, user views, funnels, live alerts, erasure",
		Long: `api serves the support queue (list, claim, extend, resolve, release), user views, the funnel
report, the alert stream (Server-Sent Events from the alert topic) and erasure over HTTP, described
by schemas/openapi.v1.yaml, with the web console at /. Tokens are configured under api.tokens as
SHA-256 hashes with a role (agent, analyst, admin). Every read of a user's data goes to the audit
log (logger "audit"). It also runs the queue's SLA watcher unless --no-sla.`,
		Example: `  cxstream api --config deployments/cxstream.example.yaml --addr :8080
  curl -H "Authorization: Bearer $TOKEN" localhost:8080/v1/queue`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := g.load(cmd, func(c *config.Config) {
				if addr != "" {
					c.API.Addr = addr
				}
			})
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			app, err := api.Assemble(cfg, log, api.AppOptions{NoSLA: noSLA})
			if err != nil {
				return err
			}
			if err := app.CheckConnections(cmd.Context()); err != nil {
				app.Close()
				return err
			}
			if len(cfg.API.Tokens) == 0 {
				log.Warn("no api.tokens configured: every /v1 route answers 401")
			}
			return app.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "", "listen address (overrides api.addr)")
	cmd.Flags().BoolVar(&noSLA, "no-sla", false, "do not run the SLA watcher here (cxstream run has one)")
	return cmd
}
