package state

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// WatermarkKey is the key of an input partition's event-time watermark.
// It shares the hash tag of the partition's timer set, so both live on one
// Redis Cluster node and move with the partition.
func (s *Store) WatermarkKey(topic string, partition int32) string {
	return s.prefix + ":wm:{" + topic + "/" + strconv.Itoa(int(partition)) + "}"
}

// Watermark returns a partition's stored watermark (ms), ok false when
// none was stored yet.
func (s *Store) Watermark(ctx context.Context, topic string, partition int32) (wm int64, ok bool, err error) {
	wm, err = s.rdb.Get(ctx, s.WatermarkKey(topic, partition)).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("load watermark: %w", err)
	}
	return wm, true, nil
}

// raiseScript sets the watermark only upwards, so an instance that lost
// its partition (a zombie) can never move it back.
var raiseScript = redis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]) or '-9007199254740991')
if tonumber(ARGV[1]) > cur then redis.call('SET', KEYS[1], ARGV[1]) end
return 1`)

// Watermark raises a partition's stored watermark to At (ms) unless a
// higher one is stored; SaveWithTimers takes them.
type Watermark struct {
	Topic     string
	Partition int32
	At        int64
}

// RaiseWatermark stores wm for the partition unless a higher one is stored.
func (s *Store) RaiseWatermark(ctx context.Context, topic string, partition int32, wm int64) error {
	if err := raiseScript.Run(ctx, s.rdb, []string{s.WatermarkKey(topic, partition)}, wm).Err(); err != nil {
		return fmt.Errorf("store watermark: %w", err)
	}
	return nil
}

// DueTimer is a user whose timer is due, with its deadline.
type DueTimer struct {
	User string
	Due  int64
}
