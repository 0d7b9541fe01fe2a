package runs

import (
	"context"
	"errors"
	"fmt"
	"maps"
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

// KeysUsed returns how many logs each keyring key seals, and how many of
// those are damaged: a rotation could not open them.
func (m *Manager) KeysUsed() (used, damaged map[uint32]int, err error) {
	files, err := m.logFiles()
	if err != nil {
		return nil, nil, err
	}
	m.mu.Lock()
	bad := maps.Clone(m.damagedLogs)
	m.mu.Unlock()
	used, damaged = map[uint32]int{}, map[uint32]int{}
	for _, f := range files {
		var keys []uint32
		if f.legacy {
			keys, err = runlog.LegacyKeysUsed(f.path)
		} else {
			keys, err = runlog.KeysUsed(f.path, f.id)
		}
		if err != nil {
			// The log's keys cannot be known: it is damaged whatever
			// key sealed it.
			m.logger.Debug("could not tell the keys of a run's log", "run_id", f.id, "error", err)
			continue
		}
		for _, k := range keys {
			used[k]++
			if bad[f.id] {
				damaged[k]++
			}
		}
	}
	return used, damaged, nil
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
		case runlog.HasKey(f.path) || !m.Live(f.id):
			done, err = runlog.Reseal(f.path, f.id, kr)
		}
		m.mu.Lock()
		switch {
		case errors.Is(err, store.ErrCorrupt):
			if !m.damagedLogs[f.id] {
				m.logger.Warn("a run's log is damaged and cannot be sealed again under the keyring's active key; it stays as it is",
					"run_id", f.id, "error", err)
			}
			m.damagedLogs[f.id] = true
		case err != nil:
			m.logger.Warn("could not seal a run's log again under the keyring's active key; the next pass tries again", "run_id", f.id, "error", err)
		default:
			delete(m.damagedLogs, f.id)
		}
		m.mu.Unlock()
		if done {
			resealed++
		}
	}
	if resealed > 0 {
		m.logger.Info("sealed run logs again under the keyring's active key", "key", kr.ActiveKey(), "logs", resealed)
	}
	return resealed, nil
}
