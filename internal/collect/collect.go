// Package collect is cxstream's HTTP collector: Segment's HTTP Tracking
// API (POST /v1/track, /v1/page, /v1/screen, /v1/identify, /v1/alias,
// /v1/group, /v1/batch, write key by HTTP Basic auth, gzip bodies) plus
// POST /v1/chat for chat messages. alias calls link ids like identify;
// group calls are accepted and not read (counted), so a library's batch
// holding one is not refused. Calls are converted to cxstream's messages, validated, keyed
// by user (anonymous ids linked to a user id are keyed by the user id)
// and produced to the input topics; the answer is 200 only once Kafka
// acknowledged every record of the request.
//
// Answers: 400 with the reason for an invalid call (nothing of the request
// is produced), 401 for a missing or unknown write key, 413 for a body
// over the limit, 429 when too many requests are in flight, 503 while
// Kafka (or Redis, for identity) is unavailable: Segment's clients retry
// those, and the processor counts a retried message once by its
// messageId.
package collect

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	json "github.com/goccy/go-json"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/cxstream/cxstream/internal/ingest"
	"github.com/cxstream/cxstream/schemas"
)

// Producer produces records and waits for the broker's acknowledgement
// (*kgo.Client).
type Producer interface {
	ProduceSync(ctx context.Context, rs ...*kgo.Record) kgo.ProduceResults
}

// Options build a Collector.
type Options struct {
	// ClickTopic and ChatTopic receive the records.
	ClickTopic, ChatTopic string
	Producer              Producer
	Validator             *schemas.Validator
	// Chat reads the bodies of /v1/chat (chat.v1 JSON, or a mapping of a
	// support tool's payload).
	Chat ingest.Input
	// WriteKeys are accepted as the Basic-auth user; at least one.
	WriteKeys []string
	// Links, when set, keys anonymous ids by their linked user id and
	// records links from identify calls and login/signup events.
	Links *Links
	// Vocabulary says which track events are logins or signups.
	Vocabulary schemas.Vocabulary
	// MaxBodyBytes bounds a request body, after gzip (default 512 KiB).
	MaxBodyBytes int
	// MaxBatch bounds the calls of one /v1/batch (default 2500).
	MaxBatch int
	// MaxInFlight bounds concurrent requests; more get 429 (default 256).
	MaxInFlight int
	// ProduceTimeout: how long a request waits for Kafka before 503
	// (default 10 s).
	ProduceTimeout time.Duration
	Registry       prometheus.Registerer
	Logger         *zap.Logger
}

func (o *Options) validate() error {
	switch {
	case o.ClickTopic == "" || o.ChatTopic == "":
		return errors.New("collect: the clickstream and chat topics are required")
	case o.Producer == nil || o.Validator == nil:
		return errors.New("collect: a producer and a validator are required")
	case len(o.WriteKeys) == 0:
		return errors.New("collect: at least one write key is required")
	}
	for _, k := range o.WriteKeys {
		if k == "" {
			return errors.New("collect: a write key is empty")
		}
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 512 << 10
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 2500
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 256
	}
	if o.ProduceTimeout <= 0 {
		o.ProduceTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	return nil
}

// Collector is the HTTP handler.
type Collector struct {
	o        Options
	clicks   *ingest.Decoder
	chats    *ingest.Decoder
	inFlight chan struct{}
	m        collectorMetrics
	mux      *http.ServeMux
}

// New checks the options and returns the collector.
func New(o Options) (*Collector, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	clicks, err := ingest.NewDecoder(ingest.Click, ingest.Input{Format: ingest.FormatSegment}, o.Validator)
	if err != nil {
		return nil, err
	}
	chats, err := ingest.NewDecoder(ingest.Chat, o.Chat, o.Validator)
	if err != nil {
		return nil, fmt.Errorf("collect: chat: %w", err)
	}
	c := &Collector{o: o, clicks: clicks, chats: chats, inFlight: make(chan struct{}, o.MaxInFlight)}
	if c.m, err = newMetrics(o.Registry); err != nil {
		return nil, err
	}
	c.mux = http.NewServeMux()
	for _, call := range []string{"track", "page", "screen", "identify", "alias", "group"} {
		c.mux.Handle("POST /v1/"+call, c.endpoint(call, c.single(call)))
	}
	c.mux.Handle("POST /v1/batch", c.endpoint("batch", c.batch))
	c.mux.Handle("POST /v1/chat", c.endpoint("chat", c.chat))
	return c, nil
}

// ServeHTTP serves the API.
func (c *Collector) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.mux.ServeHTTP(w, r) }

