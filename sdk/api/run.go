package api

import (
	"fmt"
	"time"
)

// RunStatus is where a run is in its lifecycle:
// PENDING → STARTING → RUNNING → COMPLETED | FAILED | STOPPED, with
// TERMINATING while a stop is under way, and LOST for a run whose
// workload was gone when a restarted agent looked for it.
type RunStatus string

// The run statuses.
const (
	RunPending     RunStatus = "PENDING"
	RunStarting    RunStatus = "STARTING"
	RunRunning     RunStatus = "RUNNING"
	RunTerminating RunStatus = "TERMINATING"
	RunCompleted   RunStatus = "COMPLETED"
	RunFailed      RunStatus = "FAILED"
	RunStopped     RunStatus = "STOPPED"
	RunLost        RunStatus = "LOST"
)

// Done reports whether the status is final.
func (s RunStatus) Done() bool {
	return s == RunCompleted || s == RunFailed || s == RunStopped || s == RunLost
}

// Environment variables every run receives.
const (
	EnvRunName          = "RUN_NAME"
	EnvRunID            = "HUSH_RUN_ID"
	EnvSecretPathPrefix = "SECRET_PATH_"
)

// CreateRunRequest submits a run.
type CreateRunRequest struct {
	// Name is the run's name; a taken name gets a short random suffix.
	Name string `json:"name"`
	// Image is an OCI image reference. The exec runtime ignores it.
	Image string `json:"image"`
	// Command runs under /bin/sh -c.
	Command string `json:"command"`
	// Env are the run's own environment variables; they win over env
	// secrets with the same key.
	Env map[string]string `json:"env,omitempty"`
	// Secrets narrows which of the owner's secrets the run gets; nil means
	// all of them.
	Secrets []string `json:"secrets"`
	GPUs    int      `json:"gpus,omitempty"`
	// CPUs limits the run's CPU; 0 means no limit.
	CPUs float64 `json:"cpus,omitempty"`
	// MemoryBytes limits the run's memory; 0 means no limit.
	MemoryBytes int64 `json:"memory_bytes,omitempty"`
	// MaxDuration stops the run when it outlives it; 0 means no limit.
	MaxDuration Duration `json:"max_duration,omitempty"`
	// MaxLogBytes caps the run's log on the agent: past it, the oldest
	// output is dropped. 0 means the agent's max_log_size, which is also
	// the most a run may ask for.
	MaxLogBytes int64 `json:"max_log_bytes,omitempty"`
	// API is what the run's own token may do besides submitting and
	// inspecting the runs it launches.
	API RunAPI `json:"api,omitzero"`
	// MaskSecrets replaces the run's secret values in its logs with ***;
	// nil means the agent's mask_secrets.
	MaskSecrets *bool `json:"mask_secrets,omitempty"`
	// Constraints must all hold on the labels of the node the run is
	// placed on: its meta, and "node_class".
	Constraints []Constraint `json:"constraints,omitempty"`
	// Retries is how many times the run is placed again when its node is
	// lost (or drained with --stop) before it ends LOST.
	Retries int `json:"retries,omitempty"`
	// Refresh fetches the run's secrets again while it runs; SecretRefresh
	// sets it for one secret, which Secrets must name.
	Refresh       Refresh            `json:"refresh,omitzero"`
	SecretRefresh map[string]Refresh `json:"secret_refresh,omitempty"`
}

// Constraint restricts a run to nodes whose label Key compares to Value with
// Op: "=" or "!=". A node without the label fails "=" and passes "!=". Run
// specs write one as "node_class = gpu".
type Constraint struct {
	Key   string `json:"key"`
	Op    string `json:"op"`
	Value string `json:"value"`
}

// String renders the constraint as a run spec writes it.
func (c Constraint) String() string { return c.Key + " " + c.Op + " " + c.Value }

// Access levels of a run's token to its owner's secrets, in RunAPI.
const (
	// AccessRead lets a run's token list the secrets the run was given;
	// it is the default.
	AccessRead = "read"
	// AccessWrite also lets it create and delete its owner's secrets.
	AccessWrite = "write"
)

