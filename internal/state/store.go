// Package state keeps per-user processor state in Redis.
//
// Each user has two documents, one per input stream, so that each has a
// single writer in normal operation (the owner of the user's clickstream
// partition and the owner of the user's chat partition):
//
//	<prefix>:{<user>}:click   hash: v = version, s = state document, t = when the TTL was set
//	<prefix>:{<user>}:chat    hash: v = version, s = state document, t = when the TTL was set
//
// The braces hash-tag both keys to the user's slot, so on Redis Cluster a
// user's documents live together and can be read in one pipelined call.
// Writes are compare-and-set on the version (a Lua script), so a zombie
// writer left behind by a rebalance cannot overwrite newer state; the
// replay fence (which offsets a document already contains) lives inside
// the document and is written atomically with it.
package state

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Side names one of a user's documents.
type Side string

// The two sides of a user's state.
const (
	Click Side = "click"
	Chat  Side = "chat"
	// Both names both documents (LoadExcept: the caller holds both).
	Both Side = "both"
)

// Sides lists every side, for code that must touch all of a user's keys.
var Sides = []Side{Click, Chat}

// ErrConflict matches a *ConflictError.
var ErrConflict = errors.New("state changed since it was read")

// ConflictError lists the documents whose version moved between Load and
// Save; the caller reloads and recomputes them.
type ConflictError struct{ Keys []string }

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s: %d documents", ErrConflict, len(e.Keys))
}

// Is reports whether target is ErrConflict.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// Doc is one stored document; Version 0 means absent.
type Doc struct {
	Version int64
	Data    []byte
	// TTLSetAt is when the document's TTL was last set (ms since the
	// epoch, field t); 0 when never or unknown.
	TTLSetAt int64
}

// UserDocs are a user's documents.
type UserDocs struct {
	Click Doc
	Chat  Doc
}

// Write replaces one document if its version is still Expect.
type Write struct {
	User   string
	Side   Side
	Expect int64
	Data   []byte
	// TTLSetAt is the document's Doc.TTLSetAt as read at Expect (0:
	// unknown). The write sets the TTL again when that is a 64th of the
	// TTL ago or more (see ttlRefresh); after a successful save it is when
	// the TTL was last set, for the caller's next write.
	TTLSetAt int64
}

// Options configure a Store.
type Options struct {
	// Prefix of every key, default "cx".
	Prefix string
	// TTL of a user's documents, refreshed by writes (at most every 64th
	// of it, see ttlRefresh); 0 keeps them forever.
	TTL time.Duration
	// Now is the clock of TTL refreshes (default time.Now).
	Now func() time.Time
}

// Store reads and writes user documents. It works on a single Redis and on
// Redis Cluster (any redis.UniversalClient).
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	ttl    time.Duration
	now    func() time.Time
}

// New returns a store on rdb.
func New(rdb redis.UniversalClient, opts Options) *Store {
	if opts.Prefix == "" {
		opts.Prefix = "cx"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{rdb: rdb, prefix: opts.Prefix, ttl: opts.TTL, now: opts.Now}
}

// Key is the Redis key of a user's document.
func (s *Store) Key(user string, side Side) string {
	return s.prefix + ":{" + user + "}:" + string(side)
}

// Load reads the documents of users in one pipelined round trip (one per
// cluster node).
func (s *Store) Load(ctx context.Context, users []string) (map[string]UserDocs, error) {
	return s.LoadExcept(ctx, users, nil)
}

// LoadExcept is Load, except that the document known[user] names is not
// read (the caller holds it): its Doc is left empty.
func (s *Store) LoadExcept(ctx context.Context, users []string, known map[string]Side) (map[string]UserDocs, error) {
	docs, _, err := s.LoadWithDue(ctx, users, known, nil)
	return docs, err
}

// DueQuery asks for up to Limit timers of Index due at or before UpTo
// (ms), in deadline order.
type DueQuery struct {
	Index string
	UpTo  int64
	Limit int
}

// LoadWithDue is LoadExcept that also answers the due-timer queries, in
// the same pipelined round trip: due[i] answers queries[i].
func (s *Store) LoadWithDue(ctx context.Context, users []string, known map[string]Side, queries []DueQuery) (docs map[string]UserDocs, due [][]DueTimer, err error) {
	docs = make(map[string]UserDocs, len(users))
	if len(users) == 0 && len(queries) == 0 {
		return docs, nil, nil
	}
	pipe := s.rdb.Pipeline()
	dueCmds := make([]*redis.ZSliceCmd, len(queries))
	for i, q := range queries {
		dueCmds[i] = pipe.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{Key: q.Index, Start: "-inf", Stop: strconv.FormatInt(q.UpTo, 10), ByScore: true, Count: int64(q.Limit)})
	}
	cmds := make([][2]*redis.SliceCmd, len(users))
	for i, u := range users {
		skip := known[u]
		if skip != Click && skip != Both {
			cmds[i][0] = pipe.HMGet(ctx, s.Key(u, Click), "v", "s", "t")
		}
		if skip != Chat && skip != Both {
			cmds[i][1] = pipe.HMGet(ctx, s.Key(u, Chat), "v", "s", "t")
		}
	}
	if pipe.Len() == 0 {
		for _, u := range users {
			docs[u] = UserDocs{}
		}
		return docs, nil, nil // the caller holds every document: no round trip
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, fmt.Errorf("load state: %w", err)
	}
	due = make([][]DueTimer, len(queries))
	for i, cmd := range dueCmds {
		zs, err := cmd.Result()
		if err != nil {
			return nil, nil, fmt.Errorf("due timers: %w", err)
		}
		due[i] = make([]DueTimer, len(zs))
		for j, z := range zs {
			due[i][j] = DueTimer{User: z.Member.(string), Due: int64(z.Score)}
		}
	}
	for i, u := range users {
		click, err := docOf(cmds[i][0])
		if err != nil {
			return nil, nil, err
		}
		chat, err := docOf(cmds[i][1])
		if err != nil {
			return nil, nil, err
		}
		docs[u] = UserDocs{Click: click, Chat: chat}
	}
	return docs, due, nil
}

