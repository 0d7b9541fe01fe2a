package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// interruptBound is how long a command may take to exit after SIGINT or
// SIGTERM: generous, for a loaded machine. Whether the command returned by
// itself, as it should, or was cut short 2s after the signal is told by
// what it prints (cutShort), not by the time it took.
const interruptBound = 10 * time.Second

// cutShort is what the CLI prints when a command did not return by itself
// after a signal.
const cutShort = "did not stop by itself"

// startHush starts the CLI with env added to the clean environment; the
// caller sets up its stdin and outputs in prepare.
func startHush(t *testing.T, env []string, prepare func(*exec.Cmd), args ...string) (*exec.Cmd, <-chan struct{}) {
	t.Helper()
	cmd := exec.Command(hushBin, args...)
	cmd.Env = append(cleanEnv(), env...)
	prepare(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	return cmd, exited
}

// waitExit waits at most bound for the process to exit and returns its
// exit code, failing the test if it does not.
func waitExit(t *testing.T, cmd *exec.Cmd, exited <-chan struct{}, bound time.Duration) int {
	t.Helper()
	select {
	case <-exited:
		return cmd.ProcessState.ExitCode()
	case <-time.After(bound):
		t.Fatalf("hush %s still running after %s", strings.Join(cmd.Args[1:], " "), bound)
		return 0
	}
}

// waitBlocked waits until one of the process's threads sleeps in the
// kernel function whose name contains wchan, such as pipe_read: the CLI
// has then set up its signal handling and is blocked in the read the test
// is about. Where the kernel does not tell (wchan reads 0), it waits a
// second instead.
func waitBlocked(t *testing.T, pid int, wchan string) {
	t.Helper()
	informative := false
	for start := time.Now(); time.Since(start) < 20*time.Second; time.Sleep(10 * time.Millisecond) {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/wchan", pid))
		for _, f := range tasks {
			b, _ := os.ReadFile(f)
			if strings.Contains(string(b), wchan) {
				return
			}
			informative = informative || (len(b) > 0 && string(b) != "0")
		}
		if !informative && time.Since(start) > time.Second {
			return
		}
	}
	t.Fatalf("hush (pid %d) never blocked in %s", pid, wchan)
}

// TestInterruptBlockedOnStdin checks that SIGINT and SIGTERM end a command
// that waits for a value on stdin, a pipe that stays open and silent, with
// the shell's codes for them.
func TestInterruptBlockedOnStdin(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		sig  syscall.Signal
		code int
		args []string
	}{
		"SIGINT at KEY=-":       {syscall.SIGINT, 130, []string{"create", "secret", "env", "K=-"}},
		"SIGTERM at KEY=-":      {syscall.SIGTERM, 143, []string{"create", "secret", "env", "K=-"}},
		"SIGTERM at a file `-`": {syscall.SIGTERM, 143, []string{"create", "secret", "mounted", "-", "--name", "x"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			stdin, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close() // open, so that stdin never ends
			var stderr syncBuffer
			cmd, exited := startHush(t, []string{"HUSH_ADDR=http://127.0.0.1:1", "HUSH_TOKEN=x"}, func(c *exec.Cmd) {
				c.Stdin, c.Stderr = stdin, &stderr
			}, tc.args...)
			stdin.Close()
			waitBlocked(t, cmd.Process.Pid, "pipe_read")
			cmd.Process.Signal(tc.sig)
			if code := waitExit(t, cmd, exited, interruptBound); code != tc.code {
				t.Errorf("got exit %d, want %d; stderr:\n%s", code, tc.code, &stderr)
			}
			if want := "Interrupted by " + map[syscall.Signal]string{syscall.SIGINT: "SIGINT", syscall.SIGTERM: "SIGTERM"}[tc.sig]; !strings.Contains(stderr.String(), want) {
				t.Errorf("stderr %q lacks %q", &stderr, want)
			}
			if strings.Contains(stderr.String(), cutShort) {
				t.Errorf("the command did not return on the signal: %q", &stderr)
			}
		})
	}
}

// TestInterruptWaitingOnAgent checks that SIGINT ends a command that waits
// for an agent that accepted the connection but never answers, with 130.
func TestInterruptWaitingOnAgent(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	var stderr syncBuffer
	cmd, exited := startHush(t, []string{"HUSH_ADDR=http://" + l.Addr().String(), "HUSH_TOKEN=x"}, func(c *exec.Cmd) { c.Stderr = &stderr }, "get", "secrets")
	select {
	case c := <-accepted:
		defer c.Close()
	case <-time.After(20 * time.Second):
		t.Fatal("hush never connected")
	}
	cmd.Process.Signal(os.Interrupt)
	if code := waitExit(t, cmd, exited, interruptBound); code != 130 {
		t.Errorf("got exit %d, want 130", code)
	}
	if strings.Contains(stderr.String(), cutShort) {
		t.Errorf("the command did not return on the signal: %q", &stderr)
	}
}

// openPTY returns the two ends of a new pseudo-terminal.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close() })
	return master, tty
}

