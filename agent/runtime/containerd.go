package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/runlog"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultContainerdAddress is containerd's standard socket.
const DefaultContainerdAddress = "/run/containerd/containerd.sock"

// runLabel marks the containers hush made with the run's id.
const runLabel = "sh.hush.run-id"

// cpuPeriod is the CFS period used to express CPU limits.
const cpuPeriod = 100000

// Containerd runs workloads as containerd containers.
type Containerd struct {
	client    *client.Client
	namespace string
	logger    hclog.Logger
	devices   []Device // the node's GPUs, from UseDevices in devices.go
}

var _ Runtime = (*Containerd)(nil)

// NewContainerd connects to the containerd daemon at address and checks
// that it answers.
func NewContainerd(ctx context.Context, address, namespace string, logger hclog.Logger) (*Containerd, error) {
	if address == "" {
		address = DefaultContainerdAddress
	}
	// Without a socket there is nothing to wait for.
	if _, err := os.Stat(address); err != nil {
		return nil, fmt.Errorf("no containerd socket at %s (is containerd installed and running? set runtime \"containerd\" { address = ... })", address)
	}
	c, err := client.New(address, client.WithDefaultNamespace(namespace), client.WithTimeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("connect to containerd at %s: %w", address, err)
	}
	vctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := c.Version(vctx)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("containerd at %s does not answer: %w (is it running? set runtime \"containerd\" { address = ... })", address, err)
	}
	logger.Info("connected to containerd", "address", address, "version", v.Version, "namespace", namespace)
	return &Containerd{client: c, namespace: namespace, logger: logger}, nil
}

// Name returns "containerd".
func (r *Containerd) Name() string { return "containerd" }

// Isolated reports that containers see their own filesystem.
func (r *Containerd) Isolated() bool { return true }

// Adopt finds no workload: this runtime cannot yet adopt what an earlier
// agent started.
func (r *Containerd) Adopt(context.Context, string) (Task, error) { return nil, ErrNoWorkload }

// Close closes the connection to containerd.
func (r *Containerd) Close() error { return r.client.Close() }

func (r *Containerd) ctx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, r.namespace)
}

// Import loads an OCI or Docker image archive and unpacks its images, and
// returns their names.
func (r *Containerd) Import(ctx context.Context, archive io.Reader) ([]string, error) {
	ctx = r.ctx(ctx)
	ctx, done, err := r.client.WithLease(ctx)
	if err != nil {
		return nil, fmt.Errorf("create lease: %w", err)
	}
	defer done(context.WithoutCancel(ctx))
	imgs, err := r.client.Import(ctx, archive, client.WithImportPlatform(platforms.Default()),
		client.WithSkipMissing())
	if err != nil {
		return nil, fmt.Errorf("import image archive: %w", err)
	}
	var names []string
	for _, img := range imgs {
		image := client.NewImageWithPlatform(r.client, img, platforms.Default())
		if err := image.Unpack(ctx, ""); err != nil {
			return nil, fmt.Errorf("unpack %s: %w", img.Name, err)
		}
		names = append(names, img.Name)
	}
	return names, nil
}

// image returns the image for ref, pulling it when it is not present.
func (r *Containerd) image(ctx context.Context, spec *Spec) (client.Image, error) {
	ref := normalizeRef(spec.Image)
	img, err := r.client.GetImage(ctx, ref)
	if err == nil {
		if ok, _ := img.IsUnpacked(ctx, ""); !ok {
			if err := img.Unpack(ctx, ""); err != nil {
				return nil, fmt.Errorf("unpack image %s: %w", ref, err)
			}
		}
		spec.Event("image", fmt.Sprintf("using image %s already present", ref))
		return img, nil
	}
	if !errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("look up image %s: %w", ref, err)
	}
	spec.Event("image", fmt.Sprintf("pulling image %s", ref))
	hosts := docker.ConfigureDefaultRegistries(docker.WithAuthorizer(docker.NewDockerAuthorizer(
		docker.WithAuthCreds(func(host string) (string, string, error) {
			if spec.Registry != nil {
				if u, p, ok := spec.Registry(host); ok {
					return u, p, nil
				}
			}
			return "", "", nil
		}))))
	resolver := docker.NewResolver(docker.ResolverOptions{Hosts: hosts})
	start := time.Now()
	img, err = r.client.Pull(ctx, ref, client.WithPullUnpack, client.WithResolver(resolver))
	if err != nil {
		return nil, fmt.Errorf("image %s is not on this node and pulling it failed: %w (import it with `hush image import`, or add a docker secret for its registry)", ref, err)
	}
	spec.Event("image", fmt.Sprintf("pulled image %s in %s", ref, time.Since(start).Round(time.Millisecond)))
	return img, nil
}

