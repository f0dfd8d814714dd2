package collect

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

type collectorMetrics struct {
	requests *prometheus.CounterVec // endpoint, code
	rejected *prometheus.CounterVec // endpoint, reason
	events   *prometheus.CounterVec // stream
	seconds  *prometheus.HistogramVec
	links    prometheus.Counter
	ignored  prometheus.Counter
}

var (
	endpoints = []string{"track", "page", "screen", "identify", "alias", "group", "batch", "chat"}
	codes     = []int{200, 400, 401, 413, 429, 500, 503}
)

// newMetrics registers the collector's series, each label value it knows
// at 0 from the start.
func newMetrics(r prometheus.Registerer) (collectorMetrics, error) {
	m := collectorMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cx_collect_requests_total", Help: "Collector requests answered, by endpoint and HTTP status."}, []string{"endpoint", "code"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cx_collect_rejected_total", Help: "Collector requests not accepted, by endpoint and reason."}, []string{"endpoint", "reason"}),
		events:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cx_collect_events_total", Help: "Events the collector produced and Kafka acknowledged, by stream."}, []string{"stream"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cx_collect_request_seconds", Help: "Time to answer a collector request, by endpoint.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"endpoint"}),
		links:   prometheus.NewCounter(prometheus.CounterOpts{Name: "cx_collect_identity_links_total", Help: "Anonymous ids linked to a user id by identify and alias calls and login or signup events."}),
		ignored: prometheus.NewCounter(prometheus.CounterOpts{Name: "cx_collect_ignored_total", Help: "Segment group calls accepted and not read."}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.rejected, m.events, m.seconds, m.links, m.ignored} {
		if err := r.Register(c); err != nil {
			return m, err
		}
	}
	for _, e := range endpoints {
		for _, code := range codes {
			m.requests.WithLabelValues(e, strconv.Itoa(code))
		}
		for _, reason := range rejectReasons {
			m.rejected.WithLabelValues(e, reason)
		}
		m.seconds.WithLabelValues(e)
	}
	m.events.WithLabelValues("clickstream")
	m.events.WithLabelValues("chat")
	return m, nil
}
