package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/runlog"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
)

// DefaultContainerdAddress is containerd's standard socket.
const DefaultContainerdAddress = "/run/containerd/containerd.sock"

// runLabel marks the containers hush made with the run's id, and
// ownerLabel with the data dir of the agent that made them, so that agents
// that share a namespace never take each other's containers for leftovers.
const (
	runLabel   = "sh.hush.run-id"
	ownerLabel = "sh.hush.agent"
	// logLabel says where the task's output goes: logByLogger, the
	// shim's hush _logger, which a restarted agent can leave it to.
	logLabel    = "sh.hush.log"
	logByLogger = "logger"
)

// cpuPeriod is the CFS period used to express CPU limits.
const cpuPeriod = 100000

// answerTimeout bounds the check that containerd answers, so that a run
// submitted while containerd is down fails at once instead of hanging.
const answerTimeout = 3 * time.Second

// Containerd runs workloads as containerd containers.
type Containerd struct {
	client    *client.Client
	address   string
	namespace string
	logger    hclog.Logger
	devices   []Device // the node's GPUs, from UseDevices in devices.go
	owner     string   // the data dir of the agent whose runs it holds
}

var (
	_ Runtime = (*Containerd)(nil)
	_ Checker = (*Containerd)(nil)
)

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
	// gRPC redials a lost containerd by itself; a short cap on its
	// backoff lets runs start again soon after containerd is back.
	redial := grpc.WithConnectParams(grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 2, Jitter: 0.2, MaxDelay: time.Second},
		MinConnectTimeout: 5 * time.Second,
	})
	c, err := client.New(address, client.WithDefaultNamespace(namespace), client.WithTimeout(5*time.Second),
		client.WithExtraDialOpts([]grpc.DialOption{redial}))
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
	return &Containerd{client: c, address: address, namespace: namespace, logger: logger}, nil
}

// SetOwner names the agent whose runs this runtime holds, by its data
// dir: Cleanup leaves the containers of other agents' runs alone.
func (r *Containerd) SetOwner(dataDir string) { r.owner = dataDir }

// labels returns the labels of run id's container.
func (r *Containerd) labels(id string) map[string]string {
	labels := map[string]string{runLabel: id, logLabel: logByLogger}
	if r.owner != "" {
		labels[ownerLabel] = r.owner
	}
	return labels
}

// Name returns "containerd".
func (r *Containerd) Name() string { return "containerd" }

// Isolated reports that containers see their own filesystem.
func (r *Containerd) Isolated() bool { return true }

// Close closes the connection to containerd.
func (r *Containerd) Close() error { return r.client.Close() }

func (r *Containerd) ctx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, r.namespace)
}

// Available reports containerd as not answering when its socket is gone
// (it stopped, or is not yet back) or the client's connection to it has
// failed (it died); it does not wait on containerd.
func (r *Containerd) Available() error {
	if _, err := os.Stat(r.address); err != nil {
		return fmt.Errorf("containerd at %s is not answering: %w (is it running?)", r.address, err)
	}
	if conn, ok := r.client.Conn().(*grpc.ClientConn); ok && conn.GetState() == connectivity.TransientFailure {
		return fmt.Errorf("containerd at %s is not answering: the connection to it failed (is it running?)", r.address)
	}
	return nil
}

