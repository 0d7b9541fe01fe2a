// Package audit writes the agent's audit log: one JSON line for each
// authenticated request as it comes and as it ends, for each run that
// starts with the secrets it was given, and for each provider reference
// resolved. No token and no value is ever written in clear: tokens are
// written as their HMAC-SHA256 under a key of the agent's, which `hush
// audit hash` applies to whatever an operator wants to look for.
package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Entry is one line of the audit log.
type Entry struct {
	Time time.Time `json:"time"`
	// Type is "request" as a request comes, "response" as it ends, "run"
	// as a run starts, "resolve" as a plugin resolves references.
	Type string `json:"type"`
	// ID pairs a request with its response.
	ID       string `json:"id,omitempty"`
	Cluster  string `json:"cluster"`
	Node     string `json:"node"`
	Accessor string `json:"accessor,omitempty"`
	// Token is the HMAC of the token that made the request.
	Token string `json:"token,omitempty"`
	User  string `json:"user,omitempty"`
	// Operation is the request's method and route, such as
	// "DELETE /v1/secrets/{name}".
	Operation string `json:"operation,omitempty"`
	Path      string `json:"path,omitempty"`
	// Secrets names the secrets the request or run touched.
	Secrets []string `json:"secrets,omitempty"`
	Run     string   `json:"run,omitempty"`
	Plugin  string   `json:"plugin,omitempty"`
	Refs    []string `json:"refs,omitempty"`
	// Status is the response's HTTP status; Outcome is "ok" or "error".
	Status  int    `json:"status,omitempty"`
	Outcome string `json:"outcome,omitempty"`
}

// Log is an audit log file. It is safe for concurrent use.
type Log struct {
	path          string
	key           []byte
	cluster, node string

	failures prometheus.Counter

	mu      sync.Mutex
	f       *os.File
	failing error // why the last write failed, until one succeeds
}

// Open opens, creating it 0600 if need be, the audit log at path, whose
// hashes are keyed with key; entries name cluster and node.
func Open(path string, key []byte, cluster, node string) (*Log, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create the audit log's dir: %w", err)
	}
	l := &Log{path: path, key: key, cluster: cluster, node: node, failures: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "hush_audit_failures_total",
		Help: "Writes to the audit log that failed, each refusing what it recorded.",
	})}
	if err := l.Reopen(); err != nil {
		return nil, err
	}
	return l, nil
}

// Hash returns the keyed HMAC-SHA256 of s as the log writes it.
func (l *Log) Hash(s string) string {
	mac := hmac.New(sha256.New, l.key)
	mac.Write([]byte(s))
	return "hmac-sha256:" + hex.EncodeToString(mac.Sum(nil))
}

// Write appends e, and returns an error when it cannot: the caller then
// refuses what e records (the log fails closed).
func (l *Log) Write(e *Entry) error {
	e.Cluster, e.Node = l.cluster, l.node
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err = l.f.Write(append(b, '\n')); err != nil {
		l.failing = fmt.Errorf("write the audit log %s: %w", l.path, err)
		l.failures.Inc()
		return l.failing
	}
	l.failing = nil
	return nil
}

// Err returns why the last write failed, or nil when it succeeded.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failing
}

// Reopen opens the log file again, as after logrotate moved it; the
// next write tells whether the log works.
func (l *Log) Reopen() error {
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open the audit log: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
	}
	l.f, l.failing = f, nil
	return nil
}

// Collectors returns the log's metrics: its failed writes.
func (l *Log) Collectors() []prometheus.Collector { return []prometheus.Collector{l.failures} }

// Close closes the log file.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}