// RunAPI is what a run's token may do with the agent's API. A run launched
// by another run never gets more than its parent: at most the secrets its
// parent was given, and write access only when its parent has it.
type RunAPI struct {
	// Secrets is AccessRead (or empty) or AccessWrite.
	Secrets string `json:"secrets,omitempty"`
}

// SecretsWrite reports whether the run's token may create and delete
// secrets.
func (a RunAPI) SecretsWrite() bool { return a.Secrets == AccessWrite }

// ValidateRunAPI checks a run's API grant.
func ValidateRunAPI(a RunAPI) error {
	switch a.Secrets {
	case "", AccessRead, AccessWrite:
		return nil
	}
	return fmt.Errorf("api.secrets %q is not valid: give %q (the default: the run's token lists the secrets the run was given) or %q (it may also create and delete your secrets)",
		a.Secrets, AccessRead, AccessWrite)
}

// MinLogSize is the smallest log cap a run or an agent may set.
const MinLogSize = 64 << 10

// Run is a run as the agent reports it.
type Run struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Owner       string            `json:"owner"`
	Image       string            `json:"image"`
	Command     string            `json:"command"`
	Env         map[string]string `json:"env,omitempty"`
	Secrets     []string          `json:"secrets"`
	GPUs        int               `json:"gpus,omitempty"`
	CPUs        float64           `json:"cpus,omitempty"`
	MemoryBytes int64             `json:"memory_bytes,omitempty"`
	MaxDuration Duration          `json:"max_duration,omitempty"`
	// API is what the run's token may do besides managing its own runs.
	API RunAPI `json:"api,omitzero"`
	// MaxLogBytes is the cap on the run's log in bytes; older output is
	// dropped past it.
	MaxLogBytes int64 `json:"max_log_bytes,omitempty"`
	// MaskSecrets is whether the run's secret values are masked in its
	// logs.
	MaskSecrets bool `json:"mask_secrets,omitempty"`
	// Parent is the id of the run that submitted this one, if any.
	Parent string `json:"parent,omitempty"`
	// Management is set on a run submitted with a management token, or by
	// a run that was: its provider references resolve whatever the
	// plugins' allow rules say.
	Management bool `json:"management,omitempty"`
	// SecretLimit, for a run with a Parent, names the secrets its parent
	// was given: the most this run may receive.
	SecretLimit []string  `json:"secret_limit,omitempty"`
	Runtime     string    `json:"runtime"`
	Status      RunStatus `json:"status"`
	// ExitCode is set once the workload has exited.
	ExitCode  *int       `json:"exit_code,omitempty"`
	Error     string     `json:"error,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	StartedAt *time.Time `json:"started_at,omitempty"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
	Events    []RunEvent `json:"events,omitempty"`

	// Devices are the ids of the GPUs the run was given, as the node's
	// agent names them: a CDI device's name, or a device node's path.
	Devices []string `json:"devices,omitempty"`

	// Constraints and Retries are as the run was submitted with.
	Constraints []Constraint `json:"constraints,omitempty"`
	Retries     int          `json:"retries,omitempty"`
	// Refresh and SecretRefresh are as the run was submitted with.
	Refresh       Refresh            `json:"refresh,omitzero"`
	SecretRefresh map[string]Refresh `json:"secret_refresh,omitempty"`
	// Node is the name of the node the run was placed on, in a cluster of
	// servers; Attempt counts its placements, from 1.
	Node    string `json:"node,omitempty"`
	Attempt int    `json:"attempt,omitempty"`
}

// RunEvent is one thing that happened to a run.
type RunEvent struct {
	Time    time.Time `json:"time"`
	Type    string    `json:"type"`
	Message string    `json:"message"`
}

// ListRunsResponse is the answer to listing runs.
type ListRunsResponse struct {
	Runs []*Run `json:"runs"`
}

// Duration is a time.Duration that travels as a Go duration string.
type Duration time.Duration

// MarshalText writes the duration as "1h30m0s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ImportImageResponse lists the images an archive held.
type ImportImageResponse struct {
	Images []string `json:"images"`
}
