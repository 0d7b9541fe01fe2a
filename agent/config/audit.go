package config

import (
	"fmt"
	"path/filepath"

	"github.com/hashicorp/hcl/v2"
)

// AuditConfig is the audit block: the agent writes one JSON line for each
// authenticated request as it comes and as it ends, each run that starts
// and each provider reference resolved, with tokens HMAC'd and no value
// ever; a request whose line cannot be written is refused.
type AuditConfig struct {
	// Path is the audit log file, created 0600. Required; SIGHUP reopens
	// it, for logrotate.
	Path string `hcl:"path"`
}

func (c *Config) validateAudit(bad func(key, summary, detail string, fallback *hcl.Range)) {
	if c.Audit == nil {
		return
	}
	if !filepath.IsAbs(c.Audit.Path) {
		bad("audit.path", "Invalid audit log path", fmt.Sprintf("%q must be an absolute path.", c.Audit.Path), nil)
	}
}
