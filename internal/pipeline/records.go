package pipeline

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cxstream/cxstream/internal/metrics"
	"github.com/cxstream/cxstream/processors"
	"github.com/cxstream/cxstream/processors/funnel"
	"github.com/cxstream/cxstream/processors/segment"
	"github.com/cxstream/cxstream/schemas"
	json "github.com/goccy/go-json"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// tally counts a batch's outcomes; they reach the metrics only once the
// batch is durable, so a retried batch is not counted twice and a reader
// of the metrics never sees work that is not yet in Redis.
type tally struct {
	applied, skipped, duplicates, deadLetters, alerts, records map[string]int
}

// addRecord counts a processor's record under its output and labels.
func (t *tally) addRecord(r processors.Record) {
	t.add(&t.records, r.Output+"\x00"+strings.Join(r.Labels, "\x00"))
}

func (t *tally) add(m *map[string]int, key string) {
	if *m == nil {
		*m = map[string]int{}
	}
	(*m)[key]++
}

func (t *tally) record(m *metrics.Metrics, counters map[string]*prometheus.CounterVec) {
	for k, n := range t.applied {
		m.Applied.WithLabelValues(k).Add(float64(n))
	}
	for k, n := range t.skipped {
		m.ReplaySkipped.WithLabelValues(k).Add(float64(n))
	}
	for k, n := range t.duplicates {
		m.Duplicates.WithLabelValues(k).Add(float64(n))
	}
	for k, n := range t.deadLetters {
		m.DeadLetters.WithLabelValues(strings.Split(k, "\x00")...).Add(float64(n))
	}
	for k, n := range t.alerts {
		m.Alerts.WithLabelValues(strings.Split(k, "\x00")...).Add(float64(n))
	}
	for k, n := range t.records {
		labels := strings.Split(k, "\x00")
		if c := counters[labels[0]]; c != nil {
			c.WithLabelValues(labels[1:]...).Add(float64(n))
		}
	}
}

// presetMetrics creates the pipeline's series at 0 for every label value
// known at start: input topics, dead-letter reasons, alert types and
// priorities, processors; the processors' own counters are created (and
// preset) in recordCounters.
func presetMetrics(o Options) {
	m := o.Metrics
	inputs := []string{o.Topics.Clickstream, o.Topics.Chat}
	for _, c := range []*prometheus.CounterVec{m.Received, m.Applied, m.ReplaySkipped, m.Duplicates} {
		metrics.Preset(c, inputs)
	}
	reasons := make([]string, len(DeadLetterReasons))
	for i, r := range DeadLetterReasons {
		reasons[i] = string(r)
	}
	metrics.Preset(m.DeadLetters, inputs, reasons)
	priorities := []string{string(schemas.PriorityLow), string(schemas.PriorityNormal), string(schemas.PriorityHigh), string(schemas.PriorityUrgent)}
	metrics.Preset(m.Alerts, schemas.AlertTypes, priorities)
	names := make([]string, len(o.Processors))
	for i, p := range o.Processors {
		names[i] = p.Name()
	}
	metrics.Preset(m.ProcessorErrors, names)
}

// recordCounters registers the counters of the processors' records, by
// output, with every known series at 0.
func recordCounters(o Options) map[string]*prometheus.CounterVec {
	counters := map[string]*prometheus.CounterVec{}
	for _, p := range o.Processors {
		c, ok := p.(processors.Counted)
		if !ok {
			continue
		}
		spec := c.RecordMetric()
		vec := o.Metrics.Counter(spec.Name, spec.Help, spec.Labels...)
		for _, values := range spec.Known {
			vec.WithLabelValues(values...)
		}
		counters[spec.Output] = vec
	}
	return counters
}

// countReceived adds a batch's records to the received counter, one label
// lookup per run of records from the same topic.
func countReceived(m *metrics.Metrics, recs []*kgo.Record) {
	for i := 0; i < len(recs); {
		j := i + 1
		for j < len(recs) && recs[j].Topic == recs[i].Topic {
			j++
		}
		m.Received.WithLabelValues(recs[i].Topic).Add(float64(j - i))
		i = j
	}
}

