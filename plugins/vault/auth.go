package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"
)

// authenticator supplies the token for a batch of reads.
type authenticator interface {
	// token returns the token to use now.
	token(ctx context.Context, client *api.Client) (string, error)
	// forget drops a cached token that Vault refused, so that the next
	// token call gets a fresh one if there is any.
	forget(token string)
}

// staticToken is a token given in the config.
type staticToken string

func (t staticToken) token(context.Context, *api.Client) (string, error) { return string(t), nil }
func (t staticToken) forget(string)                                      {}

// tokenFile is a file holding a token, read every time so that whatever
// writes it (a Vault Agent sink) can rotate it.
type tokenFile string

func (f tokenFile) token(context.Context, *api.Client) (string, error) {
	return readSecretFile("token_file", string(f))
}

func (f tokenFile) forget(string) {}

// readSecretFile reads a token or secret ID, without its surrounding
// whitespace. Errors name the setting and the path, never the contents.
func readSecretFile(attr, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", attr, err)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return "", fmt.Errorf("read %s: %s is empty", attr, path)
	}
	return string(b), nil
}

// appRole logs in with the AppRole auth method and keeps the token until
// most of its lease has passed or Vault refuses it.
type appRole struct {
	roleID       string
	secretID     string
	secretIDFile string
	mount        string

	mu      sync.Mutex
	current string
	renewAt time.Time // zero: the token does not expire
}

// renewFraction is how much of a token's lease may pass before the next
// batch logs in again.
const renewFraction = 0.8

func (a *appRole) token(ctx context.Context, client *api.Client) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.current != "" && (a.renewAt.IsZero() || time.Now().Before(a.renewAt)) {
		return a.current, nil
	}
	tok, ttl, err := a.login(ctx, client)
	if err != nil {
		return "", err
	}
	a.current, a.renewAt = tok, time.Time{}
	if ttl > 0 {
		a.renewAt = time.Now().Add(time.Duration(float64(ttl) * renewFraction))
	}
	return tok, nil
}

func (a *appRole) forget(token string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.current == token {
		a.current = ""
	}
}

// login posts to auth/MOUNT/login. It sends no token: login endpoints
// need none, and a stale one must not get in the way.
func (a *appRole) login(ctx context.Context, client *api.Client) (string, time.Duration, error) {
	data := map[string]any{"role_id": a.roleID}
	switch {
	case a.secretIDFile != "":
		id, err := readSecretFile("approle.secret_id_file", a.secretIDFile)
		if err != nil {
			return "", 0, fmt.Errorf("log in with approle: %w", err)
		}
		data["secret_id"] = id
	case a.secretID != "":
		data["secret_id"] = a.secretID
	}
	c, err := client.CloneWithHeaders()
	if err != nil {
		return "", 0, fmt.Errorf("log in with approle: %w", err)
	}
	c.ClearToken()
	path := "auth/" + a.mount + "/login"
	secret, err := c.Logical().WriteWithContext(ctx, path, data)
	if err != nil {
		return "", 0, fmt.Errorf("log in with approle: %w", vaultError(path, err))
	}
	if secret == nil || secret.Auth == nil || secret.Auth.ClientToken == "" {
		return "", 0, errors.New("log in with approle: vault answered without a token")
	}
	return secret.Auth.ClientToken, time.Duration(secret.Auth.LeaseDuration) * time.Second, nil
}
