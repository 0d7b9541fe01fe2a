// Package nodes keeps a cluster's nodes: the agents that run workloads.
//
// On every agent that runs workloads, an Agent registers the node with the
// servers and heartbeats, through a Conn: the store itself on a server, or
// HTTP over mutual TLS to the servers on a client agent. On the servers,
// Handler serves the client agents' registrations and heartbeats, and the
// leader's Monitor marks down the nodes whose heartbeats stopped for longer
// than the node TTL. Registrations, heartbeats and marks go through the
// Raft log, so that a new leader knows when each node was last seen.
package nodes

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
	"github.com/oklog/ulid/v2"
)

// DefaultTTL is how long the servers wait for a node's heartbeat before
// they mark it down.
const DefaultTTL = 30 * time.Second

// HeartbeatInterval is how often a node heartbeats for a TTL: three
// heartbeats may be lost before the node is marked down.
func HeartbeatInterval(ttl time.Duration) time.Duration { return ttl / 3 }

// ErrUnknownNode is returned by Conn.Heartbeat when the servers do not know
// the node: it registers again.
var ErrUnknownNode = errors.New("the servers do not know this node")

// Registration is the servers' answer to a node's registration.
type Registration struct {
	// HeartbeatInterval is how often the node heartbeats.
	HeartbeatInterval api.Duration `json:"heartbeat_interval"`
}

// Conn is a node's line to the servers.
type Conn interface {
	Register(ctx context.Context, n *store.Node) (*Registration, error)
	Heartbeat(ctx context.Context, id string, capacity api.NodeCapacity) error
}

// idFile, in the agent's data dir, holds the node's id.
const idFile = "node-id"

// LoadID returns the node id kept in dataDir, making one on first use. A
// node keeps its id across restarts, so that the servers know it again; a
// new data dir is a new node.
func LoadID(dataDir string) (string, error) {
	return loadOrMake(filepath.Join(dataDir, idFile), "node id",
		func() (string, error) { return ulid.Make().String(), nil },
		func(id string) error {
			_, err := ulid.ParseStrict(id)
			return err
		}, "remove the file to make the node a new one")
}

// loadOrMake returns the value kept in the file at path, checked by valid,
// or mints one and writes it there (0600, through a rename, so that a
// crash leaves no half-written file). fix says how to get past a file that
// does not hold a valid one.
func loadOrMake(path, what string, mint func() (string, error), valid func(string) error, fix string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		v := strings.TrimSpace(string(b))
		if err := valid(v); err != nil {
			return "", fmt.Errorf("read %s: %s does not hold one: %s", what, path, fix)
		}
		return v, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", what, err)
	}
	v, err := mint()
	if err != nil {
		return "", fmt.Errorf("make %s: %w", what, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(v+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", what, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("write %s: %w", what, err)
	}
	return v, nil
}

// secretFile, in a client agent's data dir, holds the secret its node
// proves it is with: the servers keep its hash, and refuse a node id
// presented without it.
const secretFile = "node-secret"

// SecretHeader carries a client agent's node secret to the servers.
const SecretHeader = "X-Hush-Node-Secret"

// LoadSecret returns the node secret kept in dataDir, making one on first
// use (0600).
func LoadSecret(dataDir string) (string, error) {
	return loadOrMake(filepath.Join(dataDir, secretFile), "node secret",
		func() (string, error) {
			raw := make([]byte, 32)
			_, err := rand.Read(raw)
			return hex.EncodeToString(raw), err
		},
		func(secret string) error {
			if len(secret) != 64 {
				return errors.New("not 64 hex digits")
			}
			return nil
		}, "remove it, and the node's id ("+idFile+"), to make the node a new one")
}

// hashSecret is what the servers keep of a node secret.
func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
