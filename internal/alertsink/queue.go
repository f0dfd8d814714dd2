// Package alertsink holds the places alerts go besides their Kafka topic:
// the live support priority queue in Redis that agent tools pop.
package alertsink

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/cxstream/cxstream/schemas"
)

// Queue is the support priority queue: one entry per conversation, ordered
// by priority and then by age (oldest first). An escalation raises the
// conversation's entry; it never lowers it.
//
//	<prefix>:queue        sorted set: member "<user>\x00<conversation>", score as below
//	<prefix>:queue:items  hash: member -> the latest alert JSON
type Queue struct {
	rdb    redis.UniversalClient
	zset   string
	items  string
	popLua *redis.Script
}

// NewQueue returns the queue under prefix. Both keys share a hash tag so
// a pop is atomic on Redis Cluster too.
func NewQueue(rdb redis.UniversalClient, prefix string) *Queue {
	if prefix == "" {
		prefix = "cx"
	}
	return &Queue{
		rdb:   rdb,
		zset:  prefix + ":{queue}",
		items: prefix + ":{queue}:items",
		popLua: redis.NewScript(`
local top = redis.call('ZPOPMAX', KEYS[1])
if #top == 0 then return false end
local item = redis.call('HGET', KEYS[2], top[1])
redis.call('HDEL', KEYS[2], top[1])
return item`),
	}
}

const pushLua = `
local cur = redis.call('ZSCORE', KEYS[1], ARGV[1])
if cur and tonumber(cur) > tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1`

// Ages fit below 1e13 ms (year 2286), so rank dominates and, within a rank,
// the oldest event scores highest.
const rankScale = 1e13

func score(a schemas.Alert) float64 {
	return float64(a.Priority.Rank())*rankScale + (rankScale - float64(a.EventTime))
}

func member(a schemas.Alert) string { return a.UserID + "\x00" + a.ConversationID }

// Push adds or escalates the conversations of negative-chat alerts, in one
// round trip. Pushing the same alert again changes nothing.
func (q *Queue) Push(ctx context.Context, alerts []*schemas.Alert) error {
	pipe := q.rdb.Pipeline()
	n := 0
	for _, a := range alerts {
		if a.Type != schemas.AlertNegativeChat {
			continue
		}
		body, err := json.Marshal(a)
		if err != nil {
			return fmt.Errorf("queue: %w", err)
		}
		m := member(*a)
		// An escalation moves the entry up; a replayed older alert
		// neither moves it down nor replaces its body.
		pipe.Eval(ctx, pushLua, []string{q.zset, q.items}, m, score(*a), body)
		n++
	}
	if n == 0 {
		return nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("queue push: %w", err)
	}
	return nil
}

// List returns up to n entries, most urgent first, without removing them.
func (q *Queue) List(ctx context.Context, n int) ([]schemas.Alert, error) {
	members, err := q.rdb.ZRevRange(ctx, q.zset, 0, int64(n)-1).Result()
	if err != nil || len(members) == 0 {
		return nil, err
	}
	bodies, err := q.rdb.HMGet(ctx, q.items, members...).Result()
	if err != nil {
		return nil, err
	}
	out := make([]schemas.Alert, 0, len(bodies))
	for _, b := range bodies {
		s, ok := b.(string)
		if !ok {
			continue
		}
		var a schemas.Alert
		if json.Unmarshal([]byte(s), &a) == nil {
			out = append(out, a)
		}
	}
	return out, nil
}

// Pop removes and returns the most urgent entry; ok is false when the
// queue is empty.
func (q *Queue) Pop(ctx context.Context) (a schemas.Alert, ok bool, err error) {
	body, err := q.popLua.Run(ctx, q.rdb, []string{q.zset, q.items}).Text()
	if err == redis.Nil {
		return a, false, nil
	}
	if err != nil {
		return a, false, fmt.Errorf("queue pop: %w", err)
	}
	return a, true, json.Unmarshal([]byte(body), &a)
}

// Len is the number of waiting conversations.
func (q *Queue) Len(ctx context.Context) (int64, error) { return q.rdb.ZCard(ctx, q.zset).Result() }

// Remove deletes every entry of a user (erasure); it returns how many.
func (q *Queue) Remove(ctx context.Context, userID string) (int, error) {
	var gone []string
	iter := q.rdb.ZScan(ctx, q.zset, 0, escapeGlob(userID)+"\x00*", 200).Iterator()
	for iter.Next(ctx) {
		m := iter.Val()
		if strings.HasPrefix(m, userID+"\x00") {
			gone = append(gone, m)
		}
		_ = iter.Next(ctx) // ZSCAN yields member, score pairs
	}
	if err := iter.Err(); err != nil {
		return 0, fmt.Errorf("queue remove: %w", err)
	}
	if len(gone) == 0 {
		return 0, nil
	}
	pipe := q.rdb.TxPipeline()
	pipe.ZRem(ctx, q.zset, toAny(gone)...)
	pipe.HDel(ctx, q.items, gone...)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("queue remove: %w", err)
	}
	return len(gone), nil
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func escapeGlob(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`)
	return r.Replace(s)
}