func docOf(cmd *redis.SliceCmd) (Doc, error) {
	if cmd == nil {
		return Doc{}, nil // not asked for
	}
	vals, err := cmd.Result()
	if err != nil {
		return Doc{}, fmt.Errorf("load state: %w", err)
	}
	var d Doc
	if v, ok := vals[0].(string); ok {
		if d.Version, err = strconv.ParseInt(v, 10, 64); err != nil {
			return Doc{}, fmt.Errorf("load state: bad version %q", v)
		}
	}
	if s, ok := vals[1].(string); ok {
		d.Data = []byte(s)
	}
	if t, ok := vals[2].(string); ok {
		// Unreadable: unknown, and the next write sets the TTL again.
		d.TTLSetAt, _ = strconv.ParseInt(t, 10, 64)
	}
	return d, nil
}

// casScript writes documents only if their versions are unchanged and
// bumps each version, one document after the other, atomically.
// ARGV[1..2] are the TTL (ms) and the time (ms); then come each
// document's expected version, data, and "1" where its TTL is to be set
// again (see ttlRefresh) or "0". It returns 1 for each document written,
// 0 where the version had moved. Redis Cluster gets one document per call
// (a script's keys must share a slot there); a single Redis up to
// casBatchSize, since one call per document cost Redis a call's overhead
// every time. The version is compared as the decimal string it is stored
// as, and whether to set the TTL is decided by the writer from the t it
// read with that version: reading t here and the numbers' conversions
// were a fifth of the script's Redis CPU (8.3 -> 6.8 us a document,
// interleaved runs of 600,000 documents, 15 a call).
var casScript = redis.NewScript(`
local ttl, now = ARGV[1], ARGV[2]
local out = {}
for i, key in ipairs(KEYS) do
  local j = 3 * i
  if (redis.call('HGET', key, 'v') or '0') ~= ARGV[j] then
    out[i] = 0
  elseif ARGV[j + 2] == '1' then
    redis.call('HSET', key, 'v', ARGV[j] + 1, 's', ARGV[j + 1], 't', now)
    redis.call('PEXPIRE', key, ttl)
    out[i] = 1
  else
    redis.call('HSET', key, 'v', ARGV[j] + 1, 's', ARGV[j + 1])
    out[i] = 1
  end
end
return out
`)

// ttlRefresh is how often, at most, a document's TTL is set again: a
// 64th of it (1.4 days of the default 90). PEXPIRE on every write was
// about half of the state script's Redis CPU; a document still expires
// no sooner than 63/64 of the TTL after its last write, and never later
// than the TTL. Field t of the document's hash is when it was last set.
func ttlRefresh(ttl time.Duration) time.Duration { return ttl / 64 }

// setsTTL reports whether a write at now (ms) sets the TTL of a document
// whose TTL was set at setAt (0: unknown).
func (s *Store) setsTTL(setAt, now int64) bool {
	// In ms, as the script gets it: a TTL under 1 ms would be PEXPIRE 0,
	// which deletes the document just written.
	return s.ttl.Milliseconds() > 0 && (setAt <= 0 || now-setAt >= ttlRefresh(s.ttl).Milliseconds())
}

