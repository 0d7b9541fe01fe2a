package store

import (
	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
)

// storeMetrics are the store's Prometheus metrics, made when it opens
// rather than at package init, which every hush process runs.
type storeMetrics struct {
	commitSeconds prometheus.Histogram
	commitWrites  prometheus.Histogram
	secrets       *prometheus.Desc
}

func newStoreMetrics() *storeMetrics {
	return &storeMetrics{
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hush_store_commit_seconds",
			Help:    "Time to commit one transaction of the store, fsync included.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		commitWrites: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hush_store_commit_writes",
			Help:    "Writes that shared one transaction of the store.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		secrets: prometheus.NewDesc("hush_secrets", "Secrets in the store, by type.", []string{"type"}, nil),
	}
}

// Collectors returns the store's metrics: commit latency and group size,
// and the secrets it holds by type, counted when they are scraped.
func (s *Store) Collectors() []prometheus.Collector {
	return []prometheus.Collector{s.metrics.commitSeconds, s.metrics.commitWrites, secretCounter{s}}
}

// secretCounter counts the store's secrets by type at each scrape. It
// reads the unsealed header of each record, and opens none.
type secretCounter struct{ s *Store }

func (c secretCounter) Describe(ch chan<- *prometheus.Desc) { ch <- c.s.metrics.secrets }

func (c secretCounter) Collect(ch chan<- prometheus.Metric) {
	counts := map[string]int{}
	c.s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSecrets).ForEachBucket(func(owner []byte) error {
			return tx.Bucket(bucketSecrets).Bucket(owner).ForEach(func(name, rec []byte) error {
				typ := "unreadable"
				if h := c.s.recordHeader(string(owner), string(name), rec); h != nil {
					typ = string(h.Type)
				}
				counts[typ]++
				return nil
			})
		})
	})
	for typ, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.s.metrics.secrets, prometheus.GaugeValue, float64(n), typ)
	}
}
