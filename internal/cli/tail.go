package cli

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cxstream/cxstream/internal/alertsink"
	"github.com/cxstream/cxstream/schemas"
)

func newTailCmd(g *globals) *cobra.Command {
	var (
		asJSON, fromStart bool
		types             []string
		minPriority       string
		count             int
	)
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Follow the alert topic: one line per alert, or alert.v1 JSON",
		Example: `  cxstream tail --min-priority HIGH
  cxstream tail --json --type churn_risk --from-beginning | jq .reasons`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			min := schemas.Priority(strings.ToUpper(minPriority))
			if minPriority != "" && min.Rank() < 0 {
				return fmt.Errorf("--min-priority must be LOW, NORMAL, HIGH or URGENT, got %q", minPriority)
			}
			for _, typ := range types {
				if !slices.Contains(schemas.AlertTypes, typ) {
					return fmt.Errorf("--type %q is not an alert type; accepted: %s", typ, strings.Join(schemas.AlertTypes, ", "))
				}
			}
			if count < 0 {
				return fmt.Errorf("--count must not be negative, got %d", count)
			}
			start := kgo.NewOffset().AtEnd()
			if fromStart {
				start = kgo.NewOffset().AtStart()
			}
			cfg, log, err := g.load(cmd, nil)
			if err != nil {
				return err
			}
			cl, err := newKafkaClient(cfg, log, kgo.ConsumeTopics(cfg.Topics.Alerts), kgo.ConsumeResetOffset(start))
			if err != nil {
				return err
			}
			defer cl.Close()
			if err := requireTopics(cmd.Context(), cl, cfg, cfg.Topics.Alerts); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			shown := 0
			for count <= 0 || shown < count {
				fetches := cl.PollFetches(cmd.Context())
				if cmd.Context().Err() != nil {
					return nil
				}
				if err := fetches.Err0(); err != nil {
					return fmt.Errorf("kafka at %v: %w", cfg.Kafka.Brokers, err)
				}
				for _, r := range fetches.Records() {
					if r.Value == nil {
						continue // an erasure tombstone
					}
					var a schemas.Alert
					if json.Unmarshal(r.Value, &a) != nil {
						continue
					}
					if (len(types) > 0 && !slices.Contains(types, a.Type)) || a.Priority.Rank() < min.Rank() {
						continue
					}
					if asJSON {
						fmt.Fprintln(out, string(r.Value))
					} else {
						fmt.Fprintln(out, alertsink.OneLine(a))
					}
					if shown++; count > 0 && shown >= count {
						break
					}
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print each alert as alert.v1 JSON")
	f.BoolVar(&fromStart, "from-beginning", false, "start at the oldest alert instead of new ones")
	f.StringSliceVar(&types, "type", nil, "only these alert types (negative_chat, churn_risk)")
	f.StringVar(&minPriority, "min-priority", "", "only alerts of at least this priority")
	f.IntVarP(&count, "count", "n", 0, "exit after this many alerts (0: follow until Ctrl-C)")
	return cmd
}
