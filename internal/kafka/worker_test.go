package kafka

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/cxstream/cxstream/internal/metrics"
	"github.com/cxstream/cxstream/internal/testenv"
)

// timeOf reads the test records' value: their event time.
func timeOf(r *kgo.Record) int64 {
	n, _ := strconv.ParseInt(string(r.Value), 10, 64)
	return n
}

// consume runs a consumer over topics until want records were made
// durable, and returns them in the order the batch function saw them.
func consume(t *testing.T, brokers []string, topics []string, opts ConsumerOptions, want int) []*kgo.Record {
	t.Helper()
	handed, stop := startConsuming(t, brokers, topics, opts, metrics.New())
	defer stop()
	return waitHanded(t, handed, want)
}

// startConsuming runs a consumer over topics until stop; handed returns
// the records made durable so far, in the order the batch function saw
// them.
func startConsuming(t *testing.T, brokers []string, topics []string, opts ConsumerOptions, m *metrics.Metrics) (handed func() []*kgo.Record, stop func()) {
	t.Helper()
	return startConsumingWith(t, brokers, topics, opts, m, func([]*kgo.Record) {})
}

// startConsumingWith is startConsuming that calls process with each batch
// before it counts as handed over.
func startConsumingWith(t *testing.T, brokers []string, topics []string, opts ConsumerOptions, m *metrics.Metrics, process func([]*kgo.Record)) (handed func() []*kgo.Record, stop func()) {
	t.Helper()
	var mu sync.Mutex
	var got []*kgo.Record
	opts.Topics, opts.Time = topics, timeOf
	c := NewConsumer(func(_ context.Context, recs []*kgo.Record) error {
		process(recs)
		mu.Lock()
		defer mu.Unlock()
		got = append(got, recs...)
		return nil
	}, opts, zap.NewNop(), m)
	cl, err := kgo.NewClient(append(c.GroupOpts(), kgo.SeedBrokers(brokers...), kgo.ConsumerGroup("g"), kgo.ConsumeTopics(topics...),
		kgo.FetchMaxPartitionBytes(200))...) // small fetches: the topics arrive in many pieces
	testenv.Must(t, err, "consumer")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, cl) }()
	handed = func() []*kgo.Record {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
	return handed, func() { cancel(); <-done }
}

// waitHanded waits until want records were handed over and returns them.
func waitHanded(t *testing.T, handed func() []*kgo.Record, want int) []*kgo.Record {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, fmt.Sprintf("%d records", want), func() bool { return len(handed()) >= want })
	return handed()
}

func produceTimes(t *testing.T, brokers []string, topic string, times ...int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	testenv.Must(t, err, "producer")
	defer cl.Close()
	var recs []*kgo.Record
	for _, at := range times {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: 0, Value: []byte(strconv.FormatInt(at, 10))})
	}
	testenv.Must(t, cl.ProduceSync(context.Background(), recs...).FirstErr(), "produce")
}

// A backfill of two topics is handed over in event-time order, however
// the fetches cut them: the sparse topic (a record every 7 ms of event
// time) does not run ahead of the dense one (every 1 ms), and equal times
// go in topic order.
func TestTwoTopicsAreMergedByEventTime(t *testing.T) {
	k := testenv.StartKafka(t, 1, "clicks", "chats")
	var clicks, chats []int64
	for at := int64(1); at <= 700; at++ {
		clicks = append(clicks, at)
		if at%7 == 0 {
			chats = append(chats, at)
		}
	}
	produceTimes(t, k.Brokers, "chats", chats...)
	produceTimes(t, k.Brokers, "clicks", clicks...)
	got := consume(t, k.Brokers, []string{"clicks", "chats"}, ConsumerOptions{MaxPollRecords: 13}, len(clicks)+len(chats))

	var order []string
	for _, r := range got {
		order = append(order, r.Topic+"@"+string(r.Value))
	}
	sorted := slices.IsSortedFunc(got, func(a, b *kgo.Record) int {
		if d := timeOf(a) - timeOf(b); d != 0 {
			return int(d)
		}
		if a.Topic == b.Topic {
			return 0
		}
		if a.Topic == "clicks" {
			return -1
		}
		return 1
	})
	if !sorted {
		t.Fatalf("records not in event-time order: %v", order)
	}
}

