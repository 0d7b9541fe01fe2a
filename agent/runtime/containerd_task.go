package runtime

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The backoff between attempts to reach containerd again after the
// connection to it broke, e.g. while it restarts: the task lives on in its
// shim meanwhile.
const (
	reconnectMin = 100 * time.Millisecond
	reconnectMax = 5 * time.Second
)

// retryTimeout bounds how long Stop and Delete retry while containerd is
// away.
const retryTimeout = time.Minute

// containerdTask is a task that runs in containerd's shim: started by this
// agent, or adopted from an earlier one.
type containerdTask struct {
	runtime   *Containerd
	container client.Container
	task      client.Task
	logger    hclog.Logger

	// exited is closed once the task has exited, with code set, or once
	// waiting for it failed, with waitErr set: Wait and Stop wait on it.
	exited  chan struct{}
	code    int
	waitErr error
	// stopWatch ends the wait, once the task is deleted.
	stopWatch context.CancelFunc

	once      sync.Once
	deleteErr error
}

var _ Task = (*containerdTask)(nil)

// watch starts waiting for task's exit in the background and returns the
// Task of it.
func (r *Containerd) watch(container client.Container, task client.Task) (*containerdTask, error) {
	// The wait outlives the caller's ctx, which ends when a stop is
	// requested; Delete ends it.
	ctx, cancel := context.WithCancel(r.ctx(context.Background()))
	exitC, err := task.Wait(ctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("wait for task: %w", err)
	}
	t := &containerdTask{
		runtime: r, container: container, task: task,
		logger: r.logger.With("run_id", container.ID()),
		exited: make(chan struct{}), stopWatch: cancel,
	}
	go t.wait(ctx, exitC)
	return t, nil
}

// wait records the task's exit status once exitC gives it. When the
// connection to containerd breaks (containerd restarts), the task still
// runs in its shim, which keeps its exit status until the task is deleted:
// wait reconnects with backoff, reloads the task and waits again.
func (t *containerdTask) wait(ctx context.Context, exitC <-chan client.ExitStatus) {
	defer close(t.exited)
	for {
		code, _, err := (<-exitC).Result()
		switch {
		case err == nil:
			t.code = int(code)
			return
		case ctx.Err() != nil:
			t.waitErr = errors.New("wait for task: the task was deleted")
			return
		case !unavailable(err):
			t.waitErr = fmt.Errorf("wait for task: %w", err)
			return
		}
		t.logger.Warn("lost containerd while waiting for the task; reconnecting", "address", t.runtime.address, "error", err)
		task, err := t.reload(ctx)
		if err != nil {
			t.waitErr = err
			return
		}
		t.logger.Info("reconnected to containerd; waiting for the task again")
		if exitC, err = task.Wait(ctx); err != nil {
			t.waitErr = fmt.Errorf("wait for task: %w", err)
			return
		}
	}
}

// reload loads the task again once containerd answers, retrying with
// backoff while it does not. The task is gone when containerd no longer
// knows it: its shim died with it.
func (t *containerdTask) reload(ctx context.Context) (client.Task, error) {
	var task client.Task
	err := retry(ctx, func() error {
		actx, cancel := context.WithTimeout(ctx, answerTimeout)
		defer cancel()
		var err error
		task, err = t.container.Task(actx, nil)
		if err != nil && actx.Err() != nil && ctx.Err() == nil {
			// gRPC was still connecting when the attempt timed out.
			return fmt.Errorf("%w: %w", errdefs.ErrUnavailable, err)
		}
		return err
	})
	switch {
	case errdefs.IsNotFound(err):
		return nil, fmt.Errorf("reload task after containerd came back: %w", ErrNoWorkload)
	case err != nil:
		return nil, fmt.Errorf("reload task after containerd came back: %w", err)
	}
	return task, nil
}

// retry calls fn until it returns anything but an error that says
// containerd is unavailable, with backoff between the calls, or ctx ends.
func retry(ctx context.Context, fn func() error) error {
	delay := reconnectMin
	for {
		err := fn()
		if err == nil || !unavailable(err) {
			return err
		}
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("%w (gave up: %w)", err, ctx.Err())
		case <-timer.C:
		}
		delay = min(delay*2, reconnectMax)
	}
}

