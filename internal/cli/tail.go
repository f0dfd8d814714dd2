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
		asJSON, fromStart  bool
		types              []string
		minPriority, topic string
		count              int
	)
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Follow the alert topic: one line per alert (v2 or v1) or erasure, or the JSON",
		Long: `Follow the alert topic. Reads alert.v2 and alert.v1 messages (v1 shown
upgraded: score as sentiment or churn probability). An erasure tombstone
(null value, header cx-erasure: true) shows as one line whatever the
filters; a message that is not a valid alert shows as a line on stderr.`,
		Example: `  cxstream tail --min-priority HIGH
  cxstream tail --json --type churn_risk --from-beginning | jq .reasons
  cxstream tail --topic cx.alerts.v1 --from-beginning -n 20`,
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
			if topic == "" {
				topic = cfg.Topics.Alerts
			}
			v, err := schemas.NewValidator(0)
			if err != nil {
				return err
			}
			cl, err := newKafkaClient(cfg, log, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(start))
			if err != nil {
				return err
			}
			defer cl.Close()
			if err := requireTopics(cmd.Context(), cl, cfg, topic); err != nil {
				return err
			}
			out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
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
						if asJSON {
							line, _ := json.Marshal(map[string]any{"erasure": isErasure(r), "user_id": string(r.Key), "partition": r.Partition, "offset": r.Offset})
							fmt.Fprintln(out, string(line))
						} else {
							fmt.Fprintln(out, tombstoneLine(r))
						}
						if shown++; count > 0 && shown >= count {
							break
						}
						continue
					}
					a, err := v.DecodeAlert(r.Value)
					if err != nil {
						// Never quoted: the record may hold chat text.
						fmt.Fprintf(errOut, "skipped record %s/%d@%d: %v\n", r.Topic, r.Partition, r.Offset, err)
						continue
					}
					if (len(types) > 0 && !slices.Contains(types, a.Type)) || a.Priority.Rank() < min.Rank() {
						continue
					}
					if asJSON {
						fmt.Fprintln(out, strings.TrimSpace(string(r.Value))) // one JSON document per line
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
	f.BoolVar(&asJSON, "json", false, "print each alert as it is on the topic (alert.v2 or v1 JSON); erasures as {\"erasure\":true,...}")
	f.StringVar(&topic, "topic", "", "alert topic to read (default topics.alerts; e.g. cx.alerts.v1 for history)")
	f.BoolVar(&fromStart, "from-beginning", false, "start at the oldest alert instead of new ones")
	f.StringSliceVar(&types, "type", nil, "only these alert types (negative_chat, churn_risk, sla_breach)")
	f.StringVar(&minPriority, "min-priority", "", "only alerts of at least this priority")
	f.IntVarP(&count, "count", "n", 0, "exit after this many alerts (0: follow until Ctrl-C)")
	return cmd
}

func isErasure(r *kgo.Record) bool {
	for _, h := range r.Headers {
		if h.Key == "cx-erasure" {
			return string(h.Value) == "true"
		}
	}
	return false
}

// tombstoneLine shows a null-valued record: an erasure when it carries
// cx-erasure: true, otherwise a plain tombstone (compaction).
func tombstoneLine(r *kgo.Record) string {
	what, why := "tombstone", "null value without cx-erasure (compaction)"
	if isErasure(r) {
		what, why = "ERASED", "user erased: delete downstream copies of this user's alerts"
	}
	return fmt.Sprintf("%s %-6s %-13s %-12s | %s", r.Timestamp.Format("15:04:05"), "-", what, string(r.Key), why)
}
