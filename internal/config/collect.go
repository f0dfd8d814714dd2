package config

import (
	"errors"
	"fmt"
	"time"

	"github.com/cxstream/cxstream/internal/ingest"
)

// Collect configures `cxstream collect`, the HTTP collector (the
// `collect:` section).
type Collect struct {
	// Addr the collector listens on.
	Addr string `yaml:"addr"`
	// WriteKeys accepted as the HTTP Basic-auth user; each may be
	// "file:/path". The collector does not start without one.
	WriteKeys []string `yaml:"write_keys"`
	// MaxBodyBytes bounds a request body after gzip decoding.
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// MaxBatch bounds the calls of one /v1/batch request.
	MaxBatch int `yaml:"max_batch"`
	// MaxInFlight bounds concurrent requests; more are answered 429.
	MaxInFlight int `yaml:"max_in_flight"`
	// ProduceTimeout: how long a request waits for Kafka's
	// acknowledgement before it is answered 503.
	ProduceTimeout time.Duration `yaml:"produce_timeout"`
	// Identity links anonymous ids to user ids (identify calls, login and
	// signup events) in Redis and keys later anonymous events by the user.
	Identity bool `yaml:"identity"`
	// Chat says how POST /v1/chat bodies are written (cxstream chat.v1,
	// or a mapping of a support tool's payload).
	Chat ingest.Input `yaml:"chat"`
}

// DefaultCollect is the collector with nothing set.
func DefaultCollect() Collect {
	return Collect{Addr: ":8088", MaxBodyBytes: 512 << 10, MaxBatch: 2500, MaxInFlight: 256, ProduceTimeout: 10 * time.Second, Identity: true}
}

// Validate names the first collect key that cannot work.
func (c Collect) Validate() error {
	switch {
	case c.MaxBodyBytes < 1024:
		return fmt.Errorf("collect.max_body_bytes: must be at least 1024, got %d", c.MaxBodyBytes)
	case c.MaxBatch < 1:
		return fmt.Errorf("collect.max_batch: must be positive, got %d", c.MaxBatch)
	case c.MaxInFlight < 1:
		return fmt.Errorf("collect.max_in_flight: must be positive, got %d", c.MaxInFlight)
	case c.ProduceTimeout <= 0:
		return errors.New("collect.produce_timeout: must be positive")
	}
	for _, k := range c.WriteKeys {
		if k == "" {
			return errors.New("collect.write_keys: a key is empty")
		}
	}
	if err := c.Chat.Validate(ingest.Chat); err != nil {
		return fmt.Errorf("collect.chat: %w", err)
	}
	return nil
}