// hashID is FNV-1a: the dedup window stores 8 bytes per event id.
func hashID(id string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	return h
}

// emit turns a user's effects into records to produce, and counts them.
func (p *Pipeline) emit(t *tally, out []*kgo.Record, emitted []*schemas.Alert, userID string, eff processors.Effects, nowMs int64) ([]*kgo.Record, []*schemas.Alert, error) {
	for _, a := range eff.Alerts {
		a.DetectedAt = nowMs
		rec, err := p.alertRecord(a)
		if err != nil {
			return out, emitted, err
		}
		out = append(out, rec)
		if p.o.Topics.AlertsV1 != "" {
			v1, err := p.alertRecordV1(a)
			if err != nil {
				return out, emitted, err
			}
			out = append(out, v1)
		}
		emitted = append(emitted, a)
		t.add(&t.alerts, a.Type+"\x00"+string(a.Priority))
	}
	for _, r := range eff.Records {
		t.addRecord(r)
		if topic := p.outputTopic(r.Output); topic != "" {
			value, err := json.Marshal(r.Value)
			if err != nil {
				return out, emitted, fmt.Errorf("encode %s record: %w", r.Output, err)
			}
			out = append(out, &kgo.Record{Topic: topic, Key: []byte(userID), Value: value})
		}
	}
	return out, emitted, nil
}

// outputTopic is the topic configured for a processor output ("": none).
func (p *Pipeline) outputTopic(output string) string {
	switch output {
	case funnel.Output:
		return p.o.Topics.Transitions
	case segment.Output:
		return p.o.Topics.Segments
	}
	return p.o.Topics.Outputs[output]
}

func (p *Pipeline) deadLetter(r *kgo.Record, reason schemas.Reason, detail string, now time.Time) *kgo.Record {
	headers := make([]kgo.RecordHeader, 0, len(r.Headers)+6)
	headers = append(headers, r.Headers...)
	headers = append(headers,
		kgo.RecordHeader{Key: HeaderReason, Value: []byte(reason)},
		kgo.RecordHeader{Key: HeaderDetail, Value: []byte(detail)},
		kgo.RecordHeader{Key: HeaderSourceTopic, Value: []byte(r.Topic)},
		kgo.RecordHeader{Key: HeaderSourcePartition, Value: []byte(strconv.Itoa(int(r.Partition)))},
		kgo.RecordHeader{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
		kgo.RecordHeader{Key: HeaderFailedAt, Value: []byte(strconv.FormatInt(now.UnixMilli(), 10))},
	)
	value := r.Value
	if len(value) > p.o.MaxDeadLetterBytes {
		headers = append(headers, kgo.RecordHeader{Key: HeaderTruncated, Value: []byte(strconv.Itoa(len(value)))})
		value = value[:p.o.MaxDeadLetterBytes]
	}
	return &kgo.Record{Topic: p.o.Topics.DeadLetter, Key: r.Key, Value: value, Headers: headers}
}

func (p *Pipeline) alertRecord(a *schemas.Alert) (*kgo.Record, error) {
	value, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("encode alert: %w", err)
	}
	return &kgo.Record{
		Topic: p.o.Topics.Alerts,
		Key:   []byte(a.UserID),
		Value: value,
		Headers: []kgo.RecordHeader{
			{Key: HeaderAlertType, Value: []byte(a.Type)},
			{Key: HeaderAlertID, Value: []byte(a.AlertID)},
			{Key: HeaderPriority, Value: []byte(a.Priority)},
		},
	}, nil
}

// alertRecordV1 is the alert rendered as alert.v1 for topics.alerts_v1.
func (p *Pipeline) alertRecordV1(a *schemas.Alert) (*kgo.Record, error) {
	rec, err := p.alertRecord(a)
	if err != nil {
		return nil, err
	}
	if rec.Value, err = json.Marshal(a.V1()); err != nil {
		return nil, fmt.Errorf("encode alert.v1: %w", err)
	}
	rec.Topic = p.o.Topics.AlertsV1
	return rec, nil
}