// casBatchSize bounds the documents of one casScript call: Redis
// serves no other client while a script runs (about 10 us a document), so
// a call holds the other workers' round trips up by a third of a
// millisecond at most; 128 saved no more Redis CPU in the bench.
const casBatchSize = 32

// Save applies writes in one pipelined round trip. Documents whose version
// moved are left alone and reported in a *ConflictError; the others are
// written. On success it updates each write's TTLSetAt, as
// SaveWithTimers does.
func (s *Store) Save(ctx context.Context, writes []Write) error {
	return s.SaveWithTimers(ctx, nil, writes)
}

// SaveWithTimers sets timers, raises watermarks and applies writes in one
// pipelined round trip; on success each write's TTLSetAt is when its TTL
// was last set (the slice is written to). The timers come first in the
// pipeline, so they are in place before the state that needs them (a
// timer without its state is a harmless hint). A raise must be of state already durable: it is made
// whatever becomes of the writes.
func (s *Store) SaveWithTimers(ctx context.Context, timers []Timer, writes []Write, raises ...Watermark) error {
	if len(writes) == 0 && len(timers) == 0 && len(raises) == 0 {
		return nil
	}
	var conflicts []string
	now := s.now().UnixMilli() // one time for every attempt: the caller learns which TTLs it set
	all := writes
	for attempt := 0; ; attempt++ {
		retry, err := s.save(ctx, now, timers, raises, writes, &conflicts)
		timers, raises = nil, nil // made by the first pipeline whatever happened to the writes
		if err != nil {
			return err
		}
		if len(retry) == 0 {
			break
		}
		writes = retry
		if attempt > 0 {
			return errors.New("save state: redis keeps losing the state script (NOSCRIPT)")
		}
		// A restarted or failed-over Redis lost its script cache, or it
		// was never loaded: load it and redo only the writes that did not
		// run (others in the same pipeline may have).
		if err := s.loadScript(ctx); err != nil {
			return err
		}
	}
	if len(conflicts) > 0 {
		return &ConflictError{Keys: conflicts}
	}
	for i := range all {
		if s.setsTTL(all[i].TTLSetAt, now) {
			all[i].TTLSetAt = now
		}
	}
	return nil
}

// save runs one pipeline at time now (ms); it returns the writes that
// failed with NOSCRIPT.
func (s *Store) save(ctx context.Context, now int64, timers []Timer, raises []Watermark, writes []Write, conflicts *[]string) ([]Write, error) {
	ttl := strconv.FormatInt(s.ttl.Milliseconds(), 10)
	at := strconv.FormatInt(now, 10)
	pipe := s.rdb.Pipeline()
	timerCmds := make([]redis.Cmder, 0, len(timers))
	for _, t := range timers {
		if t.Due > 0 {
			timerCmds = append(timerCmds, pipe.ZAdd(ctx, t.Index, redis.Z{Score: float64(t.Due), Member: t.User}))
		} else {
			timerCmds = append(timerCmds, pipe.ZRem(ctx, t.Index, t.User))
		}
	}
	raiseCmds := make([]*redis.Cmd, 0, len(raises))
	for _, r := range raises {
		// EVAL, not EVALSHA: a short script, and no NOSCRIPT to retry.
		raiseCmds = append(raiseCmds, raiseScript.Eval(ctx, pipe, []string{s.WatermarkKey(r.Topic, r.Partition)}, r.At))
	}
	// Each call covers writes[from:to].
	type call struct {
		cmd      *redis.Cmd
		from, to int
	}
	per := casBatchSize
	if _, cluster := s.rdb.(*redis.ClusterClient); cluster {
		per = 1
	}
	calls := make([]call, 0, len(writes)/per+1)
	for from := 0; from < len(writes); from += per {
		to := min(from+per, len(writes))
		keys := make([]string, 0, to-from)
		args := make([]any, 0, 2+3*(to-from))
		args = append(args, ttl, at)
		for _, w := range writes[from:to] {
			keys = append(keys, s.Key(w.User, w.Side))
			setTTL := "0"
			if s.setsTTL(w.TTLSetAt, now) {
				setTTL = "1"
			}
			args = append(args, w.Expect, w.Data, setTTL)
		}
		calls = append(calls, call{casScript.EvalSha(ctx, pipe, keys, args...), from, to})
	}
	_, _ = pipe.Exec(ctx) // errors are per command, read below
	for _, c := range timerCmds {
		if err := c.Err(); err != nil {
			return nil, fmt.Errorf("schedule timers: %w", err)
		}
	}
	for _, c := range raiseCmds {
		if err := c.Err(); err != nil {
			return nil, fmt.Errorf("store watermark: %w", err)
		}
	}
	var retry []Write
	for _, c := range calls {
		written, err := c.cmd.Int64Slice()
		switch {
		case err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT"):
			// The script did not run: none of its writes happened.
			retry = append(retry, writes[c.from:c.to]...)
			continue
		case err != nil:
			return nil, fmt.Errorf("save state: %w", err)
		}
		for i, done := range written {
			if done == 0 {
				*conflicts = append(*conflicts, s.Key(writes[c.from+i].User, writes[c.from+i].Side))
			}
		}
	}
	return retry, nil
}

