// Package erasure erases a person from cxstream's stores: the state
// documents and timers, support-queue entries and identity links of the
// user and of every anonymous id linked to them (their history before the
// link is theirs too), then tombstones on the alert topics. `cxstream
// forget` and the API's DELETE /v1/users/{id} both use it, so they cannot
// drift apart.
package erasure

import (
	"context"
	"fmt"

	"github.com/cxstream/cxstream/internal/alertsink"
	"github.com/cxstream/cxstream/internal/collect"
	"github.com/cxstream/cxstream/internal/pipeline"
	"github.com/cxstream/cxstream/internal/privacy"
	"github.com/cxstream/cxstream/internal/state"
)

// Eraser holds what an erasure touches. Publisher and Topics may be empty
// (no tombstones).
type Eraser struct {
	Store      *state.Store
	Queue      *alertsink.Queue
	Links      *collect.Links
	Pseudonyms *privacy.Pseudonymizer
	Publisher  pipeline.Publisher
	Topics     []string // alert topics to tombstone ("" entries are skipped)
}

// Result counts what went.
type Result struct {
	Keys          int64 `json:"keys_and_timers"`
	QueueEntries  int   `json:"queue_entries"`
	IdentityLinks int64 `json:"identity_links"`
	// AnonymousIDs is how many linked anonymous ids were erased with the
	// user.
	AnonymousIDs int  `json:"anonymous_ids"`
	Tombstone    bool `json:"tombstone_published"`
}

// Nothing reports whether nothing at all was stored.
func (r Result) Nothing() bool { return r.Keys == 0 && r.QueueEntries == 0 && r.IdentityLinks == 0 }

// Erase removes everything stored of the person with the original id
// (as the operator gives it). Run it again after an error: every step is
// idempotent.
func (e *Eraser) Erase(ctx context.Context, original string) (Result, error) {
	var r Result
	links, anons, err := e.Links.Forget(ctx, original)
	if err != nil {
		return r, err
	}
	r.IdentityLinks, r.AnonymousIDs = links, len(anons)
	// The user's own stored id, then the anonymous ids' (already stored
	// ids: the link sets never hold original ones).
	for _, id := range append([]string{e.Pseudonyms.ID(original)}, anons...) {
		n, err := e.Store.Forget(ctx, id)
		if err != nil {
			return r, err
		}
		r.Keys += n
		q, err := e.Queue.Remove(ctx, id)
		if err != nil {
			return r, err
		}
		r.QueueEntries += q
		if e.Publisher == nil {
			continue
		}
		for _, topic := range e.Topics {
			if topic == "" {
				continue
			}
			if err := alertsink.PublishTombstone(ctx, e.Publisher, topic, id); err != nil {
				return r, fmt.Errorf("state erased, but the tombstone was not published (run again to retry): %w", err)
			}
		}
		r.Tombstone = true
	}
	return r, nil
}
