// Package cli defines the cxstream command line: one file per subcommand,
// each a thin layer over the internal packages.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/cxstream/cxstream/internal/config"
	"github.com/cxstream/cxstream/internal/preflight"
	"github.com/cxstream/cxstream/internal/runner"
	"github.com/cxstream/cxstream/internal/state"
	"github.com/cxstream/cxstream/internal/version"
)

// globals are the flags every subcommand shares.
type globals struct {
	configPath string
	logLevel   string
	logFormat  string
	brokers    []string
	redisAddrs []string
}

// Execute runs the command line and returns the process exit code.
func Execute() int {
	root := NewRoot(os.Stdout, os.Stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := root.ExecuteContext(ctx); err != nil {
		// One line per problem, each naming its culprit.
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintln(os.Stderr, "cxstream:", line)
		}
		return 1
	}
	return 0
}

// NewRoot builds the command tree writing to out and errOut.
func NewRoot(out, errOut io.Writer) *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "cxstream",
		Short:         "Real-time customer-interaction stream processor",
		Long:          "cxstream reads clickstream and support-chat events from Kafka, keeps per-user funnel, sentiment and churn state in Redis, and emits negative-chat and churn-risk alerts.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.String(),
	}
	root.SetOut(out)
	root.SetErr(errOut)
	pf := root.PersistentFlags()
	pf.StringVarP(&g.configPath, "config", "c", "", "YAML config file (env CXSTREAM_* and flags override it)")
	pf.StringVar(&g.logLevel, "log-level", "", "log level: debug, info, warn, error")
	pf.StringVar(&g.logFormat, "log-format", "", "log format: json or console")
	pf.StringSliceVar(&g.brokers, "brokers", nil, "Kafka bootstrap brokers, host:port (overrides kafka.brokers)")
	pf.StringSliceVar(&g.redisAddrs, "redis", nil, "Redis address(es), host:port (overrides redis.addrs)")
	root.AddCommand(newRunCmd(g), newDemoCmd(g), newGenCmd(g), newSentimentCmd(), newUserCmd(g), newForgetCmd(g), newQueueCmd(g), newSentimentEvalCmd(), newFunnelCmd(g), newQualityCmd(g), newTailCmd(g), newReplayCmd(g), newBenchCmd(g), newCheckCmd(g), newTopicsCmd(g), newCollectCmd(g), newAPICmd(g), newDeliverCmd(g), newSegmentsCmd(g))
	return root
}

// load reads the config and applies the global flags over it.
func (g *globals) load(cmd *cobra.Command, override func(*config.Config)) (config.Config, *zap.Logger, error) {
	// A file or variable that cannot be applied stops the command: it
	// never runs with a half-applied configuration. Validation comes
	// after the flags, which may still fix a value.
	cfg, err := config.Read(g.configPath, os.Environ())
	if err != nil {
		return cfg, nil, err
	}
	if len(g.brokers) > 0 {
		cfg.Kafka.Brokers = g.brokers
	}
	if len(g.redisAddrs) > 0 {
		cfg.Redis.Addrs = g.redisAddrs
	}
	if g.logLevel != "" {
		cfg.Log.Level = g.logLevel
	}
	if g.logFormat != "" {
		cfg.Log.Format = g.logFormat
	}
	if override != nil {
		override(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, nil, err
	}
	log, err := config.NewLogger(cfg.Log)
	if err == nil {
		state.RouteClientLogs(log.Named("redis"))
	}
	return cfg, log, err
}

// kafkaClient loads the config and returns a Kafka client with its
// connection, TLS and SASL settings plus extra.
func (g *globals) kafkaClient(cmd *cobra.Command, extra ...kgo.Opt) (*kgo.Client, config.Config, error) {
	cfg, log, err := g.load(cmd, nil)
	if err != nil {
		return nil, cfg, err
	}
	cl, err := newKafkaClient(cfg, log, extra...)
	return cl, cfg, err
}

// newKafkaClient returns a Kafka client for a loaded config.
func newKafkaClient(cfg config.Config, log *zap.Logger, extra ...kgo.Opt) (*kgo.Client, error) {
	opts, err := runner.KafkaOpts(cfg.Kafka, log)
	if err != nil {
		return nil, err
	}
	return kgo.NewClient(append(opts, extra...)...)
}

// requireTopics fails, naming every missing topic, before a command
// produces to or consumes from topics that do not exist (a consumer of a
// missing topic would wait forever; a producer would fail every record).
func requireTopics(ctx context.Context, cl *kgo.Client, cfg config.Config, names ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := preflight.Topics(ctx, cl, names...); err != nil {
		if errors.Is(err, preflight.ErrMissingTopic) {
			return err
		}
		return fmt.Errorf("kafka at %v: %w", cfg.Kafka.Brokers, err)
	}
	return nil
}
