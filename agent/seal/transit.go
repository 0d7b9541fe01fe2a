package seal

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/api"
	"github.com/hush-sh/hush/agent/config"
)

// Transit is seal "transit": Vault's (or OpenBao's) Transit engine
// encrypts and decrypts the keyring with a key that never leaves Vault,
// as Vault's own auto-unseal does.
type Transit struct {
	client *api.Client
	mount  string
	key    string
	logger hclog.Logger
}

// NewTransit returns the Transit seal that cfg describes. The address,
// token and TLS files default to Vault's own environment variables
// (VAULT_ADDR, VAULT_TOKEN, VAULT_CACERT, ...).
func NewTransit(cfg *config.SealConfig, logger hclog.Logger) (*Transit, error) {
	conf := api.DefaultConfig()
	if conf.Error != nil {
		return nil, fmt.Errorf("seal \"transit\": %w", conf.Error)
	}
	if cfg.Address != "" {
		conf.Address = cfg.Address
	}
	if cfg.TLSCACert != "" || cfg.TLSClientCert != "" || cfg.TLSClientKey != "" || cfg.TLSServerName != "" {
		tlsConf := &api.TLSConfig{CACert: cfg.TLSCACert, ClientCert: cfg.TLSClientCert, ClientKey: cfg.TLSClientKey, TLSServerName: cfg.TLSServerName}
		if err := conf.ConfigureTLS(tlsConf); err != nil {
			return nil, fmt.Errorf("seal \"transit\": configure TLS: %w", err)
		}
	}
	client, err := api.NewClient(conf)
	if err != nil {
		return nil, fmt.Errorf("seal \"transit\": %w", err)
	}
	if cfg.Token != "" {
		client.SetToken(cfg.Token)
	}
	if client.Token() == "" {
		return nil, errors.New("seal \"transit\": no Vault token: set token in the seal block or VAULT_TOKEN; it needs update on " +
			"<mount_path>/encrypt/<key_name> and <mount_path>/decrypt/<key_name>")
	}
	if cfg.Namespace != "" {
		client.SetNamespace(cfg.Namespace)
	}
	mount := strings.Trim(cfg.MountPath, "/")
	if mount == "" {
		mount = config.DefaultTransitMount
	}
	if cfg.KeyName == "" {
		return nil, errors.New("seal \"transit\": key_name is missing: name the Transit key that wraps the keyring")
	}
	return &Transit{client: client, mount: mount, key: cfg.KeyName, logger: logger}, nil
}

// Kind returns "transit".
func (t *Transit) Kind() string { return "transit" }

// Wrap has Transit encrypt plaintext; the ciphertext is Transit's own
// "vault:v1:..." string.
func (t *Transit) Wrap(ctx context.Context, plaintext []byte) ([]byte, error) {
	path := t.mount + "/encrypt/" + t.key
	sec, err := t.client.Logical().WriteWithContext(ctx, path, map[string]any{
		"plaintext": base64.StdEncoding.EncodeToString(plaintext),
	})
	if err != nil {
		return nil, fmt.Errorf("transit encrypt at %s%s: %w", t.client.Address(), "/v1/"+path, err)
	}
	ct, _ := field(sec, "ciphertext")
	if ct == "" {
		return nil, fmt.Errorf("transit encrypt at %s: the response holds no ciphertext", path)
	}
	return []byte(ct), nil
}

// Unwrap has Transit decrypt what Wrap returned.
func (t *Transit) Unwrap(ctx context.Context, ciphertext []byte) ([]byte, error) {
	path := t.mount + "/decrypt/" + t.key
	sec, err := t.client.Logical().WriteWithContext(ctx, path, map[string]any{"ciphertext": string(ciphertext)})
	if err != nil {
		return nil, fmt.Errorf("transit decrypt at %s%s: %w", t.client.Address(), "/v1/"+path, err)
	}
	pt, ok := field(sec, "plaintext")
	if !ok {
		return nil, fmt.Errorf("transit decrypt at %s: the response holds no plaintext", path)
	}
	plain, err := base64.StdEncoding.DecodeString(pt)
	if err != nil {
		return nil, fmt.Errorf("transit decrypt at %s: the plaintext is not base64", path)
	}
	return plain, nil
}

// field returns a string field of a response's data.
func field(sec *api.Secret, name string) (string, bool) {
	if sec == nil || sec.Data == nil {
		return "", false
	}
	v, ok := sec.Data[name].(string)
	return v, ok
}
