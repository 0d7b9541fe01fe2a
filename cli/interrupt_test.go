package cli

import (
	"bytes"
	"context"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestInterruptBlockedRead checks that a command blocked reading stdin
// returns as soon as its context is cancelled by a signal, with the
// signal's exit code: stdin here is a pipe that never sends anything.
func TestInterruptBlockedRead(t *testing.T) {
	tests := map[string]struct {
		sig  syscall.Signal
		args []string
		code int
	}{
		"env value from stdin, SIGINT": {syscall.SIGINT, []string{"hush", "create", "secret", "env", "K=-"}, 130},
		"file from stdin, SIGTERM":     {syscall.SIGTERM, []string{"hush", "create", "secret", "mounted", "-", "--name", "x"}, 143},
		"docker password from stdin":   {syscall.SIGINT, []string{"hush", "create", "secret", "docker", "--username", "u", "--server", "s", "--password", "-"}, 130},
		"cluster token from stdin":     {syscall.SIGTERM, []string{"hush", "cluster", "add", "c", "--address", "http://127.0.0.1:1", "--token", "-"}, 143},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Setenv(EnvConfig, t.TempDir()+"/config.yaml")
			stdin, w := io.Pipe()
			defer w.Close()
			ctx, cancel := context.WithCancelCause(context.Background())
			var stderr bytes.Buffer
			done := make(chan int, 1)
			go func() { done <- Run(ctx, "test", tc.args, stdin, io.Discard, &stderr) }()
			time.Sleep(50 * time.Millisecond) // let it block
			cancel(&interrupted{sig: tc.sig})
			select {
			case code := <-done:
				if code != tc.code {
					t.Errorf("got exit %d, want %d; stderr:\n%s", code, tc.code, &stderr)
				}
				if want := "✗  Interrupted by " + signalName(tc.sig) + "\n"; stderr.String() != want {
					t.Errorf("got stderr %q, want %q", &stderr, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("still blocked 5s after the interrupt")
			}
		})
	}
}

// TestCtxReader checks that a read blocked when the context ends returns
// its error, and that what the blocked read gets later is not lost.
func TestCtxReader(t *testing.T) {
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	r := &ctxReader{ctx: ctx, r: pr}
	got := make(chan error, 1)
	go func() { _, err := r.Read(make([]byte, 8)); got <- err }()
	cancel()
	select {
	case err := <-got:
		if err != context.Canceled {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read still blocked 5s after cancel")
	}
	go pw.Write([]byte("late"))
	r.ctx = context.Background()
	b := make([]byte, 8)
	n, err := r.Read(b)
	if err != nil || string(b[:n]) != "late" {
		t.Errorf("got %q, %v; want %q", b[:n], err, "late")
	}
}

// TestConfirmInterrupted checks that a [y/N] question that is interrupted
// fails rather than reading as no, so that the command exits with the
// signal's code.
func TestConfirmInterrupted(t *testing.T) {
	stdin, w := io.Pipe()
	defer w.Close()
	ctx, cancel := context.WithCancel(context.Background())
	ui := newUI(ctx, stdin, io.Discard, io.Discard, nil)
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	ok, err := ui.Confirm("Delete?")
	if ok || err != context.Canceled {
		t.Errorf("got %v, %v; want false, context.Canceled", ok, err)
	}

	ui = newUI(context.Background(), strings.NewReader("yes\n"), io.Discard, io.Discard, nil)
	if ok, err := ui.Confirm("Delete?"); !ok || err != nil {
		t.Errorf("answer yes: got %v, %v; want true, nil", ok, err)
	}
	var stderr bytes.Buffer
	ui = newUI(context.Background(), strings.NewReader(""), io.Discard, &stderr, nil)
	if ok, err := ui.Confirm("Delete?"); ok || err != nil {
		t.Errorf("no answer: got %v, %v; want false, nil", ok, err)
	}
	// What follows is not printed on the question's line.
	if want := "?  Delete? [y/N] \n"; stderr.String() != want {
		t.Errorf("no answer: got stderr %q, want %q", &stderr, want)
	}
}
