package cli

import (
	"encoding/json"
	"os"
	"runtime/pprof"
	"time"

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
CPU seconds per million events with redis-server's CPU, RSS at start, peak and end), the
naive design (Redis round trips per event) on the same code path, event -> alert latency
(p50/p99/p99.9) at 20%, 50% and 80% of the measured throughput, and scaling with
partitions, users and chat share. --runs repeats the main figures and reports medians
with ranges. --peer kstreams runs cxstream and the Kafka Streams peer on the same
topics with a word-list scorer (cxstream twice: with all its processors, and with the
peer's work alone), checks that their funnel figures agree, and reports events/s and
events per CPU second for each. Each cxstream run also logs what Redis did per event.
cxstream runs with --config's settings (processing, funnels, segments...; default: the
defaults) on the bench's own topics and key prefix. A minute of live traffic (--warm-up)
comes first, so a just-started broker is past compiling its hot paths. --latency-at
measures latency alone at a given load, with the machine's CPU split between cxstream,
redis-server and the broker. test/bench/run.sh starts a local broker and redis-server
(pinned with --cpus) and runs it.`,
		Example: "  cxstream bench --brokers 127.0.0.1:9092 --redis 127.0.0.1:6379 --quick --json bench.json\n  cxstream bench --brokers 127.0.0.1:9092 --redis 127.0.0.1:6379 --quick --peer kstreams --cpus 0:1\n  cxstream bench --brokers 127.0.0.1:9092 --redis 127.0.0.1:6379 --latency-at 12000 --runs 3",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := g.load(cmd, nil)
			if err != nil {
				return err
			}
			o.Brokers, o.RedisAddr, o.Log, o.Config = cfg.Kafka.Brokers, cfg.Redis.Addrs[0], cmd.ErrOrStderr(), &cfg
			if o.WarmUp == 0 {
				o.WarmUp = -1 // --warm-up 0: none
			}
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
	f.BoolVar(&o.Quick, "quick", false, "a smaller run (a few minutes) with the same fields, one run by default")
	f.IntVar(&o.Runs, "runs", 0, "measure the main figures this many times and report the median and range (default 3; --quick 1)")
	f.StringVar(&o.CPUs, "cpus", "", "A:B pins cxstream, the peer and a local redis-server to cores A and this process's load generation to cores B (taskset lists, e.g. 0:1)")
	f.StringVar(&o.Peer, "peer", "", "also run this peer on the same topics and compare: kstreams (Kafka Streams, at_least_once and exactly_once_v2)")
	f.StringVar(&o.PeerDir, "peer-dir", "test/peers/kstreams", "the kstreams peer's Maven project (built with mvn when its jar is missing)")
	f.DurationVar(&o.WarmUp, "warm-up", time.Minute, "live traffic through cxstream before anything is measured, so a just-started broker is past compiling its hot paths (0: none)")
	f.Float64Var(&o.LatencyAt, "latency-at", 0, "measure only event -> alert latency at this offered load (events/s, at least 1,000), --runs times, with the CPU split between processes")
	f.StringVar(&jsonPath, "json", "", "also write the figures to this JSON file")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run (go tool pprof; -tagfocus phase=cxstream, =comparison, =latency... keeps one part)")
	return cmd
}
