package agent

import (
	"fmt"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/config"
	"github.com/hush-sh/hush/agent/pki"
	"github.com/hush-sh/hush/agent/store"
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
	return srv, nil
}

// runCertIssuer returns, with verify_incoming, the agent's run CA and what
// mints a client certificate for a run with it, so that runs can call
// their agent; otherwise nil and nil. The CA lives sealed in the store,
// the same across restarts, so that adopted runs keep working.
func runCertIssuer(cfg *config.Config, st *store.Store) (*pki.RunCA, func(id string) ([]byte, []byte, error), error) {
	if cfg.TLS == nil || !cfg.TLS.VerifyIncoming {
		return nil, nil, nil
	}
	certPEM, keyPEM, err := st.RunCA()
	if err != nil {
		return nil, nil, fmt.Errorf("set up run certificates: %w", err)
	}
	ca, err := pki.LoadRunCA(&pki.PEM{Cert: certPEM, Key: keyPEM})
	if err != nil {
		return nil, nil, fmt.Errorf("set up run certificates: %w", err)
	}
	issue := func(id string) ([]byte, []byte, error) {
		p, err := ca.Issue(id)
		if err != nil {
			return nil, nil, err
		}
		return p.Cert, p.Key, nil
	}
	return ca, issue, nil
}
