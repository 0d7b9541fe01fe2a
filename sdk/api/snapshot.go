package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// SnapshotState counts what a cluster's state holds.
type SnapshotState struct {
	// Index is the Raft index the state was at.
	Index   uint64 `json:"index"`
	Secrets int    `json:"secrets"`
	Tokens  int    `json:"tokens"`
	Runs    int    `json:"runs"`
}

// SnapshotRestore is the answer to a restore: when the snapshot was saved,
// what it holds, and what it replaced.
type SnapshotRestore struct {
	SavedAt  time.Time     `json:"saved_at"`
	Restored SnapshotState `json:"restored"`
	Replaced SnapshotState `json:"replaced"`
}

// SaveSnapshot writes a sealed snapshot of the cluster's state to w
// (management token). It opens only in a cluster with the same seal key.
func (c *Client) SaveSnapshot(ctx context.Context, w io.Writer) (int64, error) {
	resp, err := c.send(ctx, c.stream, http.MethodGet, "/v1/operator/snapshot", nil, nil, "")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("receive snapshot from %s: %w", resp.Request.URL.Host, err)
	}
	return n, nil
}

// RestoreSnapshot replaces the cluster's state with a snapshot's that
// SaveSnapshot wrote (management token).
func (c *Client) RestoreSnapshot(ctx context.Context, snapshot io.Reader) (*SnapshotRestore, error) {
	resp, err := c.send(ctx, c.stream, http.MethodPut, "/v1/operator/snapshot", nil, snapshot, "application/octet-stream")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out SnapshotRestore
	if err := decodeJSONBody(resp, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
