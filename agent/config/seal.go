package config

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Seal kinds, the label of a seal block.
const (
	SealFile    = "file"
	SealEnv     = "env"
	SealTransit = "transit"
)

// Defaults of the seal block.
const (
	// DefaultSealKeySuffix makes a non-dev agent's default seal key file:
	// the data dir's path with this suffix, beside the data dir and not in
	// it, as /var/lib/hush.seal.key for /var/lib/hush.
	DefaultSealKeySuffix = ".seal.key"
	DefaultSealEnvVar    = "HUSH_SEAL_KEY"
	DefaultTransitMount  = "transit"
)

// SealConfig is a seal "KIND" block: the keyring in the data dir is kept
// wrapped with a key-encryption key kept elsewhere, so that a copy of the
// data dir alone opens nothing. Without a block, a non-dev agent with a
// data dir uses seal "file" with its key at <data_dir>.seal.key; a dev
// agent uses none. A data dir keeps the seal it was first wrapped with.
type SealConfig struct {
	// Kind is "file", "env" or "transit".
	Kind string `hcl:"kind,label"`

	// Path, file only, is the 32-byte key file, outside the data dir; it
	// is created 0400 on first start and refused when group or other can
	// read it. Default <data_dir>.seal.key.
	Path string `hcl:"path,optional"`

	// Var, env only, names the environment variable that holds the key:
	// base64 of 32 bytes. Default HUSH_SEAL_KEY.
	Var string `hcl:"var,optional"`

	// Address, transit only, is Vault's (or OpenBao's) URL. Default
	// VAULT_ADDR.
	Address string `hcl:"address,optional"`
	// Token, transit only, may use the key's encrypt and decrypt paths.
	// Default VAULT_TOKEN.
	Token string `hcl:"token,optional"`
	// KeyName, transit only, is the Transit key. Required.
	KeyName string `hcl:"key_name,optional"`
	// MountPath, transit only, is where the Transit engine is mounted.
	// Default "transit".
	MountPath string `hcl:"mount_path,optional"`
	// Namespace, transit only, is the Vault Enterprise namespace. Default
	// none.
	Namespace string `hcl:"namespace,optional"`
	// TLSCACert, transit only, is the PEM CA file that signs Vault's
	// certificate. Default: the system's roots (or VAULT_CACERT).
	TLSCACert string `hcl:"tls_ca_cert,optional"`
	// TLSClientCert and TLSClientKey, transit only, are a PEM client
	// certificate and key for Vault's mutual TLS. Default none.
	TLSClientCert string `hcl:"tls_client_cert,optional"`
	TLSClientKey  string `hcl:"tls_client_key,optional"`
	// TLSServerName, transit only, is the name expected in Vault's
	// certificate. Default: the address's host.
	TLSServerName string `hcl:"tls_server_name,optional"`

	// DeclRange is where the block was declared.
	DeclRange hcl.Range
}

// DefaultSealPath returns a non-dev agent's default seal key file for
// dataDir: beside it, with DefaultSealKeySuffix.
func DefaultSealPath(dataDir string) string {
	// Absolute, so that the agent and offline tools started elsewhere
	// find the same key.
	if abs, err := filepath.Abs(dataDir); err == nil {
		dataDir = abs
	}
	return filepath.Clean(dataDir) + DefaultSealKeySuffix
}

// SealFor returns the seal block that applies, with defaults filled in:
// the configured one, or, for a non-dev agent with a data dir, seal "file"
// beside the data dir; nil for a dev agent without a seal block.
func (c *Config) SealFor(dev bool) *SealConfig {
	var s SealConfig
	switch {
	case c.Seal != nil:
		s = *c.Seal
	case dev || c.DataDir == "":
		return nil
	default:
		s.Kind = SealFile
	}
	switch s.Kind {
	case SealFile:
		if s.Path == "" && c.DataDir != "" {
			s.Path = DefaultSealPath(c.DataDir)
		}
	case SealEnv:
		if s.Var == "" {
			s.Var = DefaultSealEnvVar
		}
	case SealTransit:
		if s.MountPath == "" {
			s.MountPath = DefaultTransitMount
		}
	}
	return &s
}

// Inside reports whether path is dir or lies under it.
func Inside(path, dir string) bool {
	rel, err := filepath.Rel(filepath.Clean(dir), filepath.Clean(path))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func (c *Config) validateSeal(bad func(key, summary, detail string, fallback *hcl.Range)) {
	s := c.Seal
	if s == nil {
		return
	}
	decl := s.DeclRange
	at := func(attr string) string { return "seal." + s.Kind + "." + attr }
	switch s.Kind {
	case SealFile:
		switch {
		case s.Path == "" && c.DataDir == "":
			bad("", "Missing seal key path", "seal \"file\" needs path, such as /etc/hush/seal.key, when the agent has no data_dir to put it beside.", &decl)
		case s.Path != "" && !filepath.IsAbs(s.Path):
			bad(at("path"), "Invalid seal key path", fmt.Sprintf("%q must be an absolute path.", s.Path), &decl)
		case s.Path != "" && c.DataDir != "" && Inside(s.Path, c.DataDir):
			bad(at("path"), "Seal key inside the data dir",
				fmt.Sprintf("%q is inside the data dir %q, so a copy of the data dir would open everything: keep the key elsewhere, such as /etc/hush/seal.key.", s.Path, c.DataDir), &decl)
		}
	case SealEnv:
	case SealTransit:
		if s.KeyName == "" {
			bad("", "Missing key_name", "seal \"transit\" needs key_name: the Transit key that wraps the keyring (`vault write -f transit/keys/hush`).", &decl)
		}
		if strings.Trim(s.MountPath, "/") == "" && s.MountPath != "" {
			bad(at("mount_path"), "Invalid mount_path", fmt.Sprintf("%q names no mount.", s.MountPath), &decl)
		}
	default:
		bad("", "Unknown seal kind", fmt.Sprintf("seal %q: the kinds are %q, %q and %q.", s.Kind, SealFile, SealEnv, SealTransit), &decl)
	}
}