// Serve runs an HTTP server for the collector on ln until ctx is done,
// then shuts it down within grace (requests in hand finish).
func (c *Collector) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	srv := &http.Server{
		Handler:           c,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      c.o.ProduceTimeout + 30*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	return err
}

// httpError is an answer other than 200.
type httpError struct {
	code   int
	reason string // a metric label: small fixed set
	msg    string // for the client; names fields, never values
}

func (e *httpError) Error() string { return e.msg }

func fail(code int, reason, format string, args ...any) *httpError {
	return &httpError{code: code, reason: reason, msg: fmt.Sprintf(format, args...)}
}

// Rejection reasons, the label of cx_collect_rejected_total.
const (
	rejectAuth        = "unauthorized"
	rejectTooLarge    = "too_large"
	rejectInvalid     = "invalid"
	rejectBusy        = "too_many_requests"
	rejectUnavailable = "kafka_unavailable"
	rejectIdentity    = "redis_unavailable"
)

var rejectReasons = []string{rejectAuth, rejectTooLarge, rejectInvalid, rejectBusy, rejectUnavailable, rejectIdentity}

// endpoint wraps a handler with the limits, auth, body reading, metrics
// and the answer.
func (c *Collector) endpoint(name string, handle func(ctx context.Context, body []byte) (int, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		n, err := c.serve(name, r, handle)
		code := http.StatusOK
		var he *httpError
		if errors.As(err, &he) {
			code = he.code
			c.m.rejected.WithLabelValues(name, he.reason).Inc()
		} else if err != nil {
			code = http.StatusInternalServerError
		}
		c.m.requests.WithLabelValues(name, strconv.Itoa(code)).Inc()
		c.m.seconds.WithLabelValues(name).Observe(time.Since(start).Seconds())
		w.Header().Set("Content-Type", "application/json")
		if code == http.StatusServiceUnavailable || code == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		w.WriteHeader(code)
		if err != nil {
			_ = json.NewEncoder(w).Encode(map[string]any{"success": false, "error": err.Error()})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"success": true, "events": n})
	})
}

func (c *Collector) serve(name string, r *http.Request, handle func(ctx context.Context, body []byte) (int, error)) (int, error) {
	select {
	case c.inFlight <- struct{}{}:
		defer func() { <-c.inFlight }()
	default:
		return 0, fail(http.StatusTooManyRequests, rejectBusy, "too many requests in flight; retry")
	}
	if !c.authorized(r) {
		return 0, fail(http.StatusUnauthorized, rejectAuth, "missing or unknown write key (HTTP Basic auth, the key as user name)")
	}
	body, err := c.readBody(r)
	if err != nil {
		return 0, err
	}
	return handle(r.Context(), body)
}

func (c *Collector) authorized(r *http.Request) bool {
	key, _, ok := r.BasicAuth()
	if !ok || key == "" {
		return false
	}
	found := 0
	for _, k := range c.o.WriteKeys {
		found |= subtle.ConstantTimeCompare([]byte(k), []byte(key))
	}
	return found == 1
}

// readBody reads at most MaxBodyBytes, after gzip decoding, so a small
// compressed body cannot expand without bound.
func (c *Collector) readBody(r *http.Request) ([]byte, error) {
	limit := int64(c.o.MaxBodyBytes)
	if r.ContentLength > limit {
		return nil, fail(http.StatusRequestEntityTooLarge, rejectTooLarge, "body of %d bytes over the limit of %d", r.ContentLength, limit)
	}
	var src io.Reader = io.LimitReader(r.Body, limit+1)
	switch strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))) {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, fail(http.StatusBadRequest, rejectInvalid, "body is not gzip")
		}
		defer zr.Close()
		src = zr
	default:
		return nil, fail(http.StatusBadRequest, rejectInvalid, "Content-Encoding: want gzip or none")
	}
	body, err := io.ReadAll(io.LimitReader(src, limit+1))
	if err != nil {
		if errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fail(http.StatusBadRequest, rejectInvalid, "body is not valid gzip")
		}
		return nil, fail(http.StatusBadRequest, rejectInvalid, "body could not be read")
	}
	if int64(len(body)) > limit {
		return nil, fail(http.StatusRequestEntityTooLarge, rejectTooLarge, "body over the limit of %d bytes", limit)
	}
	return body, nil
}

// call is one Segment call of a request.
type call struct {
	raw []byte
	rec ingest.JSONRecord
}

