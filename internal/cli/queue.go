package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cxstream/cxstream/internal/alertsink"
)

func newQueueCmd(g *globals) *cobra.Command {
	var (
		limit  int
		pop    bool
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "queue",
		Short: "Show the support priority queue (most urgent first), or pop its head",
		Example: `  cxstream queue              # the 20 most urgent conversations
  cxstream queue --pop --json # take the most urgent one, as an agent tool would`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			us, err := g.userStore(cmd)
			if err != nil {
				return err
			}
			defer us.close()
			cfg, q := us.cfg, us.queue
			out := cmd.OutOrStdout()
			if pop {
				a, ok, err := q.Pop(cmd.Context())
				if err != nil {
					return fmt.Errorf("redis at %v: %w", cfg.Redis.Addrs, err)
				}
				if !ok {
					return fmt.Errorf("the queue is empty")
				}
				if asJSON {
					return json.NewEncoder(out).Encode(a)
				}
				fmt.Fprintln(out, alertsink.OneLine(a))
				return nil
			}
			n, err := q.Len(cmd.Context())
			if err != nil {
				return fmt.Errorf("redis at %v: %w", cfg.Redis.Addrs, err)
			}
			alerts, err := q.List(cmd.Context(), limit)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(out).Encode(alerts)
			}
			fmt.Fprintf(out, "%d conversations waiting\n", n)
			for _, a := range alerts {
				fmt.Fprintln(out, alertsink.OneLine(a))
			}
			return nil
		},
	}
	cmd.Flags().IntVarP(&limit, "limit", "n", 20, "how many entries to show")
	cmd.Flags().BoolVar(&pop, "pop", false, "remove and print the most urgent entry")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print alert.v1 JSON")
	return cmd
}
