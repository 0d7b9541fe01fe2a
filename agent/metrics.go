package agent

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/config"
	"github.com/hush-sh/hush/agent/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metricSource is a part of the agent with metrics of its own.
type metricSource interface {
	Collectors() []prometheus.Collector
}

// serveMetrics gathers the metrics of the agent's parts, with the Go
// runtime's and the process's, and serves them at /v1/metrics to
// management tokens and, when metrics_bind is set, to anyone on that
// listener, which is what the returned Closer stops.
func serveMetrics(cfg *config.Config, srv *server.Server, logger hclog.Logger, sources ...metricSource) (io.Closer, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, src := range append(sources, srv) {
		reg.MustRegister(src.Collectors()...)
	}
	srv.ServeMetrics(reg)
	if cfg.MetricsBind == "" {
		return io.NopCloser(nil), nil
	}
	ln, err := net.Listen("tcp", cfg.MetricsBind)
	if err != nil {
		return nil, fmt.Errorf("listen for metrics on %s: %w (choose another metrics_bind)", cfg.MetricsBind, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /v1/metrics", server.MetricsHandler(reg))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: time.Minute}
	go hs.Serve(ln)
	logger.Info("serving metrics without a token", "addr", "http://"+ln.Addr().String()+"/v1/metrics")
	return closerFunc(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return hs.Shutdown(ctx)
	}), nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }
