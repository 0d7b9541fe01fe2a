package agent

import (
	"fmt"

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
