package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/cxstream/cxstream/internal/metrics"
	"github.com/cxstream/cxstream/internal/testenv"
)

// Defect 12: a lost partition (session expired, fenced) was committed like
// a revoked one, though another member may already own it and have
// committed further. Lost commits nothing; revoked commits what is marked.
func TestLostPartitionsAreNotCommitted(t *testing.T) {
	k := testenv.StartKafka(t, 1, "in")
	ctx := context.Background()
	prod, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...))
	testenv.Must(t, err, "producer")
	defer prod.Close()
	testenv.Must(t, prod.ProduceSync(ctx, &kgo.Record{Topic: "in", Value: []byte("x")}).FirstErr(), "produce")

	c := NewConsumer(nil, ConsumerOptions{CommitInterval: time.Hour}, zap.NewNop(), metrics.New())
	cl, err := kgo.NewClient(append(c.GroupOpts(), kgo.SeedBrokers(k.Brokers...), kgo.ConsumerGroup("g"), kgo.ConsumeTopics("in"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	testenv.Must(t, err, "consumer")
	defer cl.Close()
	pollCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	recs := cl.PollFetches(pollCtx).Records()
	if len(recs) != 1 {
		t.Fatalf("polled %d records", len(recs))
	}
	cl.MarkCommitRecords(recs[0])

	committed := func() int64 {
		offsets, err := kadm.NewClient(prod).FetchOffsets(ctx, "g")
		testenv.Must(t, err, "fetch offsets")
		o, ok := offsets.Lookup("in", 0)
		if !ok {
			return -1
		}
		return o.At
	}
	c.lost(ctx, cl, map[string][]int32{"in": {0}})
	if at := committed(); at != -1 {
		t.Fatalf("a lost partition was committed at %d", at)
	}
	c.revoked(ctx, cl, map[string][]int32{"in": {0}})
	if at := committed(); at != 1 {
		t.Fatalf("a revoked partition's marked offset was not committed: %d", at)
	}
}
