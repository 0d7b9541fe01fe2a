package plugins

import "sort"

// Providers returns the names of the agent's provider plugins, sorted,
// whether they run now or not.
func (h *Host) Providers() []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	names := make([]string, 0, len(h.plugins))
	for n := range h.plugins {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
