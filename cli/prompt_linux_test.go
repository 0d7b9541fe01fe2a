package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal: what is written to master is what a
// person types at the terminal slave.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slave.Close() })
	return master, slave
}

// screen collects what a terminal shows.
type screen struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *screen) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.buf.String() }

// watch copies what master shows into a screen until master is closed.
func watch(master *os.File) *screen {
	s := &screen{}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := master.Read(b)
			s.mu.Lock()
			s.buf.Write(b[:n])
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return s
}

// TestDeletePrompt answers `hush delete secret`'s [y/N] question at a real
// terminal, in-process against a real agent: Ctrl+C (the signal's cancel,
// as Main does) ends the command at once with exit 130 and deletes
// nothing; Ctrl+D (end of input) declines, with "Nothing deleted" on a
// line of its own; y deletes.
func TestDeletePrompt(t *testing.T) {
	const prompt = "?  Delete 1 secret(s): k? [y/N] "
	tests := map[string]struct {
		typed     string // "" types nothing and interrupts
		code      int
		stdout    string
		screen    string // what the terminal shows after the prompt
		remaining string
	}{
		"Ctrl+C": {code: 130, screen: "\r\n✗  Interrupted by SIGINT\r\n", remaining: "k\n"},
		"Ctrl+D": {typed: "\x04", code: 0, stdout: "i  Nothing deleted\n", screen: "\r\n", remaining: "k\n"},
		"n":      {typed: "n\n", code: 0, stdout: "i  Nothing deleted\n", screen: "n\r\n", remaining: "k\n"},
		"y":      {typed: "y\n", code: 0, stdout: "✔  Deleted secret(s): k\n✔  Synced to all clusters\n", screen: "y\r\n", remaining: ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			addr, token := testAgent(t, "c")
			env := map[string]string{"HUSH_ADDR": addr, "HUSH_TOKEN": token}
			if code, out, errw := hush(t, env, "create", "secret", "env", "K=v"); code != 0 {
				t.Fatalf("create: got exit %d, stdout %q, stderr %q", code, out, errw)
			}
			master, slave := openPTY(t)
			shown := watch(master)
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			var stdout bytes.Buffer
			done := make(chan int, 1)
			go func() {
				lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
				done <- RunEnv(ctx, "test", []string{"hush", "delete", "secret", "k"}, slave, &stdout, slave, lookup)
			}()
			deadline := time.Now().Add(5 * time.Second)
			for !strings.Contains(shown.String(), prompt) {
				if time.Now().After(deadline) {
					t.Fatalf("no prompt after 5s; the terminal shows %q", shown.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
			if tc.typed == "" {
				cancel(&interrupted{sig: syscall.SIGINT})
			} else if _, err := master.WriteString(tc.typed); err != nil {
				t.Fatal(err)
			}
			select {
			case code := <-done:
				if code != tc.code {
					t.Errorf("got exit %d, want %d", code, tc.code)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("still waiting 5s after the answer")
			}
			if stdout.String() != tc.stdout {
				t.Errorf("got stdout %q, want %q", &stdout, tc.stdout)
			}
			want := prompt + tc.screen
			for time.Now().Before(deadline) && !strings.HasSuffix(shown.String(), want) {
				time.Sleep(10 * time.Millisecond)
			}
			if got := shown.String(); !strings.HasSuffix(got, want) {
				t.Errorf("the terminal shows %q, want it to end with %q", got, want)
			}
			if _, out, _ := hush(t, env, "get", "secrets", "-o", "name"); out != tc.remaining {
				t.Errorf("got secrets %q after, want %q", out, tc.remaining)
			}
		})
	}
}
