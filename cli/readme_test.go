package cli

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/shlex"
)

// readmeCommand is a hush command typed in one of the README's sessions.
type readmeCommand struct {
	line int
	args []string // after "hush"
}

// readmeSessions returns the hush commands of the README's sessions:
// fenced blocks whose first line is a prompt ("$ ").
func readmeSessions(t *testing.T) []readmeCommand {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []readmeCommand
	inFence, session := false, false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(line, "```") {
			inFence, session = !inFence, false
			if inFence {
				// The block is a session when its first line is a prompt.
				if !sc.Scan() {
					break
				}
				n++
				line = sc.Text()
				session = strings.HasPrefix(line, "$ ")
				if strings.HasPrefix(line, "```") {
					inFence = false
					continue
				}
			}
		}
		if !session || !strings.HasPrefix(line, "$ ") {
			continue
		}
		words, err := shlex.Split(strings.TrimPrefix(line, "$ "))
		if err != nil {
			t.Errorf("README.md:%d: %q does not split as a shell line: %v", n, line, err)
			continue
		}
		i := slices.IndexFunc(words, func(w string) bool { return w == "hush" || strings.HasSuffix(w, "/hush") })
		if i < 0 {
			continue // another program, such as cat
		}
		args := words[i+1:]
		if end := slices.IndexFunc(args, func(w string) bool { return w == "|" || w == "&&" || w == ";" || w == ">" }); end >= 0 {
			args = args[:end]
		}
		out = append(out, readmeCommand{line: n, args: args})
	}
	return out
}

// Every hush command the README shows in a session is one the CLI has,
// with flags it takes: asked for its help, it parses and exits 0.
func TestReadmeSessionsParse(t *testing.T) {
	cmds := readmeSessions(t)
	if len(cmds) < 10 {
		t.Fatalf("found %d hush commands in the README's sessions, want the Quick start's at least", len(cmds))
	}
	env := func(string) (string, bool) { return "", false }
	app := newApp("test", newUI(context.Background(), strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{}, env))
	for _, c := range cmds {
		// The command and its flags, which reorderArgs puts before its
		// positional arguments, then --help: flags the command does not
		// take fail as usage errors.
		args := reorderArgs(app, append([]string{"hush"}, c.args...))
		if at := slices.Index(args, "--"); at >= 0 {
			args = args[:at]
		}
		args = append(args, "--help")
		var out, errb bytes.Buffer
		code := RunEnv(context.Background(), "test", args, strings.NewReader(""), &out, &errb, env)
		if code != exitOK {
			t.Errorf("README.md:%d: hush %s: got exit %d, want the command's help:\n%s", c.line, strings.Join(c.args, " "), code, errb.String())
		}
	}
}

// The README's exit codes are the CLI's.
func TestReadmeExitCodes(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`Exit codes: (\d+) success, (\d+) failure, (\d+) bad usage`).FindSubmatch(b)
	if m == nil {
		t.Fatal("the README states no exit codes (want \"Exit codes: 0 success, 1 failure, 2 bad usage\")")
	}
	for i, want := range []int{exitOK, exitError, exitUsage} {
		if got := string(m[i+1]); got != strings.TrimSpace(string(rune('0'+want))) {
			t.Errorf("the README says %s for exit code %d", got, want)
		}
	}
}
