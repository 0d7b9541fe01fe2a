package runs

import (
	"fmt"

	"github.com/hush-sh/hush/sdk/api"
	"github.com/hush-sh/hush/sdk/userfile"
)

// defaultLogSize caps run logs when Config.MaxLogSize is not set.
const defaultLogSize = 64 << 20

// checkLogSize checks the cap a run asks for (0 for the agent's) against
// the agent's max_log_size.
func (m *Manager) checkLogSize(n int64) error {
	switch {
	case n < 0:
		return fmt.Errorf("max_log_bytes is %d: give a positive number of bytes, or 0 for this agent's max_log_size", n)
	case n > 0 && n < api.MinLogSize:
		return fmt.Errorf("max_log_size %s is below the smallest log cap of %s: ask for more, or leave it out for this agent's %s",
			userfile.FormatSize(n), userfile.FormatSize(api.MinLogSize), userfile.FormatSize(m.cfg.MaxLogSize))
	case n > m.cfg.MaxLogSize:
		return fmt.Errorf("max_log_size %s (%d bytes) is over this agent's max_log_size of %s (%d bytes): ask for at most %s, or raise max_log_size in the agent's config",
			userfile.FormatSize(n), n, userfile.FormatSize(m.cfg.MaxLogSize), m.cfg.MaxLogSize, userfile.FormatSize(m.cfg.MaxLogSize))
	}
	return nil
}