// A chat written after align_wait has passed is merged after the later
// clicks that went on without it, and cx_stream_merge_inversions_total
// counts it: the operator's sign to raise align_wait. So is a click as
// late as a chat already handed over (clicks go first on equal times).
// Records that met in time count nothing, nor does a record without an
// event time (one bound for the dead-letter topic).
func TestARecordLaterThanAlignWaitIsCountedAsAnInversion(t *testing.T) {
	k := testenv.StartKafka(t, 1, "clicks", "chats")
	m := metrics.New()
	handed, stop := startConsuming(t, k.Brokers, []string{"clicks", "chats"}, ConsumerOptions{AlignWait: 50 * time.Millisecond}, m)
	defer stop()
	produceTimes(t, k.Brokers, "chats", 5)
	produceTimes(t, k.Brokers, "clicks", 10, 20, 30)
	waitHanded(t, handed, 4)
	if n := exposed(t, m, "cx_stream_merge_inversions_total"); n != 0 {
		t.Fatalf("%v inversions counted for records that met in time", n)
	}

	produceTimes(t, k.Brokers, "chats", 15) // later than align_wait, earlier than two clicks handed over
	got := waitHanded(t, handed, 5)
	if last := got[4]; last.Topic != "chats" || timeOf(last) != 15 {
		t.Fatalf("last record handed over: %s@%d, want the late chat", last.Topic, timeOf(last))
	}
	if n := exposed(t, m, "cx_stream_merge_inversions_total"); n != 1 {
		t.Fatalf("cx_stream_merge_inversions_total = %v after a late chat, want 1", n)
	}

	produceTimes(t, k.Brokers, "chats", 40)
	waitHanded(t, handed, 6)
	produceTimes(t, k.Brokers, "clicks", 40) // as late as the chat: it should have gone first
	produceTimes(t, k.Brokers, "clicks", 0)  // no event time, as an undecodable record
	waitHanded(t, handed, 8)
	if n := exposed(t, m, "cx_stream_merge_inversions_total"); n != 2 {
		t.Fatalf("cx_stream_merge_inversions_total = %v after a click as late as a handed chat and a record without a time, want 2", n)
	}
}

// Records fetched while their partition's batch before is running wait
// in the worker's queue for it, and records held for the other topic wait
// in the merge: cx_consumer_wait_seconds shows each stage apart.
func TestTheConsumerWaitIsMeasuredByStage(t *testing.T) {
	const held = 500 * time.Millisecond
	k := testenv.StartKafka(t, 1, "clicks", "chats")
	m := metrics.New()
	entered, release := make(chan struct{}, 1), make(chan struct{})
	first := true
	handed, stop := startConsumingWith(t, k.Brokers, []string{"clicks"}, ConsumerOptions{}, m, func([]*kgo.Record) {
		if first { // only the worker goroutine calls this
			first = false
			entered <- struct{}{}
			<-release
		}
	})
	produceTimes(t, k.Brokers, "clicks", 1)
	<-entered
	produceTimes(t, k.Brokers, "clicks", 2, 3) // fetched while the first batch runs
	time.Sleep(held)
	close(release)
	waitHanded(t, handed, 3)
	stop()
	if w := waits(t, m, "queued"); w.n != 3 || w.sum < held.Seconds() {
		t.Fatalf("queued stage: %d records waited %.3f s in all, want 3, and the two behind the first batch about %s each", w.n, w.sum, held)
	}
	if w := waits(t, m, "merge"); w.n != 3 || w.sum > 0.1 {
		t.Fatalf("merge stage: %d records waited %.3f s in all, want 3 and next to nothing: one topic, nothing to merge", w.n, w.sum)
	}

	const align = 300 * time.Millisecond
	m = metrics.New()
	handed, stop = startConsuming(t, k.Brokers, []string{"clicks", "chats"}, ConsumerOptions{AlignWait: align}, m)
	defer stop()
	produceTimes(t, k.Brokers, "chats", 5) // the group goes on after the clicks above
	waitHanded(t, handed, 1)               // held for align_wait: a click as early could still come
	produceTimes(t, k.Brokers, "clicks", 10, 20)
	waitHanded(t, handed, 3) // held for align_wait: a chat as early could still come
	if w := waits(t, m, "merge"); w.n != 3 || w.under256ms != 0 {
		t.Fatalf("merge stage: %d records, %d of them waited less than 256 ms; want 3, each held about %s", w.n, w.under256ms, align)
	}
}

type stageWaits struct {
	n, under256ms uint64
	sum           float64
}

