package collect

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cxstream/cxstream/internal/privacy"
)

// Links keeps anonymous id -> user id links in Redis, so that events sent
// under an anonymous id after an identify (or a login) are keyed by the
// user id. Keys (hash-tagged per id, so one slot each on Redis Cluster):
//
//	<prefix>:idlink:{<anonymous id>}   string: the user id
//	<prefix>:idlinks:{<user id>}       set: the anonymous ids linked to it
//
// With pseudonymisation on, the ids in key names are pseudonyms; the
// stored user id is the original, because the collector keys Kafka
// records by it. Both expire with the state TTL, refreshed by every link.
// Events sent before the link stay under the anonymous id.
type Links struct {
	rdb    redis.UniversalClient
	prefix string
	ttl    time.Duration
	pseudo *privacy.Pseudonymizer
}

// NewLinks returns the link store. ttl 0 keeps links until forgotten.
func NewLinks(rdb redis.UniversalClient, prefix string, ttl time.Duration, pseudo *privacy.Pseudonymizer) *Links {
	if prefix == "" {
		prefix = "cx"
	}
	return &Links{rdb: rdb, prefix: prefix, ttl: ttl, pseudo: pseudo}
}

func (l *Links) linkKey(anon string) string { return l.storedLinkKey(l.pseudo.ID(anon)) }

// storedLinkKey is the link key of an anonymous id already in its stored
// form: the reverse sets hold stored ids, never original ones.
func (l *Links) storedLinkKey(storedAnon string) string {
	return l.prefix + ":idlink:{" + storedAnon + "}"
}

func (l *Links) reverseKey(user string) string {
	return l.prefix + ":idlinks:{" + l.pseudo.ID(user) + "}"
}

// Link records that anon is user.
func (l *Links) Link(ctx context.Context, links map[string]string) error {
	if len(links) == 0 {
		return nil
	}
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for anon, user := range links {
			p.Set(ctx, l.linkKey(anon), user, l.ttl)
			p.SAdd(ctx, l.reverseKey(user), l.pseudo.ID(anon))
			if l.ttl > 0 {
				p.Expire(ctx, l.reverseKey(user), l.ttl)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("identity links: %w", err)
	}
	return nil
}

// Resolve returns the user ids linked to the given anonymous ids (absent
// when there is none), in one round trip.
func (l *Links) Resolve(ctx context.Context, anons []string) (map[string]string, error) {
	out := map[string]string{}
	if len(anons) == 0 {
		return out, nil
	}
	cmds := make([]*redis.StringCmd, len(anons))
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, a := range anons {
			cmds[i] = p.Get(ctx, l.linkKey(a))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("identity links: %w", err)
	}
	for i, c := range cmds {
		if u, err := c.Result(); err == nil {
			out[anons[i]] = u
		}
	}
	return out, nil
}

// Forget deletes every link from or to id (an original id, as the
// operator gives it). It returns how many keys went and the stored ids
// (pseudonyms when pseudonymisation is on) of the anonymous ids that were
// linked to id: their history is the same person's, and the caller erases
// it too.
func (l *Links) Forget(ctx context.Context, id string) (int64, []string, error) {
	anons, err := l.rdb.SMembers(ctx, l.reverseKey(id)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, nil, fmt.Errorf("identity links: %w", err)
	}
	// id may itself be an anonymous id linked to a user: drop it from that
	// user's set as well.
	user, err := l.rdb.Get(ctx, l.linkKey(id)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, nil, fmt.Errorf("identity links: %w", err)
	}
	keys := []string{l.reverseKey(id), l.linkKey(id)}
	for _, a := range anons {
		keys = append(keys, l.storedLinkKey(a))
	}
	var n int64
	// One command per key: on Redis Cluster the keys live in different slots.
	cmds, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Del(ctx, k)
		}
		if user != "" {
			p.SRem(ctx, l.reverseKey(user), l.pseudo.ID(id))
		}
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("identity links: %w", err)
	}
	for _, c := range cmds[:len(keys)] {
		n += c.(*redis.IntCmd).Val()
	}
	return n, anons, nil
}
