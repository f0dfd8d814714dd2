package alertsink

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cxstream/cxstream/internal/pipeline"
)

// HeaderErasure marks an erasure tombstone on the alert topic.
const HeaderErasure = "cx-erasure"

// PublishTombstone tells the alert topic's subscribers (and compaction)
// that a user was erased: key = the stored id, null value, header
// cx-erasure: true.
func PublishTombstone(ctx context.Context, p pipeline.Publisher, topic, storedID string) error {
	return p.Publish(ctx, []*kgo.Record{{Topic: topic, Key: []byte(storedID), Value: nil, Headers: []kgo.RecordHeader{{Key: HeaderErasure, Value: []byte("true")}}}})
}