func (c *Collector) single(callType string) func(ctx context.Context, body []byte) (int, error) {
	return func(ctx context.Context, body []byte) (int, error) {
		rec, err := ingest.ParseObject(body)
		if err != nil {
			return 0, fail(http.StatusBadRequest, rejectInvalid, "body: %v", err)
		}
		// The endpoint says the call's type; the body need not.
		if t, ok := rec["type"].(string); !ok || t == "" {
			rec["type"] = callType
		} else if t != callType {
			return 0, fail(http.StatusBadRequest, rejectInvalid, "type: %s call sent to /v1/%s", safeName(t), callType)
		}
		return c.produceCalls(ctx, []call{{raw: body, rec: rec}}, "")
	}
}

// batchBody is /v1/batch's envelope.
type batchBody struct {
	Batch   []json.RawMessage `json:"batch"`
	Context json.RawMessage   `json:"context"`
}

func (c *Collector) batch(ctx context.Context, body []byte) (int, error) {
	var b batchBody
	if err := json.Unmarshal(body, &b); err != nil {
		return 0, fail(http.StatusBadRequest, rejectInvalid, "body: not a batch object ({\"batch\": [...]})")
	}
	if len(b.Batch) == 0 {
		return 0, fail(http.StatusBadRequest, rejectInvalid, "batch: empty or missing")
	}
	if len(b.Batch) > c.o.MaxBatch {
		return 0, fail(http.StatusRequestEntityTooLarge, rejectTooLarge, "batch: %d calls over the limit of %d", len(b.Batch), c.o.MaxBatch)
	}
	calls := make([]call, len(b.Batch))
	for i, raw := range b.Batch {
		rec, err := ingest.ParseObject(raw)
		if err != nil {
			return 0, fail(http.StatusBadRequest, rejectInvalid, "batch[%d]: %v", i, err)
		}
		calls[i] = call{raw: raw, rec: rec}
	}
	return c.produceCalls(ctx, calls, "batch")
}

// produceCalls resolves identities, converts and validates every call, and
// produces them all or nothing.
func (c *Collector) produceCalls(ctx context.Context, calls []call, where string) (int, error) {
	at := func(i int) string {
		if where == "" {
			return ""
		}
		return fmt.Sprintf("%s[%d]: ", where, i)
	}
	links, err := c.identities(ctx, calls)
	if err != nil {
		return 0, err
	}
	// alias calls only link ids; group calls are not read (counted in
	// cx_collect_ignored_total).
	events := calls[:0:0]
	ignored := 0
	for i, cl := range calls {
		switch t, _ := cl.rec["type"].(string); t {
		case "alias":
			if ids := ingest.IDs(cl.rec); ids.UserID == "" || previousID(cl.rec) == "" {
				return 0, fail(http.StatusBadRequest, rejectInvalid, "%salias: userId and previousId are required", at(i))
			}
		case "group":
			ignored++
		default:
			events = append(events, cl)
		}
	}
	calls = events
	recs := make([]*kgo.Record, 0, len(calls))
	received := time.Now().UTC().Format(time.RFC3339Nano)
	for i, cl := range calls {
		// As Segment's API does, a call without a time happened when it
		// was received. (The event id is hashed from the call as sent, so
		// a retry keeps it.)
		if cl.rec["timestamp"] == nil && cl.rec["originalTimestamp"] == nil {
			cl.rec["timestamp"] = received
		}
		canon, err := c.clicks.CanonicalRecord(cl.rec, cl.raw)
		if err != nil {
			return 0, fail(http.StatusBadRequest, rejectInvalid, "%s%v", at(i), err)
		}
		user, err := c.clicks.Validate(canon)
		if err != nil {
			return 0, fail(http.StatusBadRequest, rejectInvalid, "%s%v", at(i), err)
		}
		recs = append(recs, &kgo.Record{Topic: c.o.ClickTopic, Key: []byte(user), Value: canon})
	}
	// Links go first: if Kafka then fails, the client's retry makes the
	// same links again, so nothing is lost or doubled.
	if err := c.o.Links.linkAll(ctx, links); err != nil {
		return 0, fail(http.StatusServiceUnavailable, rejectIdentity, "identity store unavailable; retry")
	}
	if len(recs) > 0 {
		if err := c.produce(ctx, recs); err != nil {
			return 0, err
		}
	}
	c.m.events.WithLabelValues(string(ingest.Click)).Add(float64(len(recs)))
	c.m.links.Add(float64(len(links)))
	c.m.ignored.Add(float64(ignored))
	return len(recs), nil
}

