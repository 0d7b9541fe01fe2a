package api

import (
	"strings"
	"time"
)

// SecretType is the kind of a secret. It decides which fields the secret
// holds and how a run receives it.
type SecretType string

// The secret types, as in DESIGN's table.
const (
	TypeEnv        SecretType = "env"
	TypeMounted    SecretType = "mounted"
	TypeSSH        SecretType = "ssh"
	TypeGitSSH     SecretType = "git-ssh"
	TypeDocker     SecretType = "docker"
	TypeS3         SecretType = "s3"
	TypeGCP        SecretType = "gcp"
	TypeOCI        SecretType = "oci"
	TypeDatabricks SecretType = "databricks"
	TypeHF         SecretType = "hf"
)

// MaxSecretSize is the most bytes the sensitive data of one secret may hold
// (the sum over its data fields).
const MaxSecretSize = 1 << 20

// SourceStored is the Source of a secret whose value the agent holds itself,
// as opposed to a provider reference.
const SourceStored = "stored"

// Secret is a secret's metadata: everything about it except its values.
// It is what listing and reading return.
type Secret struct {
	// ID is unique for each secret ever created; the same secret carries the
	// same ID on every cluster.
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Type      SecretType `json:"type"`
	Owner     string     `json:"owner"`
	CreatedAt time.Time  `json:"created_at"`
	// Fields are the type's non-sensitive settings, such as an env secret's
	// key or a mounted secret's mount path.
	Fields map[string]string `json:"fields,omitempty"`
	// Source is SourceStored, or the provider reference the value comes from.
	Source string `json:"source"`
	// Digest is the agent's keyed digest of the secret's content (type,
	// fields, value or reference). It is comparable only with digests from
	// the same agent, such as one from DigestSecret.
	Digest string `json:"digest,omitempty"`
}

// Tombstone records a deleted secret: its id is never created again on that
// agent, so a stale copy cannot undo the delete.
type Tombstone struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	DeletedAt time.Time `json:"deleted_at"`
}

// ListTombstonesResponse is the answer to listing tombstones.
type ListTombstonesResponse struct {
	Tombstones []*Tombstone `json:"tombstones"`
}

// SecretDigest is the answer to digesting a secret's content.
type SecretDigest struct {
	Digest string `json:"digest"`
}

// CreateSecretRequest creates a secret. Exactly one of Data and From gives
// the value.
type CreateSecretRequest struct {
	// ID and CreatedAt are chosen by the agent when empty. A client writing
	// the same secret to several clusters sets them so that every cluster
	// holds the same identity.
	ID        string            `json:"id,omitempty"`
	CreatedAt time.Time         `json:"created_at,omitzero"`
	Name      string            `json:"name"`
	Type      SecretType        `json:"type"`
	Fields    map[string]string `json:"fields,omitempty"`
	// Data holds the sensitive values by field name. It travels base64
	// encoded, so binary file contents survive JSON.
	Data map[string][]byte `json:"data,omitempty"`
	// From is a provider reference, "PROVIDER:REF", stored instead of a value
	// for types that hold a single value.
	From string `json:"from,omitempty"`
	// NoCheck stores a From reference even when the agent has no plugin of
	// its provider: for a cluster that will get the plugin later, and for
	// copies of secrets made on another cluster.
	NoCheck bool `json:"no_check,omitempty"`
}

// SplitReference splits a provider reference, "PROVIDER:REF", into the
// provider's name and the reference it resolves.
func SplitReference(from string) (provider, ref string) {
	provider, ref, _ = strings.Cut(from, ":")
	return provider, ref
}

// SecretExport is a whole secret, values included, as its owner's export
// returns it to copy it to another cluster. It is a request to create the
// same secret, identity included.
type SecretExport = CreateSecretRequest

// ListSecretsResponse is the answer to listing secrets.
type ListSecretsResponse struct {
	Secrets []*Secret `json:"secrets"`
	// Unreadable are the caller's secrets that the agent holds but cannot
	// read, such as a damaged record. Their owner can delete them.
	Unreadable []*UnreadableSecret `json:"unreadable,omitempty"`
}

// UnreadableSecret names a stored secret that the agent cannot read.
type UnreadableSecret struct {
	Name string `json:"name"`
	// ID and Type are empty when they cannot be read either.
	ID    string     `json:"id,omitempty"`
	Type  SecretType `json:"type,omitempty"`
	Error string     `json:"error"`
}

// AgentSelf describes the agent that answers.
type AgentSelf struct {
	Version string `json:"version"`
	Cluster string `json:"cluster"`
	Node    string `json:"node"`
	// User is the user the calling token belongs to.
	User string `json:"user"`
	// Runtime runs workloads: containerd or exec.
	Runtime string `json:"runtime,omitempty"`
	// Plugins are the agent's provider plugins.
	Plugins []PluginStatus `json:"plugins"`
	// Capacity is what the node's runs may hold and what is free.
	Capacity *NodeCapacity `json:"capacity,omitempty"`
}

// Health is the answer of the health endpoint.
type Health struct {
	// Status is "ok", or "failing" with Error saying why.
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
	// Raft is this server's state in its cluster: leader, follower or
	// candidate; Leader is the server it takes for the leader, empty when
	// there is none, as when the cluster has no quorum.
	Raft   string `json:"raft,omitempty"`
	Leader string `json:"leader,omitempty"`
}

// AuditHashRequest asks for the audit log's hash of Input.
type AuditHashRequest struct {
	Input string `json:"input"`
}

// AuditHash is the audit log's hash of a value, as it writes tokens: look
// for it in the log.
type AuditHash struct {
	Hash string `json:"hash"`
}

// PluginState is where a provider plugin is in its life.
type PluginState string

// The plugin states.
const (
	PluginStarting PluginState = "starting"
	PluginRunning  PluginState = "running"
	PluginFailed   PluginState = "failed"
	PluginStopped  PluginState = "stopped"
)

// PluginStatus describes one provider plugin of an agent.
type PluginStatus struct {
	Name       string      `json:"name"`
	Version    string      `json:"version,omitempty"`
	Path       string      `json:"path"`
	State      PluginState `json:"state"`
	APIVersion int         `json:"api_version,omitempty"`
	Restarts   int         `json:"restarts"`
	// Error says why the plugin is not running, when it is not.
	Error string `json:"error,omitempty"`
}

// ListPluginsResponse is the answer to listing plugins.
type ListPluginsResponse struct {
	Plugins []PluginStatus `json:"plugins"`
}
