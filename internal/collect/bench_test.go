package collect

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

const benchBatch = 100

// segmentBatch is a /v1/batch body of benchBatch track calls, as a
// Segment library sends them.
func segmentBatch(seq int64) []byte {
	var b strings.Builder
	b.WriteString(`{"batch":[`)
	ts := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano)
	for i := range benchBatch {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"type":"track","event":"Product Viewed","messageId":"b-%d-%d","userId":"user-%d","timestamp":%q,"properties":{"product_id":"p-%d","price":12.5,"category":"shoes"},"context":{"library":{"name":"analytics-go","version":"3.1.0"}}}`,
			seq, i, i%500, ts, i%40)
	}
	b.WriteString(`],"context":{"library":{"name":"analytics-go"}},"sentAt":"` + ts + `"}`)
	return []byte(b.String())
}

// BenchmarkCollector measures events/s through the collector: HTTP
// requests of 100 Segment calls each, converted, validated and produced to
// kfake with the broker's acknowledgement awaited, from concurrent
// clients. Compare with BenchmarkRawProduce, franz-go alone.
func BenchmarkCollector(b *testing.B) {
	f := newFixture(b, fixtureOpts{})
	bodies := make([][]byte, 64)
	for i := range bodies {
		bodies[i] = segmentBatch(int64(i))
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var seq atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := bodies[seq.Add(1)%int64(len(bodies))]
			req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/v1/batch", bytes.NewReader(body))
			req.SetBasicAuth(writeKey, "")
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*benchBatch)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkRawProduce is the ceiling: the same number of records of the
// same size produced by franz-go to kfake, 100 per ProduceSync, from as
// many goroutines.
func BenchmarkRawProduce(b *testing.B) {
	f := newFixture(b, fixtureOpts{})
	v := []byte(`{"schema":"clickstream.v2","event_id":"b-1-1","user_id":"user-1","type":"Product Viewed","item_id":"p-1","properties":{"product_id":"p-1","price":12.5,"category":"shoes"},"event_time":1763900000000}`)
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		recs := make([]*kgo.Record, benchBatch)
		for pb.Next() {
			for i := range recs {
				recs[i] = &kgo.Record{Topic: clickTopic, Key: []byte(fmt.Sprintf("user-%d", i%500)), Value: v}
			}
			if err := f.producer.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*benchBatch)/time.Since(start).Seconds(), "events/s")
}
