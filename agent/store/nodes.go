package store

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hush-sh/hush/sdk/api"
	bolt "go.etcd.io/bbolt"
)

// Nodes are the agents of a cluster that run workloads: the servers that
// also run them, and client agents. Their records hold no secret (names,
// addresses, capacities and labels), so they are kept in clear, as JSON in
// bucket "nodes" by id. The bucket is made by the first node's write: data
// dirs and snapshots of earlier releases have none.
var bucketNodes = []byte("nodes")

// Node is a node as the servers know it.
type Node struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Address string `json:"address"`
	// Server is set on a server agent that runs workloads too.
	Server  bool              `json:"server,omitempty"`
	Runtime string            `json:"runtime"`
	Class   string            `json:"node_class,omitempty"`
	Meta    map[string]string `json:"meta,omitempty"`
	Version string            `json:"version,omitempty"`
	// Capacity is what the node's runs may hold, and what of it was free,
	// as the node last said.
	Capacity api.NodeCapacity `json:"capacity"`

	Status api.NodeStatus `json:"status"`
	// Drain is set by `hush node drain`: the node takes no new runs.
	Drain bool `json:"drain,omitempty"`
	// LastSeen is when the server that took the node's last heartbeat
	// (or registration) took it.
	LastSeen     time.Time `json:"last_seen"`
	RegisteredAt time.Time `json:"registered_at"`
	// SecretHash is the SHA-256, in hex, of the secret a client agent's
	// node registered with: what the node proves it is with; "" for a
	// server's own node.
	SecretHash string `json:"secret_hash,omitempty"`
}

// Labels are what run constraints match: the node's meta, and its class
// as "node_class".
func (n *Node) Labels() map[string]string {
	l := make(map[string]string, len(n.Meta)+1)
	for k, v := range n.Meta {
		l[k] = v
	}
	if n.Class != "" {
		l["node_class"] = n.Class
	}
	return l
}

// Node operations.
const (
	opNodeRegister  = "node.register"
	opNodeHeartbeat = "node.heartbeat"
	opNodeDown      = "node.down"
	opNodeDrain     = "node.drain"
)

// RegisterNode records a node, or updates what it says of itself, as
// ready and seen at. A node keeps its drain across registrations: an
// agent restarted on a drained node does not take runs again unasked.
func (s *Store) RegisterNode(n *Node, at time.Time) error {
	if n.ID == "" || n.Name == "" {
		return fmt.Errorf("register node: %w: a node needs an id and a name", ErrInvalid)
	}
	rec, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("register node: %w", err)
	}
	return s.write(func() (*command, error) {
		return &command{Op: opNodeRegister, ID: n.ID, Record: rec, Time: at.UTC()}, nil
	}, nil)
}

// applyNodeRegister puts node ID from Record, ready and seen at Time.
func applyNodeRegister(tx *bolt.Tx, c *command) error {
	var n Node
	if err := json.Unmarshal(c.Record, &n); err != nil {
		return fmt.Errorf("node %s: %w: %w", c.ID, ErrCorrupt, err)
	}
	b, err := tx.CreateBucketIfNotExists(bucketNodes)
	if err != nil {
		return err
	}
	n.RegisteredAt = c.Time
	if old, err := readNode(b, c.ID); err == nil {
		if old.SecretHash != n.SecretHash {
			return fmt.Errorf("node %s (%s) is registered with another secret: %w", c.ID, old.Name, ErrConflict)
		}
		n.Drain, n.RegisteredAt = old.Drain, old.RegisteredAt
	}
	n.ID, n.Status, n.LastSeen = c.ID, api.NodeReady, c.Time
	return putNode(b, &n)
}

// NodeHeartbeat records that node id was seen at, with what it has free:
// it is ready. It fails with ErrNotFound for a node the servers do not
// know, which must register (again: its record may have come back from an
// older snapshot).
func (s *Store) NodeHeartbeat(id string, at time.Time, capacity api.NodeCapacity) error {
	rec, err := json.Marshal(capacity)
	if err != nil {
		return fmt.Errorf("node heartbeat: %w", err)
	}
	return s.write(func() (*command, error) {
		return &command{Op: opNodeHeartbeat, ID: id, Time: at.UTC(), Record: rec}, nil
	}, nil)
}

