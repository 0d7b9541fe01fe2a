package runtime

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
)

// runFilter selects the containers that hush made. The label key is
// quoted: containerd's filter syntax takes an unquoted "-" for an operator.
var runFilter = "labels." + strconv.Quote(runLabel)

// Adopt loads the container of run id and its task, which an earlier agent
// started and which runs on, or exited while no agent watched, in its
// shim: the shim keeps the exit status until the task is deleted. A
// container without a task, or a task that was created but never started
// (the agent stopped in between), has no workload: Adopt deletes such a
// task, so that its logger ends, and leaves the container to Cleanup.
func (r *Containerd) Adopt(ctx context.Context, id string) (Task, error) {
	ctx = r.ctx(ctx)
	if err := r.answering(ctx); err != nil {
		return nil, err
	}
	container, err := r.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("adopt run %s: no container: %w", id, ErrNoWorkload)
	}
	if err != nil {
		return nil, fmt.Errorf("adopt run %s: load container: %w", id, err)
	}
	labels, err := container.Labels(ctx)
	if err != nil {
		return nil, fmt.Errorf("adopt run %s: read container labels: %w", id, err)
	}
	if labels[runLabel] != id {
		return nil, fmt.Errorf("adopt run %s: container %s is not this run's (label %s=%q): %w", id, id, runLabel, labels[runLabel], ErrNoWorkload)
	}
	if labels[logLabel] != logByLogger {
		// Made by an older hush, whose output went to that agent: nothing
		// reads it now, so the workload would block on it. Cleanup
		// removes it.
		return nil, fmt.Errorf("adopt run %s: its container was made by an older hush, whose output nothing reads now: %w", id, ErrNoWorkload)
	}
	task, err := container.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("adopt run %s: its container has no task: %w", id, ErrNoWorkload)
	}
	if err != nil {
		return nil, fmt.Errorf("adopt run %s: load task: %w", id, err)
	}
	st, err := task.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("adopt run %s: read task status: %w", id, err)
	}
	if st.Status == client.Created {
		if _, err := task.Delete(ctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("adopt run %s: delete its task, which never started: %w", id, err)
		}
		return nil, fmt.Errorf("adopt run %s: its task never started: %w", id, ErrNoWorkload)
	}
	t, err := r.watch(container, task)
	if err != nil {
		return nil, fmt.Errorf("adopt run %s: %w", id, err)
	}
	t.logger.Info("adopted task", "status", string(st.Status))
	return t, nil
}

// Cleanup kills and deletes every container that hush made for this
// agent whose run keep does not report, with its task and snapshot. It
// never touches containers without hush's label, nor those labelled with
// another agent's data dir; one made before hush labelled its agent
// counts as this agent's.
func (r *Containerd) Cleanup(ctx context.Context, keep func(id string) bool) error {
	ctx = r.ctx(ctx)
	containers, err := r.client.Containers(ctx, runFilter)
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	var errs []error
	for _, c := range containers {
		if keep(c.ID()) {
			continue
		}
		labels, err := c.Labels(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("read labels of container %s: %w", c.ID(), err))
			continue
		}
		if owner, ok := labels[ownerLabel]; ok && owner != r.owner {
			continue
		}
		r.logger.Info("removing container left from an earlier agent", "run_id", c.ID())
		if err := r.remove(ctx, c); err != nil {
			errs = append(errs, fmt.Errorf("remove container %s: %w", c.ID(), err))
		}
	}
	return errors.Join(errs...)
}
