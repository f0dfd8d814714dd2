package kafka

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Publisher produces records with the client's idempotent producer and
// waits for every acknowledgement.
type Publisher struct{ cl *kgo.Client }

// NewPublisher returns a publisher on cl.
func NewPublisher(cl *kgo.Client) *Publisher { return &Publisher{cl: cl} }

// Publish implements pipeline.Publisher.
func (p *Publisher) Publish(ctx context.Context, recs []*kgo.Record) error {
	if len(recs) == 0 {
		return nil
	}
	results := p.cl.ProduceSync(ctx, recs...)
	var errs []error
	for _, r := range results {
		if r.Err != nil {
			errs = append(errs, r.Err)
			if len(errs) == 3 {
				break
			}
		}
	}
	return errors.Join(errs...)
}