// answering checks, within answerTimeout, that containerd answers.
func (r *Containerd) answering(ctx context.Context) error {
	// Without its socket the client would retry the dial until the
	// timeout: say so at once.
	if err := r.Available(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, answerTimeout)
	defer cancel()
	if _, err := r.client.Version(ctx); err != nil {
		return fmt.Errorf("containerd at %s is not answering: %w (is it running?)", r.address, err)
	}
	return nil
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
	if errors.Is(err, io.ErrUnexpectedEOF) {
		// The server let only a tar through: this one is cut short.
		return nil, fmt.Errorf("import image archive: it ends early (%w): is the file whole? save or export the image again", err)
	}
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
	name := imageName(spec.Image, ref)
	img, err := r.client.GetImage(ctx, ref)
	if err == nil {
		if ok, _ := img.IsUnpacked(ctx, ""); !ok {
			if err := img.Unpack(ctx, ""); err != nil {
				return nil, fmt.Errorf("unpack image %s: %w", name, err)
			}
		}
		spec.Event("image", fmt.Sprintf("using image %s already present", name))
		return img, nil
	}
	if !errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("look up image %s: %w", name, err)
	}
	spec.Event("image", fmt.Sprintf("pulling image %s", name))
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
	// Progress goes into the run's events while the pull lasts, paced so
	// that a long pull cannot flood the run's record.
	progress := newPullProgress(name, r.client.ContentStore())
	pctx, stopProgress := context.WithCancel(ctx)
	reported := make(chan struct{})
	go func() {
		defer close(reported)
		progress.report(pctx, spec.Event)
	}()
	img, err = r.client.Pull(ctx, ref, client.WithPullUnpack, client.WithResolver(resolver),
		client.WithImageHandler(progress.handler()))
	stopProgress()
	<-reported
	if err != nil {
		return nil, fmt.Errorf("image %s is not on this node and pulling it failed: %w (import it with `hush image import`, or add a docker secret for its registry)", name, err)
	}
	done := ""
	if s, err := progress.status(ctx); err == nil && s.Layers > 0 {
		done = fmt.Sprintf(": %s, %s", layers(s.Layers), formatSize(s.Bytes))
	}
	spec.Event("image", fmt.Sprintf("pulled image %s in %s%s", name, time.Since(start).Round(time.Millisecond), done))
	return img, nil
}

// normalizeRef turns "busybox" into "docker.io/library/busybox:latest", as
// containerd names images, with the distribution grammar that docker uses.
// A reference that does not parse, which the agent refuses at submit, is
// left as it is.
func normalizeRef(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	return reference.TagNameOnly(named).String()
}

// imageName is how messages name the image of a run: as its spec gives it,
// and the full reference when that differs.
func imageName(given, ref string) string {
	if given == ref {
		return ref
	}
	return given + " (" + ref + ")"
}

// Start creates the container and starts its task.
func (r *Containerd) Start(ctx context.Context, spec *Spec) (Task, error) {
	ctx = r.ctx(ctx)
	if err := r.answering(ctx); err != nil {
		return nil, err
	}
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
		client.WithContainerLabels(r.labels(spec.ID)),
		client.WithNewSpec(opts...),
	)
	if err != nil {
		return nil, fmt.Errorf("create container: %w", err)
	}
	// The shim starts `hush _logger TARGET` to write the task's output
	// into the run's sealed log, so that the log is written, and the
	// workload never blocks on a full pipe, whether the agent runs or not.
	// The shim makes the logger's arguments from this map: key, value.
	logIO := cio.BinaryIO(spec.HushBinary, map[string]string{runlog.LoggerCommand: spec.Log.Encode()})
	before := runlog.NewestSegment(spec.Log.Dir)
	task, err := container.NewTask(ctx, logIO)
	if err != nil {
		r.remove(context.WithoutCancel(ctx), container)
		return nil, fmt.Errorf("create task: %w", err)
	}
	// containerd 1.6's shim goes on when the logger exits before it is
	// ready, leaving the workload's output nowhere: a logger that started
	// has made a segment of the log: its first, or, for a restarted
	// workload, one after the last.
	if after := runlog.NewestSegment(spec.Log.Dir); after == nil || before != nil && os.SameFile(before, after) {
		r.remove(context.WithoutCancel(ctx), container)
		return nil, fmt.Errorf("start the run's logger: `%s %s` wrote no log in %s (can the agent's user run it, and read its key file %s?)",
			spec.HushBinary, runlog.LoggerCommand, spec.Log.Dir, spec.Log.Key)
	}
	// Wait before Start, so that an instant exit is not missed.
	t, err := r.watch(container, task)
	if err != nil {
		r.remove(context.WithoutCancel(ctx), container)
		return nil, err
	}
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
