package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
)

// restoreTimeout bounds how long raft may take to restore a snapshot on
// the leader and to see a quorum of servers install it.
const restoreTimeout = 5 * time.Minute

// SaveSnapshot writes a consistent copy of the cluster's state to w: it
// waits, as a consistent read does, until this server holds every write
// acknowledged before the call, then writes its FSM's snapshot. Any
// server can save one; nothing is written to w when the wait fails.
func (n *Node) SaveSnapshot(ctx context.Context, w io.Writer) error {
	if err := n.Barrier(ctx); err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	// Through a file: the state's copy holds a read transaction of the
	// store, which must not last as long as a slow client's download.
	tmp, err := os.CreateTemp(n.cfg.DataDir, ".snapshot-save-*")
	if err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := n.fsm.fsm.Snapshot(tmp); err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	if _, err := io.Copy(w, tmp); err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	return nil
}

// RestoreSnapshot replaces the state of every server of the cluster with
// the FSM snapshot in r, size bytes long, through raft's user restore:
// the leader restores it at a new index of the log and sends it to each
// follower as a snapshot to install. A follower passes r on to the
// leader. The caller must have checked r: a leader whose FSM fails to
// restore it stops (raft panics), since its state is then unknown.
func (n *Node) RestoreSnapshot(ctx context.Context, r io.ReadSeeker, size int64) error {
	err := n.onLeader(ctx, func(ctx context.Context) error {
		if _, err := r.Seek(0, io.SeekStart); err != nil {
			return err
		}
		return n.restoreLocal(r, size)
	}, func(ctx context.Context, leader Member) error {
		if _, err := r.Seek(0, io.SeekStart); err != nil {
			return err
		}
		_, err := n.doReader(ctx, leader.APIAddr, http.MethodPut, "restore", "application/octet-stream", r)
		if err != nil {
			return fmt.Errorf("forward to leader %s: %w", leader.ID, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	n.logger.Info("restored a snapshot into the cluster", "bytes", size)
	return nil
}

// restoreLocal restores r on this node as leader.
func (n *Node) restoreLocal(r io.Reader, size int64) error {
	if n.fsm.durable {
		// A cluster of one has no follower to send it to, and keeps no
		// snapshots: its state machine restores it.
		return n.fsm.Restore(io.NopCloser(r))
	}
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Size: size}
	err := n.raft.Restore(meta, r, restoreTimeout)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%w: %w", errRetry, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return errShutdown
	}
	return err
}

func (n *Node) handleRestore(w http.ResponseWriter, r *http.Request) {
	if n.raft.State() != raft.Leader {
		writeError(w, http.StatusServiceUnavailable, codeNotLeader, errors.New("this server is not the leader"))
		return
	}
	// raft needs the size up front: the snapshot waits in a file.
	f, err := os.CreateTemp(filepath.Join(n.cfg.DataDir, "raft"), ".restore-*")
	if err != nil {
		writeError(w, http.StatusInternalServerError, codeInternal, fmt.Errorf("spool snapshot: %w", err))
		return
	}
	defer os.Remove(f.Name())
	defer f.Close()
	size, err := io.Copy(f, r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Errorf("read snapshot: %w", err))
		return
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		writeError(w, http.StatusInternalServerError, codeInternal, fmt.Errorf("spool snapshot: %w", err))
		return
	}
	if err := n.restoreLocal(f, size); err != nil {
		writeApplyError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}