// Prepare loads the state script on every node, so the first batches do
// not all race to load it.
func (s *Store) Prepare(ctx context.Context) error { return s.loadScript(ctx) }

func (s *Store) loadScript(ctx context.Context) error {
	load := func(ctx context.Context, c redis.Scripter) error {
		if err := casScript.Load(ctx, c).Err(); err != nil {
			return err
		}
		return raiseScript.Load(ctx, c).Err()
	}
	var err error
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return load(ctx, c) })
	} else {
		err = load(ctx, s.rdb)
	}
	if err != nil {
		return fmt.Errorf("load state script: %w", err)
	}
	return nil
}

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }

// Forget deletes every document and timer of a user and returns how many
// documents and timers existed.
func (s *Store) Forget(ctx context.Context, user string) (int64, error) {
	keys := make([]string, 0, len(Sides))
	for _, side := range Sides {
		keys = append(keys, s.Key(user, side))
	}
	n, err := s.rdb.Del(ctx, keys...).Result()
	if err != nil {
		return 0, fmt.Errorf("forget user: %w", err)
	}
	indexes, err := s.timerIndexes(ctx)
	if err != nil {
		return n, err
	}
	for _, idx := range indexes {
		removed, err := s.rdb.ZRem(ctx, idx, user).Result()
		if err != nil {
			return n, fmt.Errorf("forget user's timers: %w", err)
		}
		n += removed
	}
	return n, nil
}

// timerIndexes lists every partition's timer set (on every cluster node).
func (s *Store) timerIndexes(ctx context.Context) ([]string, error) {
	var out []string
	scan := func(ctx context.Context, c redis.UniversalClient) error {
		iter := c.Scan(ctx, 0, s.prefix+":timers:*", 500).Iterator()
		for iter.Next(ctx) {
			out = append(out, iter.Val())
		}
		return iter.Err()
	}
	var err error
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			return scan(ctx, c)
		})
	} else {
		err = scan(ctx, s.rdb)
	}
	if err != nil {
		return nil, fmt.Errorf("list timer sets: %w", err)
	}
	return out, nil
}

// Timer asks for a user to be looked at again at Due (ms); Due 0 cancels.
type Timer struct {
	Index string
	User  string
	Due   int64
}

// TimerIndex is the key of a partition's timer set. Timers are kept per
// input partition so they move with the partition on a rebalance.
func (s *Store) TimerIndex(topic string, partition int32) string {
	return s.prefix + ":timers:{" + topic + "/" + strconv.Itoa(int(partition)) + "}"
}

// Due returns up to limit users of index whose timers are due at now (ms).
func (s *Store) Due(ctx context.Context, index string, now int64, limit int) ([]string, error) {
	users, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: index, Start: "-inf", Stop: strconv.FormatInt(now, 10), ByScore: true, Count: int64(limit)}).Result()
	if err != nil {
		return nil, fmt.Errorf("due timers: %w", err)
	}
	return users, nil
}

// Pending counts the timers of index, due or not.
func (s *Store) Pending(ctx context.Context, index string) (int64, error) {
	return s.rdb.ZCard(ctx, index).Result()
}

// Scan calls fn with every stored document of side (on every cluster
// node), for reports over all users. fn must not keep data.
func (s *Store) Scan(ctx context.Context, side Side, fn func(user string, data []byte) error) error {
	pattern := s.prefix + ":{*}:" + string(side)
	scan := func(ctx context.Context, c redis.UniversalClient) error {
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		var batch []string
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			pipe := c.Pipeline()
			cmds := make([]*redis.StringCmd, len(batch))
			for i, k := range batch {
				cmds[i] = pipe.HGet(ctx, k, "s")
			}
			if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
				return err
			}
			for i, k := range batch {
				data, err := cmds[i].Bytes()
				if err != nil {
					continue // expired or erased meanwhile
				}
				user := k[strings.Index(k, "{")+1 : strings.LastIndex(k, "}")]
				if err := fn(user, data); err != nil {
					return err
				}
			}
			batch = batch[:0]
			return nil
		}
		for iter.Next(ctx) {
			batch = append(batch, iter.Val())
			if len(batch) == 500 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
		return flush()
	}
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		var mu sync.Mutex // fn need not be safe for concurrent use
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			return scan(ctx, c)
		})
	}
	return scan(ctx, s.rdb)
}
