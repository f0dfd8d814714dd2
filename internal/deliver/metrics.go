package deliver

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Failure classes of an attempt: the values of the reason label and of
// the dead-letter header cx-reason.
const (
	FailTimeout    = "timeout"    // no answer within the destination's timeout
	FailConnection = "connection" // DNS, refused, reset, TLS
	FailStatus3xx  = "status_3xx" // redirects are not followed
	FailStatus4xx  = "status_4xx" // rejected: not retried (but 408 and 429)
	FailStatus429  = "status_429" // rate limited (and 408): retried
	FailStatus5xx  = "status_5xx" // server error: retried
)

var failureClasses = []string{FailTimeout, FailConnection, FailStatus3xx, FailStatus4xx, FailStatus429, FailStatus5xx}

// Metrics are the delivery process's series. Every destination's series
// exist from the start at 0.
type Metrics struct {
	Delivered    *prometheus.CounterVec   // destination
	Failures     *prometheus.CounterVec   // destination, reason
	Retries      *prometheus.CounterVec   // destination
	DeadLettered *prometheus.CounterVec   // destination
	Filtered     *prometheus.CounterVec   // destination
	Latency      *prometheus.HistogramVec // destination
	Invalid      prometheus.Counter
	Pending      prometheus.Gauge
	InFlight     prometheus.Gauge
	Commits      *prometheus.CounterVec // result
}

func newMetrics(reg prometheus.Registerer, destinations []string) *Metrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		reg.MustRegister(c)
		return c
	}
	gauge := func(name, help string) prometheus.Gauge {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
		reg.MustRegister(g)
		return g
	}
	m := &Metrics{
		Delivered:    counter("cx_deliver_delivered_total", "Alerts a destination accepted (2xx), by destination.", "destination"),
		Failures:     counter("cx_deliver_failures_total", "Failed delivery attempts, by destination and reason.", "destination", "reason"),
		Retries:      counter("cx_deliver_retries_total", "Attempts scheduled again after a failure, by destination.", "destination"),
		DeadLettered: counter("cx_deliver_dead_lettered_total", "Alerts sent to a destination's dead-letter topic, by destination.", "destination"),
		Filtered:     counter("cx_deliver_filtered_total", "Alerts a destination's filters (type, min_priority) left out, by destination.", "destination"),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cx_deliver_latency_seconds",
			Help:    "From the alert record's Kafka timestamp to the destination's 2xx, by destination.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 16)}, []string{"destination"}),
		Invalid:  counter("cx_deliver_invalid_total", "Records on the alert topic that are not valid alerts (logged, skipped).").WithLabelValues(),
		Pending:  gauge("cx_deliver_pending", "Alert records read and not yet delivered or dead-lettered everywhere."),
		InFlight: gauge("cx_deliver_in_flight", "HTTP requests in flight."),
		Commits:  counter("cx_deliver_offset_commits_total", "Offset commits, by result.", "result"),
	}
	reg.MustRegister(m.Latency)
	for _, d := range destinations {
		m.Delivered.WithLabelValues(d)
		m.Retries.WithLabelValues(d)
		m.DeadLettered.WithLabelValues(d)
		m.Filtered.WithLabelValues(d)
		m.Latency.WithLabelValues(d)
		for _, f := range failureClasses {
			m.Failures.WithLabelValues(d, f)
		}
	}
	m.Commits.WithLabelValues("ok")
	m.Commits.WithLabelValues("error")
	return m
}
