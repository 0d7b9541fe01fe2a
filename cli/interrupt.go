package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// interruptGrace is how long a command has to return after SIGINT or
// SIGTERM cancels its context before the process exits anyway.
const interruptGrace = 2 * time.Second

// interrupted is the cause of a context cancelled by a signal.
type interrupted struct{ sig syscall.Signal }

func (e *interrupted) Error() string { return "interrupted by " + signalName(e.sig) }

// exitCode is the shell's code for a process ended by the signal: 130 for
// SIGINT, 143 for SIGTERM.
func (e *interrupted) exitCode() int { return 128 + int(e.sig) }

func signalName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return sig.String()
}

// interruption returns the signal that cancelled ctx, or nil.
func interruption(ctx context.Context) *interrupted {
	var intr *interrupted
	if errors.As(context.Cause(ctx), &intr) {
		return intr
	}
	return nil
}

// notifyInterrupt returns a context that SIGINT or SIGTERM cancels, with
// an *interrupted cause. Every command returns promptly once it is
// cancelled; in case one does not, the process exits with the signal's
// code interruptGrace later, or at once on a second signal. A command that
// stops itself (the agent, which shuts down cleanly at its own pace) gets
// only the cancel. Call stop when the command has returned.
func notifyInterrupt(selfStopping bool, stderr io.Writer) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		var sig os.Signal
		select {
		case sig = <-sigs:
		case <-done:
			return
		}
		intr := &interrupted{sig: sig.(syscall.Signal)}
		cancel(intr)
		if selfStopping {
			return
		}
		select {
		case <-sigs:
		case <-time.After(interruptGrace):
		case <-done:
			return
		}
		fmt.Fprintf(stderr, "✗  Interrupted by %s; the command did not stop by itself, so it was cut short\n", signalName(intr.sig))
		os.Exit(intr.exitCode())
	}()
	return ctx, func() {
		close(done)
		signal.Stop(sigs)
		cancel(nil)
	}
}

// selfStopping reports whether args run a command that handles SIGINT and
// SIGTERM itself, through its context, and must not be cut short: the agent
// daemon.
func selfStopping(args []string) bool {
	return len(args) > 1 && args[1] == "agent"
}

// ctxReader makes reads of r return when ctx ends, although r itself (a
// terminal, a pipe) cannot be interrupted: each read runs in the
// background, and one still blocked when ctx ends is left to finish, or
// not, on its own. What it reads later is kept for the next Read.
type ctxReader struct {
	ctx     context.Context
	r       io.Reader
	pending chan readResult // the read under way, if any
	left    []byte          // read but not yet returned
	err     error           // the error after left
}

type readResult struct {
	b   []byte
	err error
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if len(c.left) == 0 && c.err == nil {
		if c.pending == nil {
			if err := c.ctx.Err(); err != nil {
				return 0, err
			}
			c.pending = make(chan readResult, 1)
			go func(ch chan<- readResult, buf []byte) {
				n, err := c.r.Read(buf)
				ch <- readResult{buf[:n], err}
			}(c.pending, make([]byte, max(len(p), 512)))
		}
		select {
		case res := <-c.pending:
			c.pending = nil
			c.left, c.err = res.b, res.err
		case <-c.ctx.Done():
			return 0, c.ctx.Err()
		}
	}
	n := copy(p, c.left)
	c.left = c.left[n:]
	if len(c.left) == 0 && c.err != nil {
		err := c.err
		c.err = nil
		return n, err
	}
	return n, nil
}
