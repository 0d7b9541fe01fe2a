package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hush-sh/hush/sdk/provider"
	"github.com/hush-sh/hush/sdk/provider/diag"
)

const (
	// placeholder is replaced by the reference in each argument.
	placeholder = "{{ref}}"
	// defaultPath is the PATH a command gets when env sets none: the agent
	// starts plugins with an empty environment.
	defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// defaultTimeout bounds one run of the command.
	defaultTimeout = 10 * time.Second
)

// config is the plugin's config block.
type config struct {
	// Command is the argv to run for each reference, with {{ref}} standing
	// for the reference anywhere in the arguments. It runs without a
	// shell. Its first element is an absolute path or a name looked up in
	// env's PATH (default defaultPath). Required.
	Command []string `json:"command"`
	// Timeout bounds each run, as a duration string. Default "10s".
	Timeout string `json:"timeout"`
	// Env is the command's whole environment: the plugin passes on none
	// of its own, and adds only PATH=defaultPath when Env has no PATH.
	// Tools that need HOME, XDG_CONFIG_HOME or a token variable must get
	// them here.
	Env map[string]string `json:"env"`
	// TrimNewline removes one trailing newline from the output. Default
	// true.
	TrimNewline *bool `json:"trim_newline"`
	// NotFoundExitCodes are the exit codes that mean the reference does
	// not exist; other non-zero codes are plain errors. Default none.
	NotFoundExitCodes []int `json:"not_found_exit_codes"`
	// PermissionDeniedExitCodes are the exit codes that mean access to the
	// reference was refused. Default none.
	PermissionDeniedExitCodes []int `json:"permission_denied_exit_codes"`
}

// settings is a validated config, ready to run.
type settings struct {
	path     string   // the executable, resolved
	argv     []string // the configured command, placeholders intact
	env      []string // KEY=VALUE, sorted
	timeout  time.Duration
	trim     bool
	notFound []int
	denied   []int
}

// validate checks every setting and reports every problem at once.
func (c *config) validate() (*settings, []provider.Diagnostic) {
	s := &settings{argv: c.Command, trim: c.TrimNewline == nil || *c.TrimNewline}
	var diags []provider.Diagnostic

	env, d := c.environ()
	diags = append(diags, d...)
	s.env = env

	switch {
	case len(c.Command) == 0 || c.Command[0] == "":
		diags = append(diags, diag.Error("command", "command is required",
			`give the argv to run, for example command = ["op", "read", "op://{{ref}}"]`))
	case strings.Contains(c.Command[0], placeholder):
		diags = append(diags, diag.Error("command", "the executable, command[0], cannot contain {{ref}}",
			"a reference chooses arguments, never the program"))
	default:
		path, err := lookPath(c.Command[0], pathOf(s.env))
		if err != nil {
			diags = append(diags, diag.Error("command", err.Error(),
				`the agent starts plugins with an empty environment, so PATH is `+pathOf(s.env)+`; use an absolute path or set env = { PATH = "..." }`))
		}
		s.path = path
		if !slices.ContainsFunc(c.Command[1:], func(a string) bool { return strings.Contains(a, placeholder) }) {
			diags = append(diags, diag.Warning("command", "command does not contain {{ref}}",
				"every reference will run the same command and get the same value"))
		}
	}

	timeout, d := diag.Duration("timeout", c.Timeout, defaultTimeout)
	diags = append(diags, d...)
	s.timeout = timeout

	s.notFound, d = exitCodes("not_found_exit_codes", c.NotFoundExitCodes)
	diags = append(diags, d...)
	s.denied, d = exitCodes("permission_denied_exit_codes", c.PermissionDeniedExitCodes)
	diags = append(diags, d...)
	for _, code := range s.denied {
		if slices.Contains(s.notFound, code) {
			diags = append(diags, diag.Error("permission_denied_exit_codes",
				fmt.Sprintf("exit code %d is in both not_found_exit_codes and permission_denied_exit_codes", code), "give it one meaning"))
		}
	}
	return s, diags
}

// environ builds the command's environment from env.
func (c *config) environ() ([]string, []provider.Diagnostic) {
	var env []string
	var diags []provider.Diagnostic
	for k, v := range c.Env {
		switch {
		case k == "" || strings.ContainsAny(k, "=\x00"):
			diags = append(diags, diag.Error("env", fmt.Sprintf("env has an invalid variable name %q", k), `a name is not empty and has no "=" in it`))
		case strings.Contains(v, "\x00"):
			diags = append(diags, diag.Error("env", fmt.Sprintf("env.%s contains a NUL byte", k), ""))
		default:
			env = append(env, k+"="+v)
		}
	}
	if _, ok := c.Env["PATH"]; !ok {
		env = append(env, "PATH="+defaultPath)
	}
	slices.Sort(env)
	return env, diags
}

func pathOf(env []string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			return v
		}
	}
	return ""
}

func exitCodes(attr string, codes []int) ([]int, []provider.Diagnostic) {
	var diags []provider.Diagnostic
	for _, code := range codes {
		if code < 1 || code > 255 {
			diags = append(diags, diag.Error(attr, fmt.Sprintf("%s: %d is not an exit code that means failure", attr, code), "use codes from 1 to 255"))
		}
	}
	return codes, diags
}

// lookPath finds an executable the way a shell would, but in the PATH
// the command will get rather than the plugin's own.
func lookPath(name, path string) (string, error) {
	if strings.Contains(name, "/") {
		if !filepath.IsAbs(name) {
			return "", fmt.Errorf("executable %s must be an absolute path or a bare name", name)
		}
		if err := checkExecutable(name); err != nil {
			return "", err
		}
		return name, nil
	}
	for _, dir := range filepath.SplitList(path) {
		if !filepath.IsAbs(dir) {
			continue // a relative PATH entry would depend on the agent's working directory
		}
		candidate := filepath.Join(dir, name)
		if checkExecutable(candidate) == nil {
			return candidate, nil
		}
	}
	return "", fmt.Errorf("executable %s not found in PATH", name)
}

func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("executable %s does not exist", path)
	case err != nil:
		return fmt.Errorf("check executable: %w", err)
	case fi.IsDir():
		return fmt.Errorf("executable %s is a directory", path)
	case fi.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("executable %s is not executable", path)
	}
	return nil
}
