package runs

import (
	"github.com/hush-sh/hush/sdk/api"
	"github.com/prometheus/client_golang/prometheus"
)

// runMetrics are the run manager's Prometheus metrics.
type runMetrics struct {
	startSeconds prometheus.Histogram
	ended        *prometheus.CounterVec
	active       *prometheus.Desc
}

func newRunMetrics() *runMetrics {
	return &runMetrics{
		startSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hush_run_start_seconds",
			Help:    "Time from a run's submit to its workload running, waits for room included.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hush_runs_ended_total",
			Help: "Runs that ended since the agent started, by final status.",
		}, []string{"status"}),
		active: prometheus.NewDesc("hush_runs", "Runs that have not ended, by status.", []string{"status"}, nil),
	}
}

// Collectors returns the run manager's metrics: runs by status, runs
// ended, and the time runs take to start.
func (m *Manager) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.metrics.startSeconds, m.metrics.ended, activeRuns{m}}
}

// activeRuns counts the active runs by status at each scrape.
type activeRuns struct{ m *Manager }

func (c activeRuns) Describe(ch chan<- *prometheus.Desc) { ch <- c.m.metrics.active }

func (c activeRuns) Collect(ch chan<- prometheus.Metric) {
	counts := map[api.RunStatus]int{api.RunPending: 0, api.RunStarting: 0, api.RunRunning: 0, api.RunTerminating: 0}
	c.m.mu.Lock()
	for _, ar := range c.m.active {
		counts[ar.run.Status]++
	}
	c.m.mu.Unlock()
	for status, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.m.metrics.active, prometheus.GaugeValue, float64(n), string(status))
	}
}
