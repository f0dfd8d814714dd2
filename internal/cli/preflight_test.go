package cli

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cxstream/cxstream/internal/testenv"
)

// cx runs the command line as a user would and returns stdout and the
// error the process would print.
func cx(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := NewRoot(&out, &errOut)
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

var inputTopics = []string{"cx.clickstream.v1", "cx.chat.v1"}

func TestCheckReportsBrokersTopicsAndRedis(t *testing.T) {
	r := testenv.StartRedis(t)
	k := testenv.StartKafka(t, 3, "cx.clickstream.v1", "cx.chat.v1", "cx.alerts.v2", "cx.deadletter.v1", "cx.segments.v1")
	out, err := cx(t, "check", "--brokers", k.Brokers[0], "--redis", r.Addr)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"ok   kafka: 1 broker(s) reachable", "ok   topic cx.chat.v1: 3 partitions", "ok   topic cx.deadletter.v1: 3 partitions",
		"ok   redis: version ", "standalone", "ok   redis script", "ok   redis rights"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	// The probe leaves nothing behind.
	if keys := r.Client.Keys(context.Background(), "*").Val(); len(keys) != 0 {
		t.Errorf("check left keys: %v", keys)
	}
}

func TestCheckNamesMissingTopicsAndMismatchedPartitions(t *testing.T) {
	r := testenv.StartRedis(t)
	k := testenv.StartKafka(t, 3, "cx.clickstream.v1", "cx.alerts.v2")
	out, err := cx(t, "check", "--brokers", k.Brokers[0], "--redis", r.Addr)
	if err == nil {
		t.Fatalf("check passed with topics missing:\n%s", out)
	}
	for _, want := range []string{"topic cx.chat.v1 does not exist", "topic cx.deadletter.v1 does not exist", "topic cx.segments.v1 does not exist", "cxstream topics create"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	cl, _ := kgo.NewClient(kgo.SeedBrokers(k.Brokers...))
	defer cl.Close()
	_, err = kadm.NewClient(cl).CreateTopic(context.Background(), 5, 1, nil, "cx.chat.v1")
	testenv.Must(t, err, "create chat")
	_, err = kadm.NewClient(cl).CreateTopic(context.Background(), 3, 1, nil, "cx.deadletter.v1")
	testenv.Must(t, err, "create dead letters")
	_, err = kadm.NewClient(cl).CreateTopic(context.Background(), 3, 1, nil, "cx.segments.v1")
	testenv.Must(t, err, "create segments")
	out, err = cx(t, "check", "--brokers", k.Brokers[0], "--redis", r.Addr)
	if err == nil || !strings.Contains(out, "cx.clickstream.v1 has 3, cx.chat.v1 has 5") {
		t.Fatalf("partition mismatch not reported (%v):\n%s", err, out)
	}
}

func TestCheckProvesRedisRights(t *testing.T) {
	r := testenv.StartRedis(t)
	k := testenv.StartKafka(t, 1, "cx.clickstream.v1", "cx.chat.v1", "cx.alerts.v2", "cx.deadletter.v1", "cx.segments.v1")
	ctx := context.Background()
	// A user that may read and write but not run scripts.
	testenv.Must(t, r.Client.Do(ctx, "ACL", "SETUSER", "cx", "on", ">pw", "~*", "+@all", "-evalsha", "-eval", "-script").Err(), "acl")
	t.Setenv("CXSTREAM_REDIS_USERNAME", "cx")
	t.Setenv("CXSTREAM_REDIS_PASSWORD", "pw")
	out, err := cx(t, "check", "--brokers", k.Brokers[0], "--redis", r.Addr)
	if err == nil || !strings.Contains(out, "FAIL redis script") || !strings.Contains(out, "NOPERM") {
		t.Fatalf("missing rights not reported (%v):\n%s", err, out)
	}
}

func TestTopicsCreateIsIdempotentAndSatisfiesCheck(t *testing.T) {
	r := testenv.StartRedis(t)
	k := testenv.StartKafka(t, 1)
	out, err := cx(t, "topics", "create", "--brokers", k.Brokers[0], "--partitions", "4")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, topic := range []string{"cx.clickstream.v1", "cx.chat.v1", "cx.alerts.v2", "cx.deadletter.v1", "cx.segments.v1"} {
		if !strings.Contains(out, "created "+topic) {
			t.Errorf("%s not created:\n%s", topic, out)
		}
	}
	out, err = cx(t, "topics", "create", "--brokers", k.Brokers[0], "--partitions", "4")
	if err != nil || strings.Count(out, "exists ") != 5 {
		t.Fatalf("second create (%v):\n%s", err, out)
	}
	cl, _ := kgo.NewClient(kgo.SeedBrokers(k.Brokers...))
	defer cl.Close()
	cfgs, err := kadm.NewClient(cl).DescribeTopicConfigs(context.Background(), "cx.alerts.v2")
	testenv.Must(t, err, "describe")
	policy := ""
	for _, c := range cfgs[0].Configs {
		if c.Key == "cleanup.policy" {
			policy = c.MaybeValue()
		}
	}
	if policy != "compact,delete" {
		t.Errorf("alerts cleanup.policy %q", policy)
	}
	if out, err := cx(t, "check", "--brokers", k.Brokers[0], "--redis", r.Addr); err != nil {
		t.Fatalf("check after topics create: %v\n%s", err, out)
	}
}

// Defects 4 and 5: commands on missing topics hung or reported zeros, and
// run joined the group before finding out it could not work.
func TestCommandsNameTheMissingTopic(t *testing.T) {
	r := testenv.StartRedis(t)
	k := testenv.StartKafka(t, 1, "cx.clickstream.v1")
	for _, args := range [][]string{
		{"gen", "--count", "10"},
		{"tail", "-n", "1"},
		{"quality"},
		{"replay", "../../deployments/examples/segment-export-sample.jsonl", "--format", "segment", "--config", "../../deployments/examples/segment.cxstream.yaml"},
		{"run", "--http-addr", ""},
	} {
		_, err := cx(t, append(args, "--brokers", k.Brokers[0], "--redis", r.Addr)...)
		if err == nil || !strings.Contains(err.Error(), "topic cx.") || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("%v: got %v", args, err)
		}
	}
	// run did not join its group: no member ever held partitions.
	cl, _ := kgo.NewClient(kgo.SeedBrokers(k.Brokers...))
	defer cl.Close()
	groups, err := kadm.NewClient(cl).DescribeGroups(context.Background(), "cxstream")
	testenv.Must(t, err, "describe group")
	if g := groups["cxstream"]; len(g.Members) != 0 {
		t.Errorf("run joined the group: %+v", g.Members)
	}
}

func TestRunWithRedisDownNeverJoinsTheGroup(t *testing.T) {
	k := testenv.StartKafka(t, 1, "cx.clickstream.v1", "cx.chat.v1", "cx.alerts.v2", "cx.deadletter.v1", "cx.segments.v1")
	_, err := cx(t, "run", "--http-addr", "", "--brokers", k.Brokers[0], "--redis", fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)))
	if err == nil || !strings.Contains(err.Error(), "redis") || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("got %v", err)
	}
	cl, _ := kgo.NewClient(kgo.SeedBrokers(k.Brokers...))
	defer cl.Close()
	groups, err := kadm.NewClient(cl).DescribeGroups(context.Background(), "cxstream")
	testenv.Must(t, err, "describe group")
	if g := groups["cxstream"]; len(g.Members) != 0 {
		t.Errorf("run joined the group with Redis down: %+v", g.Members)
	}
}

func TestSmallCommandLineMistakesAreRejected(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"tail", "--type", "negative"}, `--type "negative" is not an alert type`},
		{[]string{"quality", "--window", "-1h"}, "--window must be positive"},
		{[]string{"funnel", "--by-hour", "-3"}, "--by-hour must not be negative"},
		{[]string{"topics", "create", "--partitions", "0"}, "--partitions must be at least 1"},
	} {
		_, err := cx(t, append(c.args, "--brokers", "127.0.0.1:1", "--redis", "127.0.0.1:1")...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want %q", c.args, err, c.want)
		}
	}
	if out, err := cx(t, "--version"); err != nil || !strings.Contains(out, "cxstream version") {
		t.Errorf("--version: %q %v", out, err)
	}
}