// previousID is an alias call's previous id (string or number).
func previousID(rec ingest.JSONRecord) string {
	switch v := rec["previousId"].(type) {
	case string:
		return strings.TrimSpace(v)
	case json.Number:
		return v.String()
	}
	return ""
}

// identities rewrites calls sent under an anonymous id linked to a user
// id (by an earlier request, or an earlier call of this one) to that user
// id, and returns the links this request makes: identify calls, and
// login or signup events, that carry both ids.
func (c *Collector) identities(ctx context.Context, calls []call) (map[string]string, error) {
	if c.o.Links == nil {
		return nil, nil
	}
	var unknown []string
	for _, cl := range calls {
		if ids := ingest.IDs(cl.rec); ids.UserID == "" && ids.AnonymousID != "" {
			unknown = append(unknown, ids.AnonymousID)
		}
	}
	known, err := c.o.Links.Resolve(ctx, unknown)
	if err != nil {
		return nil, fail(http.StatusServiceUnavailable, rejectIdentity, "identity store unavailable; retry")
	}
	made := map[string]string{}
	for _, cl := range calls {
		ids := ingest.IDs(cl.rec)
		if t, _ := cl.rec["type"].(string); t == "alias" {
			ids.AnonymousID = previousID(cl.rec)
		}
		switch {
		case ids.UserID != "" && ids.AnonymousID != "" && ids.AnonymousID != ids.UserID && c.links(cl.rec):
			known[ids.AnonymousID] = ids.UserID
			made[ids.AnonymousID] = ids.UserID
		case ids.UserID == "" && ids.AnonymousID != "":
			if u, ok := known[ids.AnonymousID]; ok {
				cl.rec["userId"] = u
			}
		}
	}
	return made, nil
}

// links says whether a call links its anonymous id to its user id.
func (c *Collector) links(rec ingest.JSONRecord) bool {
	switch t, _ := rec["type"].(string); t {
	case "identify", "alias":
		return true
	case "track", "":
		name, _ := rec["event"].(string)
		role := c.o.Vocabulary.RoleOf(name)
		return role == schemas.RoleLogin || role == schemas.RoleSignup
	}
	return false
}

func (l *Links) linkAll(ctx context.Context, links map[string]string) error {
	if l == nil || len(links) == 0 {
		return nil
	}
	return l.Link(ctx, links)
}

// produce waits for Kafka's acknowledgement of every record.
func (c *Collector) produce(ctx context.Context, recs []*kgo.Record) error {
	pctx, cancel := context.WithTimeout(ctx, c.o.ProduceTimeout)
	defer cancel()
	if err := c.o.Producer.ProduceSync(pctx, recs...).FirstErr(); err != nil {
		c.o.Logger.Warn("produce failed; answering 503", zap.Int("records", len(recs)), zap.Error(err))
		return fail(http.StatusServiceUnavailable, rejectUnavailable, "kafka unavailable; retry")
	}
	return nil
}

// chatBody is one chat message or {"batch": [...]} of them.
func (c *Collector) chat(ctx context.Context, body []byte) (int, error) {
	var items []json.RawMessage
	trimmed := bytes.TrimSpace(body)
	var b batchBody
	if bytes.HasPrefix(trimmed, []byte("{")) && json.Unmarshal(trimmed, &b) == nil && b.Batch != nil {
		items = b.Batch
	} else {
		items = []json.RawMessage{trimmed}
	}
	if len(items) > c.o.MaxBatch {
		return 0, fail(http.StatusRequestEntityTooLarge, rejectTooLarge, "batch: %d messages over the limit of %d", len(items), c.o.MaxBatch)
	}
	recs := make([]*kgo.Record, 0, len(items))
	for i, raw := range items {
		canon, err := c.chats.Canonical(raw)
		if err == nil {
			var user string
			if user, err = c.chats.Validate(canon); err == nil {
				recs = append(recs, &kgo.Record{Topic: c.o.ChatTopic, Key: []byte(user), Value: canon})
				continue
			}
		}
		if len(items) > 1 {
			return 0, fail(http.StatusBadRequest, rejectInvalid, "batch[%d]: %v", i, err)
		}
		return 0, fail(http.StatusBadRequest, rejectInvalid, "%v", err)
	}
	if err := c.produce(ctx, recs); err != nil {
		return 0, err
	}
	c.m.events.WithLabelValues(string(ingest.Chat)).Add(float64(len(recs)))
	return len(recs), nil
}

// safeName quotes a short name from the request for an error message.
func safeName(s string) string {
	if len(s) > 32 || !schemas.ValidEventName(s) {
		return "unknown"
	}
	return strconv.Quote(s)
}
