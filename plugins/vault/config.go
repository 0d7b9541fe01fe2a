package main

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/hush-sh/hush/sdk/provider"
	"github.com/hush-sh/hush/sdk/provider/diag"
)

const defaultTimeout = 10 * time.Second

// maxRetries is how often the client retries a request that failed with
// a 5xx status or a connection error. Tests lower it.
var maxRetries = 2

// config is the plugin's config block.
type config struct {
	// Address is Vault's URL, like "https://vault.internal:8200". Required.
	Address string `json:"address"`
	// Token is a Vault token. One of Token, TokenFile and AppRole is set.
	Token string `json:"token"`
	// TokenFile is a file holding a token, read again for every batch, so
	// that a Vault Agent sink can rotate it.
	TokenFile string `json:"token_file"`
	// AppRole logs in with the AppRole auth method.
	AppRole *appRoleConfig `json:"approle"`
	// Namespace is the Vault Enterprise namespace. Default none.
	Namespace string `json:"namespace"`
	// KVVersion is the KV secrets engine version, 1 or 2. Default 2.
	KVVersion int `json:"kv_version"`
	// CACert is a PEM file of CAs that sign Vault's certificate. Default:
	// the system's roots.
	CACert string `json:"ca_cert"`
	// TLSSkipVerify turns off verification of Vault's certificate. For
	// tests only.
	TLSSkipVerify bool `json:"tls_skip_verify"`
	// Timeout bounds each request to Vault, as a duration. Default "10s".
	Timeout string `json:"timeout"`
}

// appRoleConfig is the approle setting.
type appRoleConfig struct {
	// RoleID is the role's ID. Required.
	RoleID string `json:"role_id"`
	// SecretID is the secret ID, if the role needs one.
	SecretID string `json:"secret_id"`
	// SecretIDFile is a file holding the secret ID, read at each login.
	SecretIDFile string `json:"secret_id_file"`
	// Mount is where the AppRole auth method is mounted. Default "approle".
	Mount string `json:"mount"`
}

// settings is a validated config with its client.
type settings struct {
	client    *api.Client
	auth      authenticator
	kvVersion int
}

// validate checks every setting, reporting every problem at once, and
// builds the client. It does not contact Vault.
func (c *config) validate() (*settings, []provider.Diagnostic) {
	var diags []provider.Diagnostic
	add := func(d ...provider.Diagnostic) { diags = append(diags, d...) }

	addr, d := checkAddress(c.Address)
	add(d...)
	auth, d := c.authenticator()
	add(d...)

	kv := c.KVVersion
	switch kv {
	case 0:
		kv = 2
	case 1, 2:
	default:
		add(diag.Error("kv_version", fmt.Sprintf("kv_version must be 1 or 2, not %d", kv), ""))
	}

	timeout, d := diag.Duration("timeout", c.Timeout, defaultTimeout)
	add(d...)

	apiCfg := api.DefaultConfig()
	if apiCfg.Error != nil {
		return nil, append(diags, diag.Error("", "set up the vault client", apiCfg.Error.Error()))
	}
	apiCfg.Address = addr
	apiCfg.Timeout = timeout
	apiCfg.MaxRetries = maxRetries
	if c.TLSSkipVerify {
		add(diag.Warning("tls_skip_verify", "tls_skip_verify is on: the plugin does not check who answers at address",
			"anyone on the path to Vault can read its tokens and secrets; set ca_cert instead"))
	}
	if d := diag.AbsPath("ca_cert", c.CACert); c.CACert != "" && d != nil {
		add(d...)
	} else if err := apiCfg.ConfigureTLS(&api.TLSConfig{CACert: c.CACert, Insecure: c.TLSSkipVerify}); err != nil {
		add(diag.Error("ca_cert", fmt.Sprintf("ca_cert %s cannot be used", c.CACert), err.Error()))
	}
	if diag.HasErrors(diags) {
		return nil, diags
	}

	client, err := api.NewClient(apiCfg)
	if err != nil {
		return nil, append(diags, diag.Error("address", "set up the vault client", err.Error()))
	}
	// Only this config decides: not VAULT_TOKEN or VAULT_NAMESPACE.
	client.ClearToken()
	client.ClearNamespace()
	if ns := strings.Trim(c.Namespace, "/"); ns != "" {
		client.SetNamespace(ns)
	}
	return &settings{client: client, auth: auth, kvVersion: kv}, diags
}

