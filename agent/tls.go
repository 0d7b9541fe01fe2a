package agent

import (
	"fmt"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/config"
	"github.com/hush-sh/hush/agent/pki"
)

// setupTLS loads the tls block's files, or returns nil without one. An
// agent without TLS on an address other hosts reach (which validation lets
// through only with insecure_http) warns that tokens cross the network in
// clear text.
func setupTLS(cfg *config.Config, logger hclog.Logger) (*pki.Server, error) {
	if cfg.TLS == nil {
		if !config.IsLoopbackBind(cfg.Bind) {
			logger.Warn("!!! SERVING PLAIN HTTP ON A NETWORK ADDRESS (insecure_http): tokens and the secrets they open cross the network in clear text; "+
				"use this only behind a TLS-terminating proxy, or add a tls block", "bind", cfg.Bind)
		}
		return nil, nil
	}
	t := cfg.TLS
	srv, err := pki.NewServer(pki.ServerFiles{
		CertFile: t.CertFile, KeyFile: t.KeyFile, CAFile: t.CAFile,
		VerifyIncoming: t.VerifyIncoming, MinVersion: t.MinTLSVersion(),
	}, logger.Named("tls"))
	if err != nil {
		return nil, fmt.Errorf("set up TLS: %w", err)
	}
	if t.VerifyIncoming {
		// Runs get no client certificate of their own yet.
		logger.Warn("verify_incoming is set: runs on this agent cannot call it, as they have no client certificate")
	}
	return srv, nil
}

// reloads are what SIGHUP reloads: the TLS files, and the audit log,
// which is opened again for logrotate. Parts of the agent add to it as
// they start.
type reloads struct {
	mu  sync.Mutex
	fns []func()
}

func (r *reloads) add(fn func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fns = append(r.fns, fn)
}

// reloadOnSIGHUP runs what r holds on each SIGHUP until the returned
// function is called. With nothing to reload it only keeps SIGHUP from
// ending the agent, as operators send it to any daemon after changing its
// files.
func reloadOnSIGHUP(r *reloads, logger hclog.Logger) (stop func()) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-sigs:
				r.mu.Lock()
				fns := slices.Clone(r.fns)
				r.mu.Unlock()
				if len(fns) == 0 {
					logger.Info("SIGHUP received; nothing to reload")
				}
				for _, fn := range fns {
					fn()
				}
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
	}
}