// normalizeRef turns "busybox" into "docker.io/library/busybox:latest", as
// docker and nerdctl do.
func normalizeRef(ref string) string {
	name, tag := ref, ""
	if i := strings.LastIndex(ref, "@"); i >= 0 {
		name, tag = ref[:i], ref[i:]
	} else if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		name, tag = ref[:i], ref[i:]
	}
	if tag == "" {
		tag = ":latest"
	}
	first, _, hasSlash := strings.Cut(name, "/")
	switch {
	case !hasSlash:
		name = "docker.io/library/" + name
	case !strings.ContainsAny(first, ".:") && first != "localhost":
		name = "docker.io/" + name
	}
	return name + tag
}

// Start creates the container and starts its task.
func (r *Containerd) Start(ctx context.Context, spec *Spec) (Task, error) {
	ctx = r.ctx(ctx)
	// The lease keeps a pulled image's content from garbage collection
	// until the container holds it.
	lctx, done, err := r.client.WithLease(ctx)
	if err != nil {
		return nil, fmt.Errorf("create lease: %w", err)
	}
	defer done(context.WithoutCancel(ctx))

	img, err := r.image(lctx, spec)
	if err != nil {
		return nil, err
	}
	opts := []oci.SpecOpts{
		oci.WithImageConfig(img),
		oci.WithProcessArgs(path.Join(BinDir, "hush"), "_entrypoint", "--env-file", path.Join(RunDir, spec.EnvFile),
			"--", "/bin/sh", "-c", spec.Command),
		oci.WithProcessCwd("/"),
		oci.WithEnv(spec.Env),
		withBinOnPath,
		oci.WithHostNamespace(specs.NetworkNamespace),
		oci.WithHostHostsFile,
		oci.WithHostResolvconf,
		oci.WithMounts(r.mounts(spec)),
	}
	opts = append(opts, deviceOpts(spec)...)
	if spec.MemoryBytes > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(spec.MemoryBytes)))
	}
	if spec.CPUs > 0 {
		opts = append(opts, oci.WithCPUCFS(int64(spec.CPUs*cpuPeriod), cpuPeriod))
	}
	container, err := r.client.NewContainer(lctx, spec.ID,
		client.WithImage(img),
		client.WithNewSnapshot(spec.ID, img),
		client.WithContainerLabels(map[string]string{runLabel: spec.ID}),
		client.WithNewSpec(opts...),
	)
	if err != nil {
		return nil, fmt.Errorf("create container: %w", err)
	}
	log, err := spec.Log.Create(r.logger.With("run_id", spec.ID))
	if err != nil {
		container.Delete(context.WithoutCancel(ctx), client.WithSnapshotCleanup)
		return nil, err
	}
	t := &containerdTask{runtime: r, container: container, log: log}
	task, err := container.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, log, log)))
	if err != nil {
		t.Delete(ctx)
		return nil, fmt.Errorf("create task: %w", err)
	}
	t.task = task
	// Wait before Start, so that an instant exit is not missed. The wait
	// outlives ctx, which ends when a stop is requested.
	exitC, err := task.Wait(context.WithoutCancel(ctx))
	if err != nil {
		t.Delete(ctx)
		return nil, fmt.Errorf("wait for task: %w", err)
	}
	t.exited = make(chan struct{})
	go func() {
		t.exit = <-exitC
		close(t.exited)
	}()
	if err := task.Start(ctx); err != nil {
		t.Delete(ctx)
		return nil, fmt.Errorf("start task: %w", err)
	}
	return t, nil
}

