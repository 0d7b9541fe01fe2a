package agent

import (
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"

	"github.com/hashicorp/go-hclog"
)

// reloads are what SIGHUP reloads: the TLS files, and the audit log,
// which is opened again for logrotate. Parts of the agent add to it as
// they start.
type reloads struct {
	mu  sync.Mutex
	fns []func()
}

func (r *reloads) add(fn func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fns = append(r.fns, fn)
}

// reloadOnSIGHUP runs what r holds on each SIGHUP until the returned
// function is called. With nothing to reload it only keeps SIGHUP from
// ending the agent, as operators send it to any daemon after changing its
// files.
func reloadOnSIGHUP(r *reloads, logger hclog.Logger) (stop func()) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-sigs:
				r.mu.Lock()
				fns := slices.Clone(r.fns)
				r.mu.Unlock()
				if len(fns) == 0 {
					logger.Info("SIGHUP received; nothing to reload")
				}
				for _, fn := range fns {
					fn()
				}
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
	}
}
