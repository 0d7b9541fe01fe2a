package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// requestMetrics count the API's requests by route and status, and time
// them by route. The route is the pattern that matched, so that names in
// paths never become labels.
type requestMetrics struct {
	total   *prometheus.CounterVec
	seconds *prometheus.HistogramVec
}

func newRequestMetrics() *requestMetrics {
	return &requestMetrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hush_http_requests_total",
			Help: "API requests, by route and status code.",
		}, []string{"route", "code"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hush_http_request_seconds",
			Help:    "Time to answer an API request, by route; streamed logs and watches last as long as they follow.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"route"}),
	}
}

func (m *requestMetrics) observe(r *http.Request, status int, d time.Duration) {
	route := r.Pattern
	if route == "" {
		route = "unmatched"
	}
	m.total.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.seconds.WithLabelValues(route).Observe(d.Seconds())
}

// Collectors returns the server's metrics.
func (s *Server) Collectors() []prometheus.Collector {
	return []prometheus.Collector{s.requests.total, s.requests.seconds}
}

// ServeMetrics serves what g gathers at /v1/metrics, to management tokens.
func (s *Server) ServeMetrics(g prometheus.Gatherer) {
	metrics := MetricsHandler(g)
	s.mux.Handle("GET /v1/metrics", s.authed(func(w http.ResponseWriter, r *http.Request, tok *store.Token) {
		if !tok.Management {
			writeError(w, api.CodeForbidden, "metrics are for management tokens, or an agent's metrics_bind listener")
			return
		}
		metrics.ServeHTTP(w, r)
	}))
}

// MetricsHandler serves what g gathers in Prometheus's text format.
func MetricsHandler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{})
}
