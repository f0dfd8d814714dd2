package bench

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// commandStats are Redis's per-command counters (INFO commandstats):
// calls and microseconds spent, by command name.
type commandStats map[string]commandStat

type commandStat struct {
	Calls int64
	Usec  int64
}

// readCommandStats reads INFO commandstats; nil when Redis does not tell.
func readCommandStats(ctx context.Context, rdb *redis.Client) commandStats {
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil
	}
	return parseCommandStats(info)
}

// parseCommandStats reads lines such as
// "cmdstat_hmget:calls=12,usec=34,usec_per_call=2.83,rejected_calls=0,failed_calls=0".
func parseCommandStats(info string) commandStats {
	out := commandStats{}
	for line := range strings.SplitSeq(info, "\n") {
		name, fields, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		var s commandStat
		for f := range strings.SplitSeq(fields, ",") {
			k, v, _ := strings.Cut(f, "=")
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				continue
			}
			switch k {
			case "calls":
				s.Calls = n
			case "usec":
				s.Usec = n
			}
		}
		out[strings.TrimPrefix(name, "cmdstat_")] = s
	}
	return out
}

// perEvent describes what Redis did between two readings, per event:
// "evalsha 1.02 calls 9.1 us, hmget 1.71 calls 2.9 us, ..." (most time
// first). Commands that scripts call count under their own name too, and
// in the script's time, as Redis counts them: the rows do not add up.
func (after commandStats) perEvent(before commandStats, events int) string {
	type row struct {
		name        string
		calls, usec float64
	}
	var rows []row
	for name, a := range after {
		b := before[name]
		if a.Calls == b.Calls || events == 0 || name == "info" { // info: the bench's own readings
			continue
		}
		rows = append(rows, row{name, float64(a.Calls-b.Calls) / float64(events), float64(a.Usec-b.Usec) / float64(events)})
	}
	if len(rows) == 0 {
		return "none"
	}
	slices.SortFunc(rows, func(a, b row) int {
		if a.usec != b.usec {
			if a.usec > b.usec {
				return -1
			}
			return 1
		}
		return strings.Compare(a.name, b.name)
	})
	parts := make([]string, 0, len(rows))
	for _, r := range rows {
		parts = append(parts, fmt.Sprintf("%s %.2f calls %.1f us", r.name, r.calls, r.usec))
	}
	return strings.Join(parts, ", ")
}

// dropKeys deletes every Redis key under prefix (a run's state, timers
// and queue).
func (b *bencher) dropKeys(ctx context.Context, prefix string) error {
	iter := b.rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == 1000 {
			if err := b.rdb.Unlink(ctx, batch...).Err(); err != nil {
				return fmt.Errorf("drop %s keys: %w", prefix, err)
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("drop %s keys: %w", prefix, err)
	}
	if len(batch) > 0 {
		return b.rdb.Unlink(ctx, batch...).Err()
	}
	return nil
}