// TestInterruptAtPrompt checks that a command waiting at a prompt on a
// terminal ends on Ctrl+C (typed, so the terminal sends SIGINT) or on
// SIGTERM, with the shell's code, leaves the terminal's echo on, and, at a
// [y/N] question, does nothing.
func TestInterruptAtPrompt(t *testing.T) {
	t.Parallel()
	a := startAgent(t, "")
	user := a.newUser("dave")
	a.mustHush(user, "", "create", "secret", "env", "KEEP=1")
	tests := map[string]struct {
		args   []string
		prompt string
		ctrlC  bool // type Ctrl+C; else send SIGTERM
		code   int
	}{
		"Ctrl+C at a no-echo prompt":  {[]string{"create", "secret", "env", "KEY"}, "?  value of KEY: ", true, 130},
		"SIGTERM at a no-echo prompt": {[]string{"create", "secret", "docker", "--username", "u", "--server", "s"}, "?  docker password: ", false, 143},
		"Ctrl+C at [y/N]":             {[]string{"delete", "secret", "keep"}, "[y/N] ", true, 130},
		"SIGTERM at [y/N]":            {[]string{"delete", "secret", "keep"}, "[y/N] ", false, 143},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			master, tty := openPTY(t)
			screen := &syncBuffer{}
			go io.Copy(screen, master)
			cmd, exited := startHush(t, []string{"HUSH_ADDR=" + a.addr, "HUSH_TOKEN=" + user}, func(c *exec.Cmd) {
				c.Stdin, c.Stdout, c.Stderr = tty, tty, tty
				// The terminal is the command's own, so that Ctrl+C on it
				// signals the command.
				c.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
			}, tc.args...)
			for start := time.Now(); !strings.Contains(screen.String(), tc.prompt); time.Sleep(10 * time.Millisecond) {
				if time.Since(start) > 20*time.Second {
					t.Fatalf("no prompt %q; the terminal shows:\n%s", tc.prompt, screen)
				}
			}
			if tc.ctrlC {
				master.Write([]byte{3})
			} else {
				cmd.Process.Signal(syscall.SIGTERM)
			}
			if code := waitExit(t, cmd, exited, interruptBound); code != tc.code {
				t.Errorf("got exit %d, want %d; the terminal shows:\n%s", code, tc.code, screen)
			}
			if strings.Contains(screen.String(), cutShort) {
				t.Errorf("the command did not return on the signal; the terminal shows:\n%s", screen)
			}
			termios, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
			if err != nil {
				t.Fatal(err)
			}
			if termios.Lflag&unix.ECHO == 0 {
				t.Error("the terminal's echo is still off after the command ended")
			}
			if ids := a.secretIDs(user); ids["keep"] == "" || len(ids) != 1 {
				t.Errorf("got secrets %v, want keep alone, untouched", ids)
			}
		})
	}
}

// TestNamedPipeRefused checks that a named pipe given where a file is
// expected is refused at once, saying what it is, instead of waiting
// forever for a writer.
func TestNamedPipeRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "f")
	fifoYAML := filepath.Join(dir, "run.yaml")
	for _, p := range []string{fifo, fifoYAML} {
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	secrets := writeFile(t, dir, "secrets.hcl", `secret "mounted" "key" { value = file("f") }`+"\n")
	config := writeFile(t, dir, "config.yaml", fmt.Sprintf("clusters:\n  - name: c\n    address: http://127.0.0.1:1\n    token_file: %s\n", fifo))
	direct := []string{"HUSH_ADDR=http://127.0.0.1:1", "HUSH_TOKEN=x"}
	tests := map[string]struct {
		env  []string
		args []string
		want string
	}{
		"mounted secret":    {direct, []string{"create", "secret", "mounted", fifo}, fifo + " is a named pipe (FIFO), not a regular file: give the path of a file"},
		"s3 config file":    {direct, []string{"create", "secret", "s3", "--config-file", fifo, "--credentials-file", fifo}, "--config-file: " + fifo + " is a named pipe (FIFO)"},
		"run spec":          {direct, []string{"run", "-f", fifoYAML}, "run spec " + fifoYAML + " is a named pipe (FIFO), not a regular file"},
		"secrets file":      {direct, []string{"apply", "-f", fifoYAML}, "secrets file " + fifoYAML + " is a named pipe (FIFO), not a regular file"},
		"file() in secrets": {direct, []string{"apply", "-f", secrets}, `value: file "f" (` + fifo + `) is a named pipe (FIFO), not a regular file`},
		"token file":        {[]string{"HUSH_CONFIG=" + config}, []string{"get", "secrets"}, fifo + " is a named pipe (FIFO)"},
		"HUSH_TOKEN_FILE":   {[]string{"HUSH_ADDR=http://127.0.0.1:1", "HUSH_TOKEN_FILE=" + fifo}, []string{"get", "secrets"}, fifo + " is a named pipe (FIFO)"},
		"image archive":     {direct, []string{"image", "import", fifo}, fifo + " is a named pipe (FIFO)"},
		"agent config":      {direct, []string{"agent", "-dev", "-bind", "127.0.0.1:0", "-config", fifo}, fifo + " is a named pipe (FIFO)"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var stderr syncBuffer
			cmd, exited := startHush(t, tc.env, func(c *exec.Cmd) { c.Stderr = &stderr }, tc.args...)
			var code int
			select {
			case <-exited:
				code = cmd.ProcessState.ExitCode()
			case <-time.After(10 * time.Second):
				t.Fatalf("hush %s still running after 10s: it waits on the named pipe", strings.Join(tc.args, " "))
			}
			if code != 1 || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("got exit %d, stderr %q; want exit 1 and %q", code, &stderr, tc.want)
			}
		})
	}
}
