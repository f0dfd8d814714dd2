// Package preflight checks, before a command starts work, that what the
// configuration names exists and can be used: the brokers, every topic with
// its partition count, Redis with its version, mode and the rights cxstream
// needs. `cxstream check` prints every check; `run` and the other commands
// stop before they join a group or produce anything, naming what failed.
package preflight

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cxstream/cxstream/internal/state"
)

// Check is the outcome of one check.
type Check struct {
	Name   string // what was checked, e.g. "topic cx.chat.v1"
	Detail string // what was found, for a passing check
	Err    error  // why it failed; nil when it passed
}

// Report is a list of checks in the order they ran.
type Report []Check

// Err joins the failed checks' errors, each after its check's name; nil
// when all passed.
func (r Report) Err() error {
	var errs []error
	for _, c := range r {
		if c.Err == nil {
			continue
		}
		// One line per problem, each naming its check.
		if joined, ok := c.Err.(interface{ Unwrap() []error }); ok {
			for _, e := range joined.Unwrap() {
				errs = append(errs, fmt.Errorf("%s: %w", c.Name, e))
			}
			continue
		}
		errs = append(errs, fmt.Errorf("%s: %w", c.Name, c.Err))
	}
	return errors.Join(errs...)
}

// Lines renders the report one line per check: "ok   name: detail" or
// "FAIL name: error".
func (r Report) Lines() []string {
	var out []string
	for _, c := range r {
		if c.Err == nil {
			out = append(out, fmt.Sprintf("ok   %s: %s", c.Name, c.Detail))
			continue
		}
		for _, line := range strings.Split(c.Err.Error(), "\n") {
			out = append(out, fmt.Sprintf("FAIL %s: %s", c.Name, line))
		}
	}
	return out
}

// ErrMissingTopic matches a *MissingTopicError.
var ErrMissingTopic = errors.New("topic does not exist")

// MissingTopicError names a topic the configuration needs that the
// cluster does not have.
type MissingTopicError struct{ Topic string }

func (e *MissingTopicError) Error() string {
	return fmt.Sprintf("topic %s does not exist (create the topics with `cxstream topics create`)", e.Topic)
}

// Is reports whether target is ErrMissingTopic.
func (e *MissingTopicError) Is(target error) bool { return target == ErrMissingTopic }

// ErrPartitionMismatch: the input topics have different partition counts,
// so a user's clicks and chats would be worked by different partitions.
var ErrPartitionMismatch = errors.New("input topics have different partition counts")

// Topics checks that every named topic exists and returns their partition
// counts. The error joins a *MissingTopicError per missing topic, or says
// why the cluster could not be asked.
func Topics(ctx context.Context, cl *kgo.Client, names ...string) (map[string]int, error) {
	names = slices.DeleteFunc(slices.Compact(slices.Sorted(slices.Values(names))), func(s string) bool { return s == "" })
	details, err := kadm.NewClient(cl).ListTopics(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	counts := make(map[string]int, len(names))
	var errs []error
	for _, name := range names {
		d, ok := details[name]
		switch {
		case !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition):
			errs = append(errs, &MissingTopicError{Topic: name})
		case d.Err != nil:
			errs = append(errs, fmt.Errorf("topic %s: %w", name, d.Err))
		default:
			counts[name] = len(d.Partitions)
		}
	}
	return counts, errors.Join(errs...)
}

// Need says which topics a command needs: Inputs must also have equal
// partition counts.
type Need struct {
	Inputs []string
	Others []string
}

// Kafka checks that the brokers answer and every needed topic exists,
// with equal partition counts across the inputs.
func Kafka(ctx context.Context, cl *kgo.Client, need Need) Report {
	var r Report
	brokers, err := kadm.NewClient(cl).ListBrokers(ctx)
	if err != nil {
		return append(r, Check{Name: "kafka", Err: fmt.Errorf("brokers unreachable: %w", err)})
	}
	hosts := make([]string, len(brokers))
	for i, b := range brokers {
		hosts[i] = fmt.Sprintf("%s:%d", b.Host, b.Port)
	}
	r = append(r, Check{Name: "kafka", Detail: fmt.Sprintf("%d broker(s) reachable: %s", len(brokers), strings.Join(hosts, ", "))})
	all := append(slices.Clone(need.Inputs), need.Others...)
	counts, err := Topics(ctx, cl, all...)
	for _, name := range all {
		if n, ok := counts[name]; ok {
			r = append(r, Check{Name: "topic " + name, Detail: fmt.Sprintf("%d partitions", n)})
		}
	}
	if err != nil {
		r = append(r, Check{Name: "kafka topics", Err: err})
		return r
	}
	var first int
	for i, name := range need.Inputs {
		if i == 0 {
			first = counts[name]
		} else if counts[name] != first {
			r = append(r, Check{Name: "input partitions", Err: fmt.Errorf("%w: %s has %d, %s has %d; a user's clicks and chats must land on partitions of the same number",
				ErrPartitionMismatch, need.Inputs[0], first, name, counts[name])})
		}
	}
	return r
}

// Redis checks that Redis answers, reports its version and mode, and
// proves the rights cxstream needs by running the state store's own
// operations (CAS script, timers, reads, erasure) on a probe user.
func Redis(ctx context.Context, rdb redis.UniversalClient, store *state.Store) Report {
	var r Report
	if err := rdb.Ping(ctx).Err(); err != nil {
		return append(r, Check{Name: "redis", Err: fmt.Errorf("unreachable: %w", err)})
	}
	info, err := rdb.Info(ctx, "server", "cluster").Result()
	if err != nil {
		r = append(r, Check{Name: "redis", Err: fmt.Errorf("INFO refused: %w", err)})
	} else {
		version, mode := infoField(info, "redis_version"), "standalone"
		if infoField(info, "cluster_enabled") == "1" {
			mode = "cluster"
		}
		if _, isCluster := rdb.(*redis.ClusterClient); isCluster != (mode == "cluster") {
			r = append(r, Check{Name: "redis mode", Err: fmt.Errorf("the server runs %s but redis.cluster/redis.addrs select the other client", mode)})
		}
		r = append(r, Check{Name: "redis", Detail: fmt.Sprintf("version %s, %s", version, mode)})
	}
	if err := store.Prepare(ctx); err != nil {
		return append(r, Check{Name: "redis script", Err: err})
	}
	r = append(r, Check{Name: "redis script", Detail: "state script loaded"})
	if err := store.Probe(ctx); err != nil {
		return append(r, Check{Name: "redis rights", Err: fmt.Errorf("%w (cxstream needs on its key prefix: evalsha, eval, script load, get, set, hmget, zadd, zrem, zrange, zcard, del, scan; and for the support queue and identity links: hset, hget, hdel, sadd, srem, smembers, expire)", err)})
	}
	return append(r, Check{Name: "redis rights", Detail: "read, write, script, timers and erasure work on a probe user"})
}

func infoField(info, key string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
