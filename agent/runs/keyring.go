package runs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hush-sh/hush/agent/runlog"
	"github.com/hush-sh/hush/agent/store"
)

// The runs' logs are sealed under the keyring: each log's own key, or, for
// logs from before log keys, their chunks. The manager is thus what holds
// sealed files for the store's keyring rotations (store.SealedFiles).

// logFile is a run's log in the log dir: a dir of segments, or a hush 0.1
// file.
type logFile struct {
	id, path string
	legacy   bool
}

func (m *Manager) logFiles() ([]logFile, error) {
	entries, err := os.ReadDir(m.cfg.LogDir)
	if err != nil {
		return nil, fmt.Errorf("read log dir: %w", err)
	}
	var out []logFile
	for _, e := range entries {
		path := filepath.Join(m.cfg.LogDir, e.Name())
		switch id, legacy := strings.CutSuffix(e.Name(), ".log"); {
		case e.IsDir():
			out = append(out, logFile{id: e.Name(), path: path})
		case legacy && e.Type().IsRegular():
			out = append(out, logFile{id: id, path: path, legacy: true})
		}
	}
	return out, nil
}

// KeysUsed returns how many logs each keyring key seals.
func (m *Manager) KeysUsed() (map[uint32]int, error) {
	files, err := m.logFiles()
	if err != nil {
		return nil, err
	}
	counts := map[uint32]int{}
	for _, f := range files {
		var keys []uint32
		if f.legacy {
			keys, err = runlog.LegacyKeysUsed(f.path)
		} else {
			keys, err = runlog.KeysUsed(f.path, f.id)
		}
		if err != nil {
			return nil, fmt.Errorf("log of run %s: %w", f.id, err)
		}
		for _, k := range keys {
			counts[k]++
		}
	}
	return counts, nil
}

// Reseal seals the runs' logs again under kr's active key. The log of a
// run from before log keys that has not ended has a writer, and is left
// for a pass after it ends.
func (m *Manager) Reseal(ctx context.Context, kr *store.Keyring) (int, error) {
	files, err := m.logFiles()
	if err != nil {
		return 0, err
	}
	resealed := 0
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return resealed, err
		}
		var done bool
		switch {
		case f.legacy:
			done, err = runlog.ResealLegacy(f.path, f.id, kr)
		case runlog.HasKey(f.path) || !m.isActive(f.id):
			done, err = runlog.Reseal(f.path, f.id, kr)
		}
		if err != nil {
			// One damaged log keeps its key in use, which the keyring's
			// list shows; the others go on.
			m.logger.Warn("could not seal a run's log again under the keyring's active key", "run_id", f.id, "error", err)
		}
		if done {
			resealed++
		}
	}
	if resealed > 0 {
		m.logger.Info("sealed run logs again under the keyring's active key", "key", kr.ActiveKey(), "logs", resealed)
	}
	return resealed, nil
}

// isActive reports whether run id is active.
func (m *Manager) isActive(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.active[id] != nil
}
