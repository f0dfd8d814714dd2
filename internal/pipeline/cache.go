package pipeline

import (
	"hash/maphash"
	"slices"
	"sync"

	"github.com/cxstream/cxstream/internal/metrics"
	"github.com/cxstream/cxstream/internal/state"
	"github.com/cxstream/cxstream/processors"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The state cache keeps, per owned input partition, the decoded document
// of each recent user of that partition's stream, so a batch reads from
// Redis only what it cannot know: the documents of new users and the
// other stream's document where another instance may have written it.
//
// Which documents may be cached: a user's click document has one writer,
// the owner of the user's clickstream partition, and the chat document
// the owner of the chat partition. The consumer assigns partition N of
// both topics to one worker, which merges them, so both writers are
// usually the same worker, but not always (a rolling upgrade, producers
// that partition the two topics differently). A batch of clickstream
// partition P caches the click documents of its users; their chat
// documents (whose Facts churn reads) are read from Redis on every batch,
// unless this worker wrote the chat document last (otherOwned): every
// write by this worker evicts the user's entry of the other partition,
// and a revoke of either partition drops both. The same holds the other
// way round for chat partitions.
//
// A cached document is still written compare-and-set on the version it
// was read or last written at, so a zombie that lost its partition without
// hearing of it cannot overwrite the new owner's state with its stale copy:
// its write conflicts, the batch fails, and the retry reads Redis.
//
// Entries are taken out of the cache when a batch loads them and put back
// only after the batch is durable: a batch that fails (a conflict, Kafka or
// Redis unavailable) leaves nothing behind that it may have changed.
//
// An entry also keeps the other stream's document as last read (or, when a
// merged batch of both streams wrote it, as written), bytes, decoded, and
// when its TTL was set (as for the owned document, the next write sets it
// again once a 64th of the TTL has passed since):
// when Redis returns the same bytes again, the decoded states are used
// instead of decoding them anew. That is exact: decoding is a function of
// the bytes, and the states kept are the ones those bytes hold.

// cachedDoc is one user's decoded documents, as a batch of a partition of
// one stream left them.
type cachedDoc struct {
	version int64
	// ttlSetAt is when the owned document's TTL was last set (its field t,
	// 0: unknown): a write sets it again when a 64th of the TTL has passed.
	ttlSetAt int64
	side     side
	// states are the processors' states, aligned with the pipeline's
	// processors: those of the owned stream, and those of the other stream
	// decoded from otherData.
	states []any
	// encoded is the owned document's encoded length.
	encoded int
	// The other stream's document as read: version, bytes, side and
	// when its TTL was set.
	otherVersion  int64
	otherData     []byte
	otherSide     side
	otherTTLSetAt int64
	// otherOwned: a batch of this worker wrote the other document at
	// otherVersion, as it merged the partition number's two topics, and
	// nobody has written it since, as far as this cache knows: its writer
	// is the owner of the other topic's partition of the same number,
	// which is this worker while it holds both (every write by this worker
	// evicts the user's entry of the other partition, and a revoke of
	// either drops both). It is then not read from Redis at all.
	otherOwned bool
	// size estimates the bytes the entry holds.
	size int64
}

// docSize estimates the memory of a decoded document from its encoded
// length: maps, slices and pointers take more room than their binary
// encoding. Calibrated on generated traffic (the heap freed by dropping a
// full cache against the estimate, within 10%).
func docSize(encoded int) int64 { return int64(encoded)*4 + 1024 }

type cacheKey struct {
	tp   topicPartition
	user string
}

type cacheEntry struct {
	key        cacheKey
	doc        cachedDoc
	prev, next *cacheEntry // LRU order: head is the most recently used
}

// stateCache is a byte-bounded LRU of decoded documents, indexed by owned
// partition so a revoked partition's users are dropped at once. It is
// safe for concurrent use by the partitions' workers.
type stateCache struct {
	limit int64
	m     *metrics.Metrics
	seed  maphash.Seed

	mu    sync.Mutex
	bytes int64
	head  *cacheEntry // most recent
	tail  *cacheEntry // least recent
	parts map[topicPartition]map[string]*cacheEntry
	// seen and seenBefore remember (as hashes) users loaded once and not
	// cached: a user is cached from their second load on, so traffic of
	// users seen once does not churn the cache. Two generations of at
	// most seenMax each bound the memory.
	seen, seenBefore map[uint64]struct{}
	seenMax          int
}

func newStateCache(limit int64, m *metrics.Metrics) *stateCache {
	return &stateCache{limit: limit, m: m, seed: maphash.MakeSeed(), parts: map[topicPartition]map[string]*cacheEntry{},
		seen: map[uint64]struct{}{}, seenMax: int(max(1024, limit/docSize(256)))}
}

// admit reports whether a user read from Redis goes into the cache: only
// when loaded before, recently.
func (c *stateCache) admit(tp topicPartition, user string) bool {
	h := maphash.String(c.seed, user) ^ uint64(tp.partition)*0x9e3779b97f4a7c15 ^ maphash.String(c.seed, tp.topic)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.seen[h]; ok {
		return true
	}
	if _, ok := c.seenBefore[h]; ok {
		return true
	}
	c.seen[h] = struct{}{}
	if len(c.seen) >= c.seenMax {
		c.seenBefore, c.seen = c.seen, make(map[uint64]struct{}, c.seenMax)
	}
	return false
}

// take removes and returns the user's document cached for partition tp.
func (c *stateCache) take(tp topicPartition, user string) (cachedDoc, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.parts[tp][user]
	if e == nil {
		c.m.StateCacheMisses.Inc()
		return cachedDoc{}, false
	}
	c.m.StateCacheHits.Inc()
	c.remove(e)
	return e.doc, true
}

// put caches the user's document for partition tp, evicting the least
// recently used documents beyond the limit.
func (c *stateCache) put(tp topicPartition, user string, doc cachedDoc) {
	if doc.size > c.limit {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	users := c.parts[tp]
	if users == nil {
		users = map[string]*cacheEntry{}
		c.parts[tp] = users
	}
	if old := users[user]; old != nil {
		c.remove(old)
	}
	e := &cacheEntry{key: cacheKey{tp, user}, doc: doc, next: c.head}
	if c.head != nil {
		c.head.prev = e
	}
	c.head = e
	if c.tail == nil {
		c.tail = e
	}
	users[user] = e
	c.bytes += doc.size
	for c.bytes > c.limit && c.tail != nil {
		c.remove(c.tail)
		c.m.StateCacheEvictions.Inc()
	}
	c.m.StateCacheBytes.Set(float64(c.bytes))
}

// evict forgets the user's document cached for partition tp, if any.
func (c *stateCache) evict(tp topicPartition, user string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.parts[tp][user]; e != nil {
		c.remove(e)
		c.m.StateCacheBytes.Set(float64(c.bytes))
	}
}

// drop forgets every document cached for partition tp.
func (c *stateCache) drop(tp topicPartition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.parts[tp] {
		c.remove(e)
	}
	delete(c.parts, tp)
	c.m.StateCacheBytes.Set(float64(c.bytes))
}

// remove unlinks e; c.mu is held.
func (c *stateCache) remove(e *cacheEntry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		c.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		c.tail = e.prev
	}
	e.prev, e.next = nil, nil
	if users := c.parts[e.key.tp]; users != nil {
		delete(users, e.key.user)
	}
	c.bytes -= e.doc.size
}

// owner is the partition whose documents a batch may take from and put
// back into the cache: set when the cache is on and the batch's records
// come from one input partition, or from the clickstream and chat
// partitions of one number (as the consumer merges them). A merged batch
// is owned by its clickstream partition: the click documents are cached,
// the chat documents read from Redis and their decoded states reused when
// unchanged, as for any other stream's document.
type owner struct {
	tp     topicPartition
	stream processors.Stream
}

// ownerOf returns the batch's owning partition, if any.
func (p *Pipeline) ownerOf(recs []*kgo.Record) *owner {
	if p.cache == nil || len(recs) == 0 {
		return nil
	}
	var click, chat *kgo.Record
	for _, r := range recs {
		switch {
		case r.Topic == p.o.Topics.Clickstream && (click == nil || click.Partition == r.Partition):
			click = r
		case r.Topic == p.o.Topics.Chat && (chat == nil || chat.Partition == r.Partition):
			chat = r
		default:
			return nil // several partitions of a topic, or another topic
		}
	}
	switch {
	case click != nil && chat != nil && click.Partition != chat.Partition:
		return nil
	case click != nil:
		return p.partitionOwner(topicPartition{click.Topic, click.Partition})
	default:
		return p.partitionOwner(topicPartition{chat.Topic, chat.Partition})
	}
}

// partitionOwner returns partition tp as an owner (nil: the cache is off).
func (p *Pipeline) partitionOwner(tp topicPartition) *owner {
	switch {
	case p.cache == nil:
		return nil
	case tp.topic == p.o.Topics.Clickstream:
		return &owner{tp: tp, stream: processors.Clicks}
	case tp.topic == p.o.Topics.Chat:
		return &owner{tp: tp, stream: processors.Chats}
	}
	return nil
}

// owners says which partition's cache owns each of a batch's users: one
// owner for the whole batch (all; a Process call), or each part's for its
// users (byUser; ProcessParts), where a user found in the parts of two
// owners, or loaded only for a due timer, has none.
type owners struct {
	all    *owner
	byUser map[string]*owner
	// tps are the input partitions of a batch of parts: a user without an
	// owner there was read and written around the cache, and its entries
	// of these partitions are dropped once the batch is durable.
	tps []topicPartition
}

func (o owners) of(id string) *owner {
	if o.byUser == nil {
		return o.all
	}
	return o.byUser[id]
}

func sameOwner(a, b *owner) bool {
	return a == b || (a != nil && b != nil && *a == *b)
}

// ownersUpTo and ownersFrom split a batch's record owners where the batch
// is split (nil stays nil).
func ownersUpTo(o []*owner, k int) []*owner {
	if o == nil {
		return nil
	}
	return o[:k]
}

func ownersFrom(o []*owner, k int) []*owner {
	if o == nil {
		return nil
	}
	return o[k:]
}

// disownDueElsewhere takes the owner away from the users of a batch of
// parts whose timer came due on the clock of a partition number other
// than their part's (the topics partitioned differently): the timer
// writes a document the owner does not own, so the user is written
// around the cache, and keepAll drops its entries.
func disownDueElsewhere(o owners, clocks []*clock, due [][]state.DueTimer) {
	for i, c := range clocks {
		for _, d := range due[i] {
			if ow := o.byUser[d.User]; ow != nil && ow.tp.partition != c.tp.partition {
				o.byUser[d.User] = nil
			}
		}
	}
}

// partitionsOf lists the input partitions of recs (keepAll adds the other
// topic's partitions of the same numbers).
func partitionsOf(recs []*kgo.Record) []topicPartition {
	var tps []topicPartition
	for _, r := range recs {
		tp := topicPartition{r.Topic, r.Partition}
		if !slices.Contains(tps, tp) {
			tps = append(tps, tp)
		}
	}
	return tps
}

// keepAll is keep for each owner of a durable batch's users; a user
// without one had its documents written around the cache, which must not
// hand out what it held of them before.
func (p *Pipeline) keepAll(o owners, users map[string]*user) {
	if o.byUser == nil {
		p.keep(o.all, users)
		return
	}
	if p.cache == nil {
		return
	}
	byOwner := map[owner]map[string]*user{}
	for id, u := range users {
		ow := o.byUser[id]
		if ow == nil {
			for _, tp := range o.tps {
				p.cache.evict(tp, id)
				p.cache.evict(topicPartition{p.otherTopic(tp.topic), tp.partition}, id)
			}
			continue
		}
		if byOwner[*ow] == nil {
			byOwner[*ow] = map[string]*user{}
		}
		byOwner[*ow][id] = u
	}
	for ow, us := range byOwner {
		p.keep(&ow, us)
	}
}

// otherTopic is the other input topic.
func (p *Pipeline) otherTopic(topic string) string {
	if topic == p.o.Topics.Clickstream {
		return p.o.Topics.Chat
	}
	return p.o.Topics.Clickstream
}

// keep puts the owned documents of a durable batch's users back into the
// cache, at the versions just written.
func (p *Pipeline) keep(o *owner, users map[string]*user) {
	if o == nil {
		return
	}
	i := sideIndex(o.stream)
	otherTopic := p.otherTopic(o.tp.topic)
	for id, u := range users {
		written := u.written[1-i]
		if written != nil || u.written[i] != nil {
			// The user's entry of the other stream's partition (a batch
			// of that stream alone, the same worker's when it had no
			// record of this one) holds a document this batch replaced.
			p.cache.evict(topicPartition{otherTopic, o.tp.partition}, id)
		}
		if !u.cached && !p.cache.admit(o.tp, id) {
			continue
		}
		sd := u.sides[i]
		sd.dirty = false
		other := *u.doc(1 - i)
		if written != nil {
			// What it wrote is what Redis returns while nobody else
			// writes.
			other.Data = written
		}
		otherSide := u.sides[1-i]
		otherSide.dirty = false
		// The batch is done with the user: its states are kept as they are.
		own := u.doc(i)
		p.cache.put(o.tp, id, cachedDoc{version: own.Version, ttlSetAt: own.TTLSetAt, side: sd, states: u.States(), encoded: u.encoded[i],
			otherVersion: other.Version, otherData: other.Data, otherSide: otherSide, otherTTLSetAt: other.TTLSetAt, otherOwned: written != nil || u.otherOwned,
			size: docSize(u.encoded[i]) + docSize(len(other.Data)) + int64(len(other.Data))}) // the other's bytes are kept too
	}
}
