package seal

import (
	"context"
	"crypto/cipher"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
)

// Env is seal "env": the key is base64 of 32 bytes in an environment
// variable of the agent.
type Env struct {
	name string
	aead cipher.AEAD
}

// NewEnv reads the key from the environment variable name.
func NewEnv(name string) (*Env, error) {
	const hint = "set it to base64 of 32 random bytes, such as `head -c 32 /dev/urandom | base64`, and keep the same value for every start"
	v, ok := os.LookupEnv(name)
	if !ok || v == "" {
		return nil, fmt.Errorf("seal \"env\": the environment variable %s is not set: %s", name, hint)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
	if err != nil {
		return nil, fmt.Errorf("seal \"env\": %s is not base64: %s", name, hint)
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("seal \"env\": %s holds %d bytes, want %d: %s", name, len(key), KeySize, hint)
	}
	aead, err := gcm(key)
	if err != nil {
		return nil, err
	}
	return &Env{name: name, aead: aead}, nil
}

// Kind returns "env".
func (e *Env) Kind() string { return "env" }

// Wrap encrypts plaintext under the key.
func (e *Env) Wrap(_ context.Context, plaintext []byte) ([]byte, error) {
	return wrap(e.aead, plaintext)
}

// Unwrap decrypts what Wrap returned.
func (e *Env) Unwrap(_ context.Context, ciphertext []byte) ([]byte, error) {
	plain, err := unwrap(e.aead, ciphertext)
	if err != nil {
		return nil, fmt.Errorf("seal key in %s: %w", e.name, err)
	}
	return plain, nil
}
