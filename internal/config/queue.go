package config

import (
	"fmt"
	"time"

	"github.com/cxstream/cxstream/schemas"
)

// Queue configures the support queue's leases and first-response SLAs.
type Queue struct {
	// SLA is the first-response target per priority (LOW, NORMAL, HIGH,
	// URGENT): how long a conversation may wait for its first claim
	// before it is promoted and an sla_breach alert is raised. A file
	// that names some priorities keeps the defaults of the others. Judged
	// on the wall clock.
	SLA map[schemas.Priority]time.Duration `yaml:"sla"`
	// DefaultLease is the lease of a claim that names none.
	DefaultLease time.Duration `yaml:"default_lease"`
	// SLAInterval is how often `run` and `api` look for breaches, return
	// expired leases and refresh the queue gauges.
	SLAInterval time.Duration `yaml:"sla_interval"`
}

// DefaultQueue is the queue configuration with nothing set.
func DefaultQueue() Queue {
	return Queue{
		SLA: map[schemas.Priority]time.Duration{
			schemas.PriorityUrgent: 5 * time.Minute,
			schemas.PriorityHigh:   15 * time.Minute,
			schemas.PriorityNormal: time.Hour,
			schemas.PriorityLow:    4 * time.Hour,
		},
		DefaultLease: 5 * time.Minute,
		SLAInterval:  5 * time.Second,
	}
}

// Validate names the first queue key that cannot work.
func (q Queue) Validate() error {
	for p, d := range q.SLA {
		if p.Rank() < 0 {
			return fmt.Errorf("config: queue.sla: unknown priority %q (LOW, NORMAL, HIGH or URGENT)", p)
		}
		if d <= 0 {
			return fmt.Errorf("config: queue.sla.%s: must be positive, got %s", p, d)
		}
	}
	if q.DefaultLease <= 0 || q.DefaultLease > 24*time.Hour {
		return fmt.Errorf("config: queue.default_lease: must be between 0 and 24h, got %s", q.DefaultLease)
	}
	if q.SLAInterval < 100*time.Millisecond {
		return fmt.Errorf("config: queue.sla_interval: must be at least 100ms, got %s", q.SLAInterval)
	}
	return nil
}
