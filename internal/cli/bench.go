package cli

import (
	"encoding/json"
	"os"
	"runtime/pprof"

	"github.com/spf13/cobra"

	"github.com/cxstream/cxstream/internal/bench"
)

func newBenchCmd(g *globals) *cobra.Command {
	var (
		o          bench.Options
		jsonPath   string
		cpuProfile string
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure throughput, latency and scaling against a real Kafka and Redis, beside their ceilings",
		Long: `bench creates its own topics and key prefix on the given broker and Redis, and in one run
measures: the raw consume and pipelined Redis ceilings, cxstream end to end (events/s,
CPU seconds per million events, peak RSS), the naive design (Redis round trips per event)
on the same code path, event -> alert latency at 20% of the measured throughput, and
scaling with partitions, users and chat share. test/bench/run.sh starts a local broker
and redis-server and runs it.`,
		Example: "  cxstream bench --brokers 127.0.0.1:9092 --redis 127.0.0.1:6379 --quick --json bench.json",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := g.load(cmd, nil)
			if err != nil {
				return err
			}
			o.Brokers, o.RedisAddr, o.Log = cfg.Kafka.Brokers, cfg.Redis.Addrs[0], cmd.ErrOrStderr()
			tuneGC() // as `cxstream run` does
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			res, err := bench.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			bench.Print(cmd.OutOrStdout(), res)
			if jsonPath != "" {
				b, _ := json.MarshalIndent(res, "", "  ")
				return os.WriteFile(jsonPath, append(b, '\n'), 0o644)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Events, "events", 0, "events in the main run (default 1,000,000; --quick 200,000)")
	f.IntVar(&o.Users, "users", 0, "distinct users in the main run (default 100,000)")
	f.IntVar(&o.Partitions, "partitions", 0, "partitions of the input topics (default 4)")
	f.Float64Var(&o.ChatShare, "chat-share", 0, "share of chat messages (default 0.15)")
	f.BoolVar(&o.Quick, "quick", false, "a smaller run (under 2 minutes) with the same fields")
	f.StringVar(&jsonPath, "json", "", "also write the figures to this JSON file")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run (go tool pprof)")
	return cmd
}