// unavailable reports whether err says that containerd cannot be reached:
// the connection broke, or nothing answers on its socket.
func unavailable(err error) bool {
	return status.Code(err) == codes.Unavailable || errdefs.IsUnavailable(err) || errdefs.IsUnavailable(errgrpc.ToNative(err))
}

// Wait returns the task's exit code once it has exited. It returns an
// error matching ErrNoWorkload when the task vanished from containerd.
func (t *containerdTask) Wait(ctx context.Context) (int, error) {
	select {
	case <-t.exited:
		if t.waitErr != nil {
			return -1, t.waitErr
		}
		return t.code, nil
	case <-ctx.Done():
		return -1, ctx.Err()
	}
}

// hasExited reports whether the task is known to have exited.
func (t *containerdTask) hasExited() bool {
	select {
	case <-t.exited:
		return t.waitErr == nil
	default:
		return false
	}
}

// Stop sends SIGTERM, and SIGKILL to every process of the task if it still
// runs after grace. While containerd is away it retries each signal for up
// to retryTimeout.
func (t *containerdTask) Stop(ctx context.Context, grace time.Duration) error {
	if t.hasExited() {
		return nil
	}
	ctx = t.runtime.ctx(ctx)
	kill := func(sig syscall.Signal, opts ...client.KillOpts) error {
		ctx, cancel := context.WithTimeout(ctx, retryTimeout)
		defer cancel()
		err := retry(ctx, func() error { return t.task.Kill(ctx, sig, opts...) })
		if err != nil && !errdefs.IsNotFound(err) {
			return err
		}
		return nil
	}
	if err := kill(syscall.SIGTERM); err != nil {
		return fmt.Errorf("signal task: %w", err)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-t.exited:
		return nil
	case <-timer.C:
		if err := kill(syscall.SIGKILL, client.WithKillAll); err != nil {
			return fmt.Errorf("kill task: %w", err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Signal sends sig to the task's first process.
func (t *containerdTask) Signal(ctx context.Context, sig syscall.Signal) error {
	if t.hasExited() {
		return nil
	}
	ctx, cancel := context.WithTimeout(t.runtime.ctx(ctx), retryTimeout)
	defer cancel()
	err := retry(ctx, func() error { return t.task.Kill(ctx, sig) })
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("signal task: %w", err)
	}
	return nil
}

// Delete kills what is left of the task, deletes it, and removes the
// container with its snapshot; not-found counts as done. containerd's
// shim deletes a task once its logger has written all of the task's output
// and exited, so the run's log is complete when Delete returns; only a
// logger that takes more than 12 s to do so is killed by the shim first.
func (t *containerdTask) Delete(ctx context.Context) error {
	t.once.Do(func() {
		ctx, cancel := context.WithTimeout(t.runtime.ctx(context.WithoutCancel(ctx)), retryTimeout)
		defer cancel()
		var errs []error
		var opts []client.ProcessDeleteOpts
		if !t.hasExited() {
			// A task that has exited has nothing left to kill: its
			// processes went with its PID namespace.
			opts = append(opts, client.WithProcessKill)
		}
		err := retry(ctx, func() error { _, err := t.task.Delete(ctx, opts...); return err })
		if err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete task: %w", err))
		}
		t.stopWatch()
		err = retry(ctx, func() error { return t.container.Delete(ctx, client.WithSnapshotCleanup) })
		if err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete container: %w", err))
		}
		t.deleteErr = errors.Join(errs...)
	})
	return t.deleteErr
}

// remove kills and deletes container's task, if it has one, and deletes the
// container with its snapshot; not-found counts as done.
func (r *Containerd) remove(ctx context.Context, container client.Container) error {
	var errs []error
	task, err := container.Task(ctx, nil)
	switch {
	case err == nil:
		if _, err := task.Delete(ctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete task: %w", err))
		}
	case !errdefs.IsNotFound(err):
		errs = append(errs, fmt.Errorf("load task: %w", err))
	}
	if err := container.Delete(ctx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("delete container: %w", err))
	}
	return errors.Join(errs...)
}
