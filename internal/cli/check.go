package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cxstream/cxstream/internal/runner"
)

// errChecksFailed: the report above the error says which.
var errChecksFailed = errors.New("some checks failed")

func newCheckCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Check Kafka, the topics and Redis with the configuration, one line each",
		Long: `check connects to Kafka and Redis as run would (TLS, SASL and ACL users included) and
reports, one line each: the brokers, every topic with its partition count (the two input
topics must have equal counts, so a user's clicks and chats stay together), Redis with its
version and mode, the state script, and the rights cxstream needs, proven by writing,
reading and erasing a probe user. It exits non-zero when any check fails; run performs the
same checks before it joins the consumer group.`,
		Example: "  cxstream check --config cxstream.yaml",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := g.load(cmd, nil)
			if err != nil {
				return err
			}
			report := runner.Check(cmd.Context(), cfg, log)
			for _, line := range report.Lines() {
				fmt.Fprintln(cmd.OutOrStdout(), line)
			}
			if report.Err() != nil {
				return errChecksFailed
			}
			return nil
		},
	}
}
