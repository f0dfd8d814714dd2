// Package gen generates realistic synthetic clickstream and chat traffic:
// users with personas (browsers, buyers, checkout abandoners, angry and
// happy chatters) who move through the purchase funnel and write support
// messages, some with personal data in them. The demo and `cxstream gen`
// both use it.
package gen

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	gojson "github.com/goccy/go-json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cxstream/cxstream/schemas"
)

// Options configure a Generator.
type Options struct {
	Users int
	Seed  uint64
	// ChatShare is the share of events that are chat messages (default
	// 0.15; negative: none, clickstream only).
	ChatShare float64
	// BadShare of events are corrupted (truncated JSON), to exercise the
	// dead-letter path (default 0).
	BadShare float64
	// Locale of the chats: LocaleZh, LocaleEn or LocaleMixed (default:
	// every other user writes Chinese).
	Locale string
	// Properties adds to every click event the session's utm_source and,
	// for events about a course, its topic (for funnel breakdowns). They
	// are derived from the session and the item, not drawn, so a seed
	// yields the same events with or without them.
	Properties bool
	// History, when positive, makes Produce write a history instead of
	// live traffic: its count events with event times spread over the
	// History before Until (see Generator.History), as fast as the rate
	// allows.
	History time.Duration
	// Until ends the history (default: the time Produce starts).
	Until time.Time
}

// UTMSources are the generated utm_source values, the first ones more
// frequent; CourseTopics are the courses' topics (course-N has
// CourseTopics[N%5]).
var (
	UTMSources   = []string{"google", "newsletter", "facebook", "direct", "partner"}
	CourseTopics = []string{"data", "design", "marketing", "programming", "languages"}
)

// utmWeights spreads sessions over UTMSources: google 3 in 9, newsletter
// and direct 2, the others 1.
var utmWeights = []int{0, 0, 0, 1, 1, 2, 3, 3, 4}

// Locales of the generated chats.
const (
	LocaleZh    = "zh"
	LocaleEn    = "en"
	LocaleMixed = "mixed"
)

// ErrLocale: a locale the generator does not speak.
var ErrLocale = errors.New("gen: locale must be zh, en or mixed")

// ValidateLocale accepts "" (mixed), zh, en and mixed.
func ValidateLocale(l string) error {
	switch l {
	case "", LocaleZh, LocaleEn, LocaleMixed:
		return nil
	}
	return fmt.Errorf("%w, got %q", ErrLocale, l)
}

// Kind says which input stream an event belongs to.
type Kind int

// Event kinds.
const (
	Click Kind = iota
	Chat
)

// Event is one generated message.
type Event struct {
	Kind  Kind
	Key   string
	Value []byte
	// Time is the event time (ms since the epoch).
	Time int64
}

type persona int

const (
	browser persona = iota
	buyer
	abandoner
	angry
	happy
)

type user struct {
	id      string
	persona persona
	step    int // position in the funnel script
	session int
	conv    int
	convMsg int
	zh      bool // writes Chinese
}

// Generator yields events. It is not safe for concurrent use.
type Generator struct {
	opts  Options
	rng   *rand.Rand
	users []*user
	seq   uint64
}

// New returns a generator of opts.Users users.
func New(opts Options) *Generator {
	if opts.Users <= 0 {
		opts.Users = 5000
	}
	if opts.ChatShare == 0 {
		opts.ChatShare = 0.15
	}
	g := &Generator{opts: opts, rng: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15))}
	for i := range opts.Users {
		p := persona(0)
		switch r := g.rng.Float64(); {
		case r < 0.35:
			p = browser
		case r < 0.6:
			p = buyer
		case r < 0.8:
			p = abandoner
		case r < 0.9:
			p = angry
		default:
			p = happy
		}
		// The locale is the user's index, not a random draw, so an English
		// run keeps the events it always had for a seed.
		zh := opts.Locale == LocaleZh || ((opts.Locale == "" || opts.Locale == LocaleMixed) && i%2 == 1)
		g.users = append(g.users, &user{id: UserID(i), persona: p, zh: zh})
	}
	return g
}

