package report

import (
	"context"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cxstream/cxstream/internal/pipeline"
)

// TopicQuality is one input topic's data quality over a window.
type TopicQuality struct {
	Topic string
	// Records that arrived on the topic in the window.
	Records int64
	// DeadLetters by reason (schema_violation, invalid_json, late, ...).
	DeadLetters map[string]int64
}

// Quality counts, for each input topic, the records that arrived in the
// last window and the dead letters written for it in that window, by
// reason, reading Kafka only (no processor needs to be running).
//
// newReader builds the client that reads the dead letters, with the same
// connection settings (TLS, SASL) as cl. Several consumer groups (or a
// replay) may dead-letter the same input record: each source record counts
// once, by its source topic, partition and offset.
func Quality(ctx context.Context, cl *kgo.Client, newReader func(...kgo.Opt) (*kgo.Client, error), topics pipeline.Topics, window time.Duration) ([]TopicQuality, error) {
	adm := kadm.NewClient(cl)
	since := time.Now().Add(-window).UnixMilli()
	inputs := []string{topics.Clickstream, topics.Chat}
	starts, err := adm.ListOffsetsAfterMilli(ctx, since, inputs...)
	if err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, inputs...)
	if err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	out := map[string]*TopicQuality{}
	for _, t := range inputs {
		out[t] = &TopicQuality{Topic: t, DeadLetters: map[string]int64{}}
	}
	ends.Each(func(o kadm.ListedOffset) {
		if s, ok := starts.Lookup(o.Topic, o.Partition); ok && s.Err == nil {
			out[o.Topic].Records += o.Offset - s.Offset
		}
	})

	dlqStarts, err := adm.ListOffsetsAfterMilli(ctx, since, topics.DeadLetter)
	if err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	dlqEnds, err := adm.ListEndOffsets(ctx, topics.DeadLetter)
	if err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	offsets := map[string]map[int32]kgo.Offset{topics.DeadLetter: {}}
	remaining := map[int32]int64{}
	dlqStarts.Each(func(o kadm.ListedOffset) {
		end, _ := dlqEnds.Lookup(o.Topic, o.Partition)
		if end.Offset > o.Offset {
			offsets[o.Topic][o.Partition] = kgo.NewOffset().At(o.Offset)
			remaining[o.Partition] = end.Offset
		}
	})
	if len(remaining) > 0 {
		reader, err := newReader(kgo.ConsumePartitions(offsets))
		if err != nil {
			return nil, err
		}
		defer reader.Close()
		seen := map[string]bool{}
		for len(remaining) > 0 {
			fetches := reader.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			fetches.EachRecord(func(r *kgo.Record) {
				src, reason, srcPart, srcOffset := "", "", "", ""
				for _, h := range r.Headers {
					switch h.Key {
					case pipeline.HeaderSourceTopic:
						src = string(h.Value)
					case pipeline.HeaderReason:
						reason = string(h.Value)
					case pipeline.HeaderSourcePartition:
						srcPart = string(h.Value)
					case pipeline.HeaderSourceOffset:
						srcOffset = string(h.Value)
					}
				}
				id := src + "/" + srcPart + "/" + srcOffset
				if q := out[src]; q != nil && !seen[id] {
					seen[id] = true
					q.DeadLetters[reason]++
				}
				if r.Offset+1 >= remaining[r.Partition] {
					delete(remaining, r.Partition)
				}
			})
		}
	}
	var res []TopicQuality
	for _, t := range inputs {
		res = append(res, *out[t])
	}
	return res, nil
}

// PrintQuality writes the quality report as a table.
func PrintQuality(w io.Writer, qs []TopicQuality, window time.Duration) {
	fmt.Fprintf(w, "data quality over the last %s\n", window)
	for _, q := range qs {
		var total int64
		var reasons []string
		for r, n := range q.DeadLetters {
			total += n
			reasons = append(reasons, r)
		}
		sort.Strings(reasons)
		fmt.Fprintf(w, "%s: %d records, %d dead letters (%.3f%%)\n", q.Topic, q.Records, total, rate(total, q.Records))
		for _, r := range reasons {
			fmt.Fprintf(w, "  %-18s %8d  %.3f%%\n", r, q.DeadLetters[r], rate(q.DeadLetters[r], q.Records))
		}
	}
	fmt.Fprintln(w, "duplicates are dropped, not dead-lettered: see cx_events_duplicate_total on /metrics")
}

func rate(n, of int64) float64 {
	if of == 0 {
		return 0
	}
	return 100 * float64(n) / float64(of)
}