// waits reads cx_consumer_wait_seconds{stage}.
func waits(t *testing.T, m *metrics.Metrics, stage string) stageWaits {
	t.Helper()
	for _, s := range series(t, m, "cx_consumer_wait_seconds") {
		if s.GetLabel()[0].GetValue() != stage {
			continue
		}
		h := s.GetHistogram()
		w := stageWaits{n: h.GetSampleCount(), sum: h.GetSampleSum()}
		for _, b := range h.GetBucket() {
			if math.Abs(b.GetUpperBound()-0.256) < 1e-9 {
				w.under256ms = b.GetCumulativeCount()
			}
		}
		return w
	}
	return stageWaits{}
}

// exposed is a counter's value as /metrics shows it, by name.
func exposed(t *testing.T, m *metrics.Metrics, name string) float64 {
	t.Helper()
	total := 0.0
	for _, c := range series(t, m, name) {
		total += c.GetCounter().GetValue()
	}
	return total
}

// series are the series of a metric as /metrics shows them, by name.
func series(t *testing.T, m *metrics.Metrics, name string) []*dto.Metric {
	t.Helper()
	mfs, err := m.Registry.Gather()
	testenv.Must(t, err, "gather")
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()
		}
	}
	t.Fatalf("%s is not exposed", name)
	return nil
}

// A topic with nothing to read does not hold the other back: records of a
// clickstream with an empty chat topic are all handled, at once.
func TestAnEmptyTopicHoldsNothingBack(t *testing.T) {
	k := testenv.StartKafka(t, 1, "clicks", "chats")
	produceTimes(t, k.Brokers, "clicks", 1, 2, 3)
	got := consume(t, k.Brokers, []string{"clicks", "chats"}, ConsumerOptions{MaxAlignWait: time.Hour}, 3)
	if len(got) != 3 {
		t.Fatalf("handled %d records, want 3", len(got))
	}
}

// A partition written by a transactional producer ends with a commit
// marker that is never delivered: its end offset stays one ahead of the
// last record. It counts as read to its end once nothing has come for a
// second, instead of holding the other topic for max_align_wait.
func TestACommitMarkerIsReadAsTheEnd(t *testing.T) {
	for _, c := range []struct {
		gap   int64
		quiet time.Duration
		want  bool
	}{
		{0, 0, true},
		{1, 0, false},
		{1, time.Second, true},
		{2, 2 * time.Second, true},
		{3, time.Minute, false}, // records still to read
	} {
		if got := atEnd(c.gap, c.quiet); got != c.want {
			t.Errorf("gap %d, quiet %s: at end %v, want %v", c.gap, c.quiet, got, c.want)
		}
	}
}

// A worker busy with a long batch does not hold the other partitions
// back: while partition 0's batch waits, the records produced to both
// partitions one at a time keep arriving, and partition 1 handles all of
// its own.
func TestABusyPartitionDoesNotHoldTheOthersBack(t *testing.T) {
	k := testenv.StartKafka(t, 2, "clicks")
	release := make(chan struct{})
	var mu sync.Mutex
	handled := map[int32]int{}
	c := NewConsumer(func(ctx context.Context, recs []*kgo.Record) error {
		if recs[0].Partition == 0 {
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		mu.Lock()
		defer mu.Unlock()
		handled[recs[0].Partition] += len(recs)
		return nil
	}, ConsumerOptions{Topics: []string{"clicks"}, Time: timeOf}, zap.NewNop(), metrics.New())
	cl, err := kgo.NewClient(append(c.GroupOpts(), kgo.SeedBrokers(k.Brokers...), kgo.ConsumerGroup("g"), kgo.ConsumeTopics("clicks"))...)
	testenv.Must(t, err, "consumer")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, cl) }()
	defer func() {
		close(release)
		cancel()
		<-done
	}()

	producer, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	testenv.Must(t, err, "producer")
	defer producer.Close()
	const rounds = 30
	for i := range rounds {
		for _, p := range []int32{0, 1} {
			r := &kgo.Record{Topic: "clicks", Partition: p, Value: []byte(strconv.Itoa(i + 1))}
			testenv.Must(t, producer.ProduceSync(ctx, r).FirstErr(), "produce")
		}
		time.Sleep(10 * time.Millisecond)
	}
	testenv.Eventually(t, 10*time.Second, "partition 1's records handled while partition 0's batch waits", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return handled[1] == rounds
	})
	mu.Lock()
	defer mu.Unlock()
	if handled[0] != 0 {
		t.Fatalf("partition 0 handled %d records while its batch waited", handled[0])
	}
}