func (r *Containerd) mounts(spec *Spec) []specs.Mount {
	// Secrets are data: nothing on the run's tmpfs may be executed.
	secret := []string{"rbind", "ro", "nosuid", "nodev", "noexec"}
	mounts := []specs.Mount{
		{Destination: RunDir, Type: "bind", Source: spec.RunDir, Options: secret},
		{Destination: path.Join(BinDir, "hush"), Type: "bind", Source: spec.HushBinary, Options: []string{"rbind", "ro", "nosuid", "nodev"}},
	}
	for _, m := range spec.Mounts {
		mounts = append(mounts, specs.Mount{Destination: m.Target, Type: "bind", Source: m.Source, Options: secret})
	}
	return mounts
}

// withBinOnPath puts the hush binary's directory first on PATH, so that a
// run can call hush.
func withBinOnPath(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
	if s.Process == nil {
		return nil
	}
	for i, kv := range s.Process.Env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			s.Process.Env[i] = "PATH=" + BinDir + ":" + v
			return nil
		}
	}
	s.Process.Env = append(s.Process.Env, "PATH="+BinDir+":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	return nil
}

// Cleanup deletes hush's containers whose runs are not active.
func (r *Containerd) Cleanup(ctx context.Context, keep func(id string) bool) error {
	ctx = r.ctx(ctx)
	containers, err := r.client.Containers(ctx, "labels."+runLabel)
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	var errs []error
	for _, c := range containers {
		if keep(c.ID()) {
			continue
		}
		r.logger.Info("removing container left from an earlier agent", "run_id", c.ID())
		t := &containerdTask{runtime: r, container: c}
		if task, err := c.Task(ctx, nil); err == nil {
			t.task = task
		}
		errs = append(errs, t.Delete(ctx))
	}
	return errors.Join(errs...)
}

type containerdTask struct {
	runtime   *Containerd
	container client.Container
	task      client.Task
	log       *runlog.Writer // nil for a task left by an earlier agent
	// exited is closed once the task has exited, and exit set: both Wait
	// and Stop wait on it.
	exited chan struct{}
	exit   client.ExitStatus

	once      sync.Once
	deleteErr error
}

func (t *containerdTask) Wait(ctx context.Context) (int, error) {
	select {
	case <-t.exited:
		code, _, err := t.exit.Result()
		if err != nil {
			return -1, fmt.Errorf("wait for task: %w", err)
		}
		return int(code), nil
	case <-ctx.Done():
		return -1, ctx.Err()
	}
}

// hasExited reports whether the task is known to have exited.
func (t *containerdTask) hasExited() bool {
	if t.exited == nil {
		return false
	}
	select {
	case <-t.exited:
		return true
	default:
		return false
	}
}

func (t *containerdTask) Stop(ctx context.Context, grace time.Duration) error {
	if t.hasExited() {
		return nil
	}
	ctx = t.runtime.ctx(ctx)
	if err := t.task.Kill(ctx, syscall.SIGTERM); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("signal task: %w", err)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-t.exited:
		return nil
	case <-timer.C:
		if err := t.task.Kill(ctx, syscall.SIGKILL, client.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("kill task: %w", err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Delete kills what is left of the task and removes the container with its
// snapshot; not-found counts as done.
func (t *containerdTask) Delete(ctx context.Context) error {
	t.once.Do(func() {
		ctx := t.runtime.ctx(context.WithoutCancel(ctx))
		var errs []error
		if t.task != nil {
			var opts []client.ProcessDeleteOpts
			if !t.hasExited() {
				// A task that has exited has nothing left to kill: its
				// processes went with its PID namespace.
				opts = append(opts, client.WithProcessKill)
			}
			if _, err := t.task.Delete(ctx, opts...); err != nil && !errdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("delete task: %w", err))
			}
		}
		if err := t.container.Delete(ctx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete container: %w", err))
		}
		if t.log != nil {
			// The task's output is copied to the log until its deletion.
			t.log.Close()
		}
		t.deleteErr = errors.Join(errs...)
	})
	return t.deleteErr
}