// checkAddress checks that address is an http or https URL.
func checkAddress(address string) (string, []provider.Diagnostic) {
	if address == "" {
		return "", []provider.Diagnostic{diag.Error("address", "address is required", `give Vault's URL, like "https://vault.internal:8200"`)}
	}
	u, err := url.Parse(address)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", []provider.Diagnostic{diag.Error("address", fmt.Sprintf("address %q is not an http or https URL", address), `write it like "https://vault.internal:8200"`)}
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return address, []provider.Diagnostic{diag.Warning("address", "address uses http: tokens and secrets cross the network unencrypted", "use https")}
	}
	return address, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// authenticator checks that exactly one way to authenticate is set.
func (c *config) authenticator() (authenticator, []provider.Diagnostic) {
	var set []string
	if c.Token != "" {
		set = append(set, "token")
	}
	if c.TokenFile != "" {
		set = append(set, "token_file")
	}
	if c.AppRole != nil {
		set = append(set, "approle")
	}
	switch {
	case len(set) == 0:
		return nil, []provider.Diagnostic{diag.Error("token", "set one of token, token_file or approle",
			"the plugin needs a way to authenticate to Vault")}
	case len(set) > 1:
		var diags []provider.Diagnostic
		for _, attr := range set[1:] {
			diags = append(diags, diag.Error(attr, fmt.Sprintf("%s cannot be set together with %s", attr, set[0]), "set only one of token, token_file or approle"))
		}
		return nil, diags
	}

	switch set[0] {
	case "token":
		return staticToken(c.Token), nil
	case "token_file":
		if d := readableFile("token_file", c.TokenFile); d != nil {
			return nil, d
		}
		return tokenFile(c.TokenFile), nil
	}

	a := c.AppRole
	var diags []provider.Diagnostic
	if a.RoleID == "" {
		diags = append(diags, diag.Error("approle.role_id", "approle.role_id is required", ""))
	}
	switch {
	case a.SecretID != "" && a.SecretIDFile != "":
		diags = append(diags, diag.Error("approle.secret_id_file", "approle.secret_id_file cannot be set together with approle.secret_id", "set only one"))
	case a.SecretIDFile != "":
		diags = append(diags, readableFile("approle.secret_id_file", a.SecretIDFile)...)
	}
	mount := strings.Trim(a.Mount, "/")
	if mount == "" {
		mount = "approle"
	}
	return &appRole{roleID: a.RoleID, secretID: a.SecretID, secretIDFile: a.SecretIDFile, mount: mount}, diags
}

// readableFile checks that a file setting names a file the plugin can
// read now. Its contents are read when they are needed.
func readableFile(attr, path string) []provider.Diagnostic {
	if d := diag.AbsPath(attr, path); d != nil {
		return d
	}
	f, err := os.Open(path)
	switch {
	case os.IsNotExist(err):
		return []provider.Diagnostic{diag.Error(attr, fmt.Sprintf("%s %s does not exist", attr, path), "create it or fix the path")}
	case os.IsPermission(err):
		return []provider.Diagnostic{diag.Error(attr, fmt.Sprintf("%s %s is not readable by the plugin", attr, path), "the plugin runs as the agent's user; grant it read access")}
	case err != nil:
		return []provider.Diagnostic{diag.Error(attr, fmt.Sprintf("%s %s cannot be read", attr, path), err.Error())}
	}
	f.Close()
	return nil
}
