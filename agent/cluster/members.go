package cluster

import (
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sync"
)

// Member is a server's addresses. Servers learn each other's through the
// join endpoint: each sends the members it knows and takes back the
// other's, so the map spreads to every server that can reach one other
// (see joinLoop). Raft's configuration says who is in the cluster; this
// says where to reach each one's API, which raft does not know.
type Member struct {
	// ID is the server's raft ServerID, its node name.
	ID string `json:"id"`
	// RaftAddr is the host:port its raft listens on.
	RaftAddr string `json:"raft_addr"`
	// APIAddr is the host:port of its HTTPS API.
	APIAddr string `json:"api_addr"`
	// Seq orders a server's own updates of its entry: the newest wins.
	Seq int64 `json:"seq"`
}

// memberMap holds the servers' addresses, saved in a file so that a
// restarted server finds its peers without RetryJoin.
type memberMap struct {
	path string
	// self is this server's ID: only it updates its own entry.
	self string

	mu sync.Mutex
	m  map[string]Member
}

func loadMembers(path, self string) (*memberMap, error) {
	mm := &memberMap{path: path, self: self, m: map[string]Member{}}
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return mm, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read members: %w", err)
	}
	var list []Member
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("read members %s: %w; delete the file and restart with retry_join", path, err)
	}
	for _, m := range list {
		mm.m[m.ID] = m
	}
	return mm, nil
}

// merge takes in what is newer and reports whether anything changed.
func (mm *memberMap) merge(list ...Member) (bool, error) {
	return mm.mergeFrom(false, list...)
}

// setSelf records this server's own entry.
func (mm *memberMap) setSelf(m Member) error {
	_, err := mm.mergeFrom(true, m)
	return err
}

func (mm *memberMap) mergeFrom(own bool, list ...Member) (bool, error) {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	changed := false
	for _, m := range list {
		if m.ID == "" || m.APIAddr == "" || m.RaftAddr == "" || (m.ID == mm.self && !own) {
			continue
		}
		if old, ok := mm.m[m.ID]; !ok || m.Seq > old.Seq {
			mm.m[m.ID] = m
			changed = true
		}
	}
	if !changed {
		return false, nil
	}
	return true, mm.saveLocked()
}

func (mm *memberMap) saveLocked() error {
	b, err := json.Marshal(mm.listLocked())
	if err != nil {
		return fmt.Errorf("encode members: %w", err)
	}
	tmp := mm.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("save members: %w", err)
	}
	if err := os.Rename(tmp, mm.path); err != nil {
		return fmt.Errorf("save members: %w", err)
	}
	return nil
}

func (mm *memberMap) get(id string) (Member, bool) {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	m, ok := mm.m[id]
	return m, ok
}

// list returns the members sorted by ID.
func (mm *memberMap) list() []Member {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	return mm.listLocked()
}

func (mm *memberMap) listLocked() []Member {
	list := make([]Member, 0, len(mm.m))
	for _, m := range mm.m {
		list = append(list, m)
	}
	slices.SortFunc(list, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	return list
}
