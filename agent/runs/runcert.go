package runs

import (
	"fmt"
	"os"
	"path/filepath"
)

// A run's client certificate and key on its tmpfs, with mutual TLS.
const (
	clientCertFile = "client.pem"
	clientKeyFile  = "client-key.pem"
)

// writeRunCert writes the client certificate that cfg.RunCert mints for
// run id to the run's tmpfs at runDir, both files 0400 as the token is,
// and reports whether it did: without RunCert (an agent without
// verify_incoming) a run needs none.
func (m *Manager) writeRunCert(runDir, id string) (bool, error) {
	if m.cfg.RunCert == nil {
		return false, nil
	}
	cert, key, err := m.cfg.RunCert(id)
	if err != nil {
		return false, fmt.Errorf("issue the run's client certificate: %w", err)
	}
	// The key first: a certificate without its key is of no use.
	if err := os.WriteFile(filepath.Join(runDir, clientKeyFile), key, 0o400); err != nil {
		return false, fmt.Errorf("write the run's client key: %w", err)
	}
	if err := os.WriteFile(filepath.Join(runDir, clientCertFile), cert, 0o400); err != nil {
		return false, fmt.Errorf("write the run's client certificate: %w", err)
	}
	return true, nil
}

// Live reports whether run id is active on this agent: starting, running
// or adopted, and not yet ended. A run's client certificate is good only
// while it is; this is called on every handshake that presents one.
func (m *Manager) Live(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.active[id] != nil
}
