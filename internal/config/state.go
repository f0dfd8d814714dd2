package config

import "fmt"

// StateCache tunes how the pipeline holds and stores user state (keys of
// the processing block).
type StateCache struct {
	// StateCacheBytes bounds the cache of decoded user state of the
	// partitions this instance owns (a batch then reads from Redis only
	// the users it has not seen recently); 0 disables the cache. About
	// 12 KB a user with the default funnels; with `run`'s GOGC=400 the
	// heap may grow to about five times what is live, cache included.
	StateCacheBytes int64 `yaml:"state_cache_bytes"`
	// StateEncoding is how state documents are written: binary (compact)
	// or json. Both are always read.
	StateEncoding string `yaml:"state_encoding"`
}

// DefaultStateCache is the state cache configuration with nothing set.
func DefaultStateCache() StateCache {
	return StateCache{StateCacheBytes: 32 << 20, StateEncoding: "binary"}
}

// Validate names the first state key that cannot work.
func (s StateCache) Validate() error {
	if s.StateCacheBytes < 0 {
		return fmt.Errorf("config: processing.state_cache_bytes: must not be negative (0 disables the cache), got %d", s.StateCacheBytes)
	}
	if s.StateEncoding != "binary" && s.StateEncoding != "json" {
		return fmt.Errorf("config: processing.state_encoding: %q is not accepted; accepted: binary, json", s.StateEncoding)
	}
	return nil
}