// Next returns the next event, stamped at.
func (g *Generator) Next(at time.Time) Event {
	return g.nextOf(g.users[g.rng.IntN(len(g.users))], at)
}

// nextOf returns user u's next event, stamped at.
func (g *Generator) nextOf(u *user, at time.Time) Event {
	g.seq++
	chatProb := g.opts.ChatShare * chatWeight[u.persona]
	if g.rng.Float64() < chatProb {
		return g.chat(u, at)
	}
	return g.click(u, at)
}

// chatWeight scales Options.ChatShare by persona: angry and happy users
// write more.
var chatWeight = [...]float64{browser: 0.3, buyer: 0.5, abandoner: 1, angry: 3.5, happy: 2}

var funnelScript = []string{schemas.ClickProductView, schemas.ClickAddToCart, schemas.ClickCheckoutStart, schemas.ClickPurchase}

func (g *Generator) click(u *user, at time.Time) Event {
	ev := schemas.ClickEvent{
		Schema:    schemas.ClickstreamV1,
		EventID:   g.eventID('c'),
		UserID:    u.id,
		SessionID: numbered(u.id, "-s", u.session),
		EventTime: at.UnixMilli(),
	}
	itemN := g.rng.IntN(40)
	item := courseIDs[itemN]
	hasItem := true
	switch {
	case u.persona == browser || g.rng.Float64() < 0.35:
		ev.Type = []string{schemas.ClickPageView, schemas.ClickSearch, schemas.ClickProductView, schemas.ClickCourseView}[g.rng.IntN(4)]
		ev.Page = "/catalog/" + item
	default:
		limit := len(funnelScript)
		if u.persona == abandoner || u.persona == angry {
			limit = 3 // they reach checkout and stop there
		}
		if u.step >= limit {
			u.step = 0
			u.session++
			ev.Type = schemas.ClickPageView
			ev.Page = "/"
			hasItem = false
			break
		}
		ev.Type = funnelScript[u.step]
		ev.ItemID = item
		ev.Page = "/" + ev.Type
		if ev.Type == schemas.ClickPurchase {
			ev.Amount = float64(19+g.rng.IntN(180)) + 0.99
			ev.Currency = "EUR"
			ev.Properties = map[string]any{"category": "course"}
		}
		u.step++
	}
	if g.opts.Properties {
		if ev.Properties == nil {
			ev.Properties = map[string]any{}
		}
		h := fnv.New32a()
		h.Write([]byte(ev.SessionID))
		ev.Properties["utm_source"] = UTMSources[utmWeights[h.Sum32()%uint32(len(utmWeights))]]
		if hasItem {
			ev.Properties["topic"] = CourseTopics[itemN%len(CourseTopics)]
		}
	}
	value, _ := ev.MarshalJSON()
	return Event{Kind: Click, Key: u.id, Value: value, Time: ev.EventTime}
}

func (g *Generator) chat(u *user, at time.Time) Event {
	if u.convMsg == 0 || u.convMsg > 4 || g.rng.Float64() < 0.1 {
		u.conv++
		u.convMsg = 0
	}
	u.convMsg++
	lines, lang := &english, "en"
	if u.zh {
		lines, lang = &chinese, "zh"
	}
	sender, text := schemas.SenderCustomer, ""
	switch {
	case u.convMsg%2 == 0 && g.rng.Float64() < 0.6:
		sender, text = schemas.SenderAgent, pick(g.rng, lines.agent)
	case u.persona == angry:
		text = pick(g.rng, lines.negative)
	case u.persona == happy:
		text = pick(g.rng, lines.positive)
	case g.rng.Float64() < 0.15:
		text = pick(g.rng, lines.negative)
	default:
		text = pick(g.rng, lines.neutral)
	}
	if g.rng.Float64() < 0.1 {
		text += " " + pick(g.rng, lines.personal)
	}
	m := schemas.ChatMessage{
		Schema:         schemas.ChatV1,
		EventID:        g.eventID('m'),
		ConversationID: numbered(u.id, "-c", u.conv),
		UserID:         u.id,
		Sender:         sender,
		Channel:        channels[g.rng.IntN(len(channels))],
		Text:           text,
		Language:       lang,
		EventTime:      at.UnixMilli(),
	}
	value, _ := gojson.Marshal(m) // writes what encoding/json writes, in a third of the time
	return Event{Kind: Chat, Key: u.id, Value: value, Time: m.EventTime}
}