func applyNodeHeartbeat(tx *bolt.Tx, c *command) error {
	b := tx.Bucket(bucketNodes)
	n, err := readNode(b, c.ID)
	if err != nil {
		return err
	}
	if !c.Time.After(n.LastSeen) {
		return nil // the log put a later sighting first
	}
	if err := json.Unmarshal(c.Record, &n.Capacity); err != nil {
		return fmt.Errorf("node %s: heartbeat: %w: %w", c.ID, ErrCorrupt, err)
	}
	n.LastSeen, n.Status = c.Time, api.NodeReady
	return putNode(b, n)
}

// MarkNodeDown marks node id down, unless it was seen since lastSeen: a
// heartbeat that the log put first wins.
func (s *Store) MarkNodeDown(id string, lastSeen time.Time) error {
	return s.write(func() (*command, error) {
		return &command{Op: opNodeDown, ID: id, Time: lastSeen.UTC()}, nil
	}, nil)
}

func applyNodeDown(tx *bolt.Tx, c *command) error {
	b := tx.Bucket(bucketNodes)
	n, err := readNode(b, c.ID)
	if err != nil {
		return err
	}
	if !n.LastSeen.Equal(c.Time) {
		return fmt.Errorf("node %s was seen at %s: %w", n.Name, n.LastSeen.Format(time.RFC3339Nano), ErrConflict)
	}
	n.Status = api.NodeDown
	return putNode(b, n)
}

// DrainNode starts (enable) or ends draining node id, and returns the node.
func (s *Store) DrainNode(id string, enable bool) (*Node, error) {
	value := []byte{0}
	if enable {
		value[0] = 1
	}
	var n *Node
	err := s.write(func() (*command, error) {
		return &command{Op: opNodeDrain, ID: id, Value: value}, nil
	}, &n)
	return n, err
}

func applyNodeDrain(tx *bolt.Tx, c *command) (*Node, error) {
	b := tx.Bucket(bucketNodes)
	n, err := readNode(b, c.ID)
	if err != nil {
		return nil, err
	}
	n.Drain = len(c.Value) == 1 && c.Value[0] == 1
	return n, putNode(b, n)
}

// ListNodes returns every node, by name then id.
func (s *Store) ListNodes() ([]*Node, error) {
	var out []*Node
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketNodes)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			n, err := decodeNode(k, v)
			if err != nil {
				return err
			}
			out = append(out, n)
			return nil
		})
	})
	slices.SortFunc(out, func(a, b *Node) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, err
}

// GetNode returns node id.
func (s *Store) GetNode(id string) (*Node, error) {
	var n *Node
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = readNode(tx.Bucket(bucketNodes), id)
		return err
	})
	return n, err
}

// FindNode returns the node whose id is ref, or else the one node named
// ref; a name that several nodes have is refused, with their ids.
func (s *Store) FindNode(ref string) (*Node, error) {
	nodes, err := s.ListNodes()
	if err != nil {
		return nil, err
	}
	var named []*Node
	for _, n := range nodes {
		if n.ID == ref {
			return n, nil
		}
		if n.Name == ref {
			named = append(named, n)
		}
	}
	switch len(named) {
	case 0:
		return nil, fmt.Errorf("node %s: %w: `hush get nodes` lists the cluster's nodes", ref, ErrNotFound)
	case 1:
		return named[0], nil
	}
	ids := make([]string, len(named))
	for i, n := range named {
		ids[i] = n.ID
	}
	return nil, fmt.Errorf("%w: %d nodes are named %s (%s): name one by its id", ErrInvalid, len(named), ref, strings.Join(ids, ", "))
}

func readNode(b *bolt.Bucket, id string) (*Node, error) {
	if b == nil {
		return nil, fmt.Errorf("node %s: %w", id, ErrNotFound)
	}
	v := b.Get([]byte(id))
	if v == nil {
		return nil, fmt.Errorf("node %s: %w", id, ErrNotFound)
	}
	return decodeNode([]byte(id), v)
}

func decodeNode(k, v []byte) (*Node, error) {
	var n Node
	if err := json.Unmarshal(v, &n); err != nil {
		return nil, fmt.Errorf("node %s: %w: %w", k, ErrCorrupt, err)
	}
	return &n, nil
}

func putNode(b *bolt.Bucket, n *Node) error {
	v, err := json.Marshal(n)
	if err != nil {
		return err
	}
	return b.Put([]byte(n.ID), v)
}
