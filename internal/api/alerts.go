package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/cxstream/cxstream/schemas"
)

// Hub reads the alert topic (from its end, no consumer group: every api
// process sees every alert) and fans the alerts out to the stream's
// subscribers. A subscriber that falls behind by more than its buffer is
// cut off; its client reconnects.
type Hub struct {
	cl   *kgo.Client
	log  *zap.Logger
	mu   sync.Mutex
	subs map[*subscription]struct{}
}

type subscription struct {
	types       map[string]bool // empty: all
	minPriority int
	ch          chan hubAlert
}

type hubAlert struct {
	id   string
	body []byte
}

// NewHub returns a hub reading with cl, which must consume the alert
// topic.
func NewHub(cl *kgo.Client, log *zap.Logger) *Hub {
	if log == nil {
		log = zap.NewNop()
	}
	return &Hub{cl: cl, log: log, subs: map[*subscription]struct{}{}}
}

// Run reads until ctx is done.
func (h *Hub) Run(ctx context.Context) error {
	for {
		fs := h.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(topic string, p int32, err error) {
			h.log.Warn("alert topic fetch failed", zap.String("topic", topic), zap.Int32("partition", p), zap.Error(err))
		})
		fs.EachRecord(func(r *kgo.Record) {
			if r.Value == nil {
				return // an erasure tombstone: nothing to show
			}
			var a schemas.Alert
			if err := json.Unmarshal(r.Value, &a); err != nil {
				h.log.Warn("undecodable alert on the topic", zap.Int32("partition", r.Partition), zap.Int64("offset", r.Offset), zap.Error(err))
				return
			}
			h.broadcast(a, r.Value)
		})
	}
}

func (h *Hub) broadcast(a schemas.Alert, body []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if (len(s.types) > 0 && !s.types[a.Type]) || a.Priority.Rank() < s.minPriority {
			continue
		}
		select {
		case s.ch <- hubAlert{id: a.AlertID, body: body}:
		default:
			// Too slow: end its stream rather than stall the others.
			delete(h.subs, s)
			close(s.ch)
		}
	}
}

func (h *Hub) subscribe(types map[string]bool, minPriority int) *subscription {
	s := &subscription{types: types, minPriority: minPriority, ch: make(chan hubAlert, 256)}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

func (h *Hub) unsubscribe(s *subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.ch)
	}
}

var alertTypes = func() map[string]bool {
	m := map[string]bool{}
	for _, t := range schemas.AlertTypes {
		m[t] = true
	}
	return m
}()

// alertStream serves Server-Sent Events: one "alert" event per alert
// (id = alert_id, data = the alert JSON), a comment every 15 s to keep
// proxies from closing the connection. ?type=a,b and ?min_priority=HIGH
// filter.
func (s *Server) alertStream(w http.ResponseWriter, r *http.Request, who Principal) {
	if s.o.Alerts == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the alert stream is not configured on this server")
		return
	}
	types := map[string]bool{}
	if v := r.URL.Query().Get("type"); v != "" {
		for _, t := range strings.Split(v, ",") {
			if !alertTypes[t] {
				writeError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("unknown alert type %q (one of %s)", t, strings.Join(schemas.AlertTypes, ", ")))
				return
			}
			types[t] = true
		}
	}
	minRank := 0
	if v := r.URL.Query().Get("min_priority"); v != "" {
		if minRank = schemas.Priority(strings.ToUpper(v)).Rank(); minRank < 0 {
			writeError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("unknown priority %q (LOW, NORMAL, HIGH, URGENT)", v))
			return
		}
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	sub := s.o.Alerts.subscribe(types, minRank)
	defer s.o.Alerts.unsubscribe(sub)
	s.audit(who, "alerts.stream")
	// A client that stops reading without closing must not hold the
	// handler (and a shutdown) forever: every write has a deadline.
	const writeWithin = 30 * time.Second
	_ = rc.SetWriteDeadline(time.Now().Add(writeWithin))
	if _, err := fmt.Fprint(w, ": connected\n\n"); err != nil || rc.Flush() != nil {
		return
	}
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	for {
		var err error
		select {
		case <-r.Context().Done():
			return
		case <-ping.C:
			_ = rc.SetWriteDeadline(time.Now().Add(writeWithin))
			_, err = fmt.Fprint(w, ": ping\n\n")
		case a, ok := <-sub.ch:
			if !ok {
				return
			}
			_ = rc.SetWriteDeadline(time.Now().Add(writeWithin))
			_, err = fmt.Fprintf(w, "id: %s\nevent: alert\ndata: %s\n\n", a.id, a.body)
		}
		if err != nil || rc.Flush() != nil {
			return
		}
	}
}
