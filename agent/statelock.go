package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// stateLockFile, in the state dir, is held locked by the agent that uses
// the dir, and names it.
const stateLockFile = "agent.lock"

// lockStateDir takes the state dir for this agent alone. Two agents on one
// state dir would each take the other's runs for leftovers of its own and
// remove their secret tmpfs, so the second refuses to start. The lock goes
// with the process, however it ends; the returned func releases it sooner.
func lockStateDir(dir, dataDir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	path := filepath.Join(dir, stateLockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open the state dir's lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		holder, _ := os.ReadFile(path)
		who := strings.TrimSpace(string(holder))
		if who == "" {
			who = "another agent"
		}
		return nil, fmt.Errorf("state dir %s is in use by %s; give each agent on a machine a state_dir of its own", dir, who)
	}
	// Best effort: the name only makes the message above clearer.
	if err := f.Truncate(0); err == nil {
		fmt.Fprintf(f, "the agent with pid %d and data dir %s\n", os.Getpid(), dataDir)
	}
	return func() { f.Close() }, nil
}