var (
	channels  = []string{"web", "app", "email"}
	courseIDs = func() []string {
		ids := make([]string, 40)
		for i := range ids {
			ids[i] = "course-" + strconv.Itoa(i)
		}
		return ids
	}()
)

// eventID is kind-seed-seq: fmt.Sprintf was a tenth of the generator's
// time, which the bench's load generation takes from the machine under
// test.
func (g *Generator) eventID(kind byte) string {
	b := make([]byte, 0, 32)
	b = append(b, kind, '-')
	b = strconv.AppendUint(b, g.opts.Seed, 10)
	b = append(b, '-')
	return string(strconv.AppendUint(b, g.seq, 10))
}

// numbered is prefix + sep + n.
func numbered(prefix, sep string, n int) string {
	return prefix + sep + strconv.Itoa(n)
}

func pick(r *rand.Rand, lines []string) string { return lines[r.IntN(len(lines))] }

// chatLines are one language's lines by kind.
type chatLines struct{ negative, neutral, positive, agent, personal []string }

var (
	english = chatLines{negativeLines, neutralLines, positiveLines, agentLines, personalData}
	chinese = chatLines{negativeLinesZh, neutralLinesZh, positiveLinesZh, agentLinesZh, personalDataZh}
)

// Topics names where Produce writes each kind.
type Topics struct{ Clickstream, Chat string }

// Stats counts what Produce sent.
type Stats struct {
	Produced atomic.Int64
	Failed   atomic.Int64
}

// Produce sends events at rate per second until ctx is done or count
// events (count <= 0: no limit) were produced, then flushes. With
// Options.History it sends a history of count events (count must be
// positive), generated up front and held in memory.
func (g *Generator) Produce(ctx context.Context, cl *kgo.Client, topics Topics, rate float64, count int64, stats *Stats) error {
	if rate <= 0 {
		rate = 1000
	}
	var history []Event
	if g.opts.History > 0 {
		if count <= 0 {
			return ErrHistoryCount
		}
		until := g.opts.Until
		if until.IsZero() {
			until = time.Now()
		}
		history = g.History(int(count), g.opts.History, until)
	}
	const tick = 10 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	start := time.Now()
	var sent int64
	for count <= 0 || sent < count {
		select {
		case <-ctx.Done():
			return flush(cl)
		case <-t.C:
		}
		due := int64(time.Since(start).Seconds() * rate)
		for ; sent < due && (count <= 0 || sent < count); sent++ {
			var ev Event
			if history != nil {
				ev = history[sent]
			} else {
				ev = g.Next(time.Now())
			}
			if g.opts.BadShare > 0 && g.rng.Float64() < g.opts.BadShare {
				ev.Value = ev.Value[:len(ev.Value)/2]
			}
			topic := topics.Clickstream
			if ev.Kind == Chat {
				topic = topics.Chat
			}
			cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(ev.Key), Value: ev.Value}, func(_ *kgo.Record, err error) {
				if err != nil {
					stats.Failed.Add(1)
					return
				}
				stats.Produced.Add(1)
			})
		}
	}
	return flush(cl)
}

func flush(cl *kgo.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return cl.Flush(ctx)
}

// UserID is the id of the generator's i-th user.
func UserID(i int) string { return fmt.Sprintf("user-%06d", i) }
