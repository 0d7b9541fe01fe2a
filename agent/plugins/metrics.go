package plugins

import (
	"github.com/prometheus/client_golang/prometheus"
)

// hostMetrics are the plugin host's Prometheus metrics.
type hostMetrics struct {
	resolveSeconds *prometheus.HistogramVec
	resolveErrors  *prometheus.CounterVec
	restarts       *prometheus.Desc
}

func newHostMetrics() *hostMetrics {
	return &hostMetrics{
		resolveSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hush_plugin_resolve_seconds",
			Help:    "Time a provider plugin took to resolve references, by plugin.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"plugin"}),
		resolveErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hush_plugin_resolve_errors_total",
			Help: "Resolves by a provider plugin that failed, by plugin.",
		}, []string{"plugin"}),
		restarts: prometheus.NewDesc("hush_plugin_restarts_total", "Restarts of a provider plugin, by plugin.", []string{"plugin"}, nil),
	}
}

// Collectors returns the host's metrics: resolve latency and errors, and
// restarts, by plugin.
func (h *Host) Collectors() []prometheus.Collector {
	return []prometheus.Collector{h.metrics.resolveSeconds, h.metrics.resolveErrors, pluginRestarts{h}}
}

// pluginRestarts reports each plugin's restarts at each scrape.
type pluginRestarts struct{ h *Host }

func (c pluginRestarts) Describe(ch chan<- *prometheus.Desc) { ch <- c.h.metrics.restarts }

func (c pluginRestarts) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.h.Status() {
		ch <- prometheus.MustNewConstMetric(c.h.metrics.restarts, prometheus.CounterValue, float64(st.Restarts), st.Name)
	}
}
