package api

import (
	"fmt"
	"math"
	"strconv"
)

// NodeCapacity is what a node's runs may hold, and what of it is free:
// runs that ask for more than is free wait PENDING, in submit order.
type NodeCapacity struct {
	// GPUs are the node's GPUs: devices of GPU kinds in its CDI specs,
	// and device nodes its agent lists.
	GPUs     int `json:"gpus"`
	GPUsFree int `json:"gpus_free"`
	// CPUs and MemoryBytes are what runs may ask for in total: the host's,
	// or less when the agent's node_cpus and node_memory say so.
	CPUs            float64 `json:"cpus"`
	CPUsFree        float64 `json:"cpus_free"`
	MemoryBytes     int64   `json:"memory_bytes"`
	MemoryFreeBytes int64   `json:"memory_free_bytes"`
	// ActiveRuns counts the runs that have not ended, WaitingRuns those of
	// them that wait for room.
	ActiveRuns  int `json:"active_runs"`
	WaitingRuns int `json:"waiting_runs"`
}

// FormatMemory renders a number of bytes for people, in the units run
// specs use, to one decimal rounded down, so that it never says more
// than there is: "28GiB", "1.5GiB", "512MiB".
func FormatMemory(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	v, i := float64(n), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%dB", n)
	}
	return strconv.FormatFloat(math.Floor(v*10)/10, 'f', -1, 64) + units[i]
}
