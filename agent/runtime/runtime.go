// Package runtime runs workloads: a Runtime starts a Task from a Spec that
// the run manager prepared, with secrets already materialized on a tmpfs.
package runtime

import (
	"context"
	"errors"
	"syscall"
	"time"

	"github.com/hush-sh/hush/agent/runlog"
)

// ErrNoWorkload is returned by Adopt when a run has no workload left in
// the runtime: it never started, or it is gone.
var ErrNoWorkload = errors.New("the run has no workload in the runtime")

// Where the run's own tmpfs and the hush binary appear inside a container.
const (
	// RunDir holds the run's tmpfs: the entrypoint's env file, the run
	// token and the secret files.
	RunDir = "/.hush/run"
	// BinDir holds the hush binary, first on the run's PATH.
	BinDir = "/.hush/bin"
)

// Spec is everything a runtime needs to start one run.
type Spec struct {
	// ID is the run's id; runtimes name their objects after it.
	ID string
	// Image is an OCI image reference; runtimes without images ignore it.
	Image string
	// Command runs under /bin/sh -c.
	Command string
	// Env holds the variables that are not secret, as KEY=VALUE. Secret
	// values never go here: the entrypoint reads them from EnvFile.
	Env []string
	// RunDir is the host path of the run's tmpfs.
	RunDir string
	// EnvFile is the name, within RunDir, of the file of secret variables.
	EnvFile string
	// Mounts are secret files and directories on the tmpfs, to appear
	// read-only at their targets.
	Mounts []Mount
	// HushBinary is the host path of the static hush binary, which serves
	// as entrypoint.
	HushBinary string
	// User is the host user the workload runs as, from the runtime's
	// UserAssigner; nil runs it as the runtime's default.
	User *User
	// Log is where the workload's stdout and stderr go. A process of the
	// runtime's, not the agent, writes it, so that the workload's output
	// is kept while the agent is away: the shim's logger, or the exec
	// supervisor.
	Log runlog.Target
	// Registry returns credentials for an image registry host, or false.
	Registry func(host string) (user, password string, ok bool) `json:"-"`
	// Event records progress, such as an image pull.
	Event func(typ, msg string) `json:"-"`
	GPUs  int
	// Devices are the devices the run holds, each given to it whole.
	Devices []Device
	// CPUs and MemoryBytes limit the workload; zero means no limit.
	CPUs        float64
	MemoryBytes int64
}

// Mount is a file or directory from the run's tmpfs.
type Mount struct {
	// Source is the host path, inside Spec.RunDir.
	Source string
	// Target is the path inside the workload's filesystem.
	Target string
}

// Runtime starts workloads.
type Runtime interface {
	// Name is the runtime's name, as in the agent's runtime block.
	Name() string
	// Isolated reports whether workloads see their own filesystem, where
	// Mounts appear at their targets and the run dir at RunDir. Otherwise
	// they see the host's, and find secret files on the run dir itself.
	Isolated() bool
	// Start creates and starts the workload. Once it returns a Task, the
	// caller must Delete it.
	Start(ctx context.Context, spec *Spec) (Task, error)
	// Adopt finds the workload of run id that an earlier agent process
	// started, whether it still runs or exited while no agent watched it,
	// and returns its task, whose Wait gives its real exit code. It
	// returns an error matching ErrNoWorkload when there is none.
	Adopt(ctx context.Context, id string) (Task, error)
	// Cleanup removes what is left of runs that no longer exist, such as
	// containers from before an agent restart. keep reports run ids that
	// are still active.
	Cleanup(ctx context.Context, keep func(id string) bool) error
	// Close releases the runtime's connections.
	Close() error
}

// Device is a device node or a CDI device that a run gets whole, such as
// a GPU.
type Device struct {
	// ID is what NVIDIA_VISIBLE_DEVICES and the node's listing call it: a
	// CDI device's name, or the node's path.
	ID string
	// CDI is the device's fully qualified CDI name, as vendor.com/class=name;
	// empty for a device node given without CDI.
	CDI string
	// Path is the host path of a device node given without CDI.
	Path string
}

// Checker is implemented by runtimes that depend on a daemon: Available
// says at once, without waiting on the daemon, when it is known not to
// answer, so that a run is refused at submit rather than failed at start.
type Checker interface {
	Available() error
}

// User is a host identity a workload runs as: the uid, the gid, and no
// supplementary groups.
type User struct {
	UID, GID uint32
}

// UserAssigner is implemented by runtimes that run workloads as
// unprivileged host users. The run's tmpfs and files must then belong to
// the run's user, so that its workload can read them and nobody else can.
type UserAssigner interface {
	// AssignUser reserves the user that run id executes as, or returns nil
	// when the workload runs as the agent's own user.
	AssignUser(id string) (*User, error)
	// ReleaseUser ends every process left with run id's user, when that
	// user is the run's alone, and frees the user for later runs. It is
	// safe to call for a run without a user.
	ReleaseUser(id string)
}

// Task is a started workload.
type Task interface {
	// Wait blocks until the workload exits and returns its exit code.
	Wait(ctx context.Context) (int, error)
	// Stop asks the workload to end with SIGTERM and kills it with SIGKILL
	// if it is still running after grace.
	Stop(ctx context.Context, grace time.Duration) error
	// Signal sends sig to the workload's first process, unless it has
	// exited.
	Signal(ctx context.Context, sig syscall.Signal) error
	// Delete removes the workload and everything the runtime made for it.
	// Once it returns, the workload's log is complete. It is safe to call
	// more than once.
	Delete(ctx context.Context) error
}
