package cli

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/runs"
	"github.com/hush-sh/hush/agent/runtime"
	"github.com/hush-sh/hush/agent/server"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
	"github.com/urfave/cli/v2"
)

// commandPaths lists every visible command of the tree, as the words that
// name it.
func commandPaths() [][]string {
	app := newApp("test", newUI(context.Background(), strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{}, nil))
	var paths [][]string
	var walk func(path []string, cmds []*cli.Command)
	walk = func(path []string, cmds []*cli.Command) {
		for _, c := range cmds {
			if c.Hidden {
				continue
			}
			p := append(slices.Clone(path), c.Name)
			paths = append(paths, p)
			walk(p, c.Subcommands)
		}
	}
	walk(nil, app.Commands)
	return paths
}

// TestEveryCommandHelp renders every command's --help, and checks that
// `hush help COMMAND...` says the same.
func TestEveryCommandHelp(t *testing.T) {
	paths := commandPaths()
	if len(paths) < 40 {
		t.Fatalf("got %d commands in the tree, want the whole tree (40 or more)", len(paths))
	}
	for _, path := range paths {
		name := strings.Join(path, " ")
		t.Run(name, func(t *testing.T) {
			code, out, errw := hush(t, nil, append(path, "--help")...)
			if code != exitOK || errw != "" {
				t.Fatalf("--help: got exit %d, stderr %q; want 0, nothing", code, errw)
			}
			if want := "hush " + name; !strings.Contains(out, want) || !strings.Contains(out, "USAGE:") {
				t.Errorf("--help: got %q, want a usage naming %q", out, want)
			}
			if strings.Contains(out, "help, h ") && name != "" {
				t.Errorf("--help lists a help subcommand, which only `hush help` is: %q", out)
			}
			code, helpOut, errw := hush(t, nil, append([]string{"help"}, path...)...)
			if code != exitOK || errw != "" || helpOut != out {
				t.Errorf("help %s: got exit %d, stdout %q, stderr %q; want 0 and the --help output %q", name, code, helpOut, errw, out)
			}
		})
	}
}

// TestUsageMistakes covers what people type when they do not yet know
// the commands: each is a usage error, exit 2, that says what to type.
func TestUsageMistakes(t *testing.T) {
	tests := map[string]struct {
		args []string
		// stderr must contain each of want; help is whether it carries
		// the command's help.
		want []string
		help bool
	}{
		"help for nothing known": {[]string{"help", "nosuch"}, []string{`✗  unknown command "nosuch" for "hush"`}, false},
		"help for a typo":        {[]string{"help", "create", "secret", "evn"}, []string{`unknown command "evn" for "hush create secret" (did you mean "env"?)`}, false},
		"misspelt subcommand":    {[]string{"get", "secrest"}, []string{`✗  unknown command "secrest" for "hush get" (did you mean "secrets"?)`}, false},
		"prefix of a command":    {[]string{"get", "plug"}, []string{`(did you mean "plugins"?)`}, false},
		"misspelt command":       {[]string{"crate", "secret"}, []string{`unknown command "crate" for "hush" (did you mean "create"?)`}, false},
		"nothing close":          {[]string{"get", "frobnicate"}, []string{`unknown command "frobnicate" for "hush get"` + "\n"}, false},
		"group alone":            {[]string{"get"}, []string{"hush get - list resources", `✗  "hush get" needs a command`}, true},
		"nested group alone":     {[]string{"acl", "token"}, []string{"hush acl token - manage tokens", `"hush acl token" needs a command`}, true},
		"group with an action":   {[]string{"create", "secret"}, []string{"hush create secret - create a secret", "✗  give a secret type: one of env,"}, true},
		"hush alone":             {nil, []string{"USAGE:", `✗  "hush" needs a command`}, true},
		"completion for nothing": {[]string{"completion"}, []string{"takes one shell: one of bash, zsh, fish"}, false},
		"completion for tcsh":    {[]string{"completion", "tcsh"}, []string{"takes one shell: one of bash, zsh, fish"}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, out, errw := hush(t, nil, tc.args...)
			if code != exitUsage || out != "" {
				t.Errorf("got exit %d, stdout %q; want %d, nothing", code, out, exitUsage)
			}
			for _, w := range tc.want {
				if !strings.Contains(errw, w) {
					t.Errorf("stderr %q lacks %q", errw, w)
				}
			}
			if got := strings.Contains(errw, "OPTIONS:"); got != tc.help {
				t.Errorf("got help on stderr %v, want %v: %q", got, tc.help, errw)
			}
		})
	}
}

// TestVersionFormats checks that each way to ask gives the same answer.
func TestVersionFormats(t *testing.T) {
	_, want, _ := hush(t, nil, "version")
	if !strings.HasPrefix(want, "hush test (go") {
		t.Fatalf("version: got %q, want hush test (go...)", want)
	}
	for _, flag := range []string{"-v", "--version"} {
		if code, out, errw := hush(t, nil, flag); code != exitOK || out != want || errw != "" {
			t.Errorf("%s: got exit %d, stdout %q, stderr %q; want 0, %q", flag, code, out, errw, want)
		}
	}
}

func TestSuggestCommand(t *testing.T) {
	cmds := []*cli.Command{
		{Name: "secrets", Aliases: []string{"secret"}},
		{Name: "runs", Aliases: []string{"run"}},
		{Name: "hidden", Hidden: true},
	}
	tests := map[string]struct{ typed, want string }{
		"transposed letters": {"secrest", "secrets"},
		"one letter off":     {"rnus", "runs"},
		"prefix":             {"sec", "secrets"},
		"too far":            {"sxcxtx", ""},
		"hidden stays so":    {"hiden", ""},
		"empty":              {"", ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := suggestCommand(cmds, tc.typed); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// runsAgent serves a real agent with an exec runtime in-process, holding
// the runs named and the secrets named, all of user alice; it returns the
// agent's address and alice's token.
func runsAgent(t *testing.T, runNames, secretNames []string) (addr, token string) {
	t.Helper()
	st, err := store.Open(t.TempDir(), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	dir := t.TempDir()
	rm, err := runs.NewManager(context.Background(), runs.Config{
		Store: st, Runtime: runtime.NewExec(hclog.NewNullLogger()),
		LogDir: filepath.Join(dir, "logs"), StateDir: filepath.Join(dir, "state"), KeyDir: filepath.Join(dir, "logkeys"),
		HushBinary: "/bin/false", AgentAddr: "http://127.0.0.1:1", StopGrace: time.Second,
		Logger: hclog.NewNullLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rm.Shutdown(ctx)
	})
	srv := httptest.NewServer(server.New(st, rm, nil, nil, server.Info{Version: "test", Cluster: "c", Node: "n"}, hclog.NewNullLogger()))
	t.Cleanup(srv.Close)
	token, _, err = st.IssueToken("alice", false, "")
	if err != nil {
		t.Fatal(err)
	}
	client, err := api.NewClient(&api.Config{Address: srv.URL, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, name := range runNames {
		if _, err := client.CreateRun(ctx, &api.CreateRunRequest{Name: name, Image: "none", Command: "true"}); err != nil {
			t.Fatalf("create run %s: %v", name, err)
		}
	}
	for _, name := range secretNames {
		req := &api.CreateSecretRequest{Name: name, Type: api.TypeEnv,
			Fields: map[string]string{api.FieldKey: "K"}, Data: map[string][]byte{api.FieldValue: []byte("v")}}
		if _, err := client.CreateSecret(ctx, req); err != nil {
			t.Fatalf("create secret %s: %v", name, err)
		}
	}
	return srv.URL, token
}

// TestComplete asks the hidden completion command what the scripts ask
// it: commands, flags, flag values, and secret and run names from a real
// agent.
func TestComplete(t *testing.T) {
	addr, token := runsAgent(t, []string{"train-a", "train-b", "eval"}, []string{"db-password", "db-user", "hf-token"})
	env := map[string]string{"HUSH_ADDR": addr, "HUSH_TOKEN": token}
	down := map[string]string{"HUSH_ADDR": "http://127.0.0.1:1", "HUSH_TOKEN": "x"}
	tests := map[string]struct {
		env   map[string]string
		words []string // after the program's name; the last is being typed
		want  []string
	}{
		"commands":              {nil, []string{""}, []string{"agent", "create", "get", "delete", "run", "logs", "describe", "stop"}},
		"command prefix":        {nil, []string{"de"}, []string{"delete", "describe"}},
		"subcommands":           {nil, []string{"get", ""}, []string{"secrets", "runs", "plugins", "clusters", "nodes"}},
		"after an alias":        {nil, []string{"delete", "secrets", "--a"}, []string{"--all"}},
		"flag prefix":           {nil, []string{"delete", "secret", "--"}, []string{"--all", "--help", "--user", "--yes"}},
		"short flags":           {nil, []string{"get", "secrets", "-"}, []string{"--help", "--output", "--type", "-h", "-o"}},
		"output formats":        {nil, []string{"get", "runs", "-o", ""}, []string{"json", "name", "table", "yaml"}},
		"file flag":             {nil, []string{"run", "-f", ""}, nil},
		"secret names":          {env, []string{"delete", "secret", "db"}, []string{"db-password", "db-user"}},
		"secret names once":     {env, []string{"delete", "secret", "db-user", "-y", ""}, []string{"db-password", "hf-token"}},
		"run names for logs":    {env, []string{"logs", "-f", "tr"}, []string{"train-a", "train-b"}},
		"run names to stop":     {env, []string{"stop", "run", ""}, []string{"eval", "train-a", "train-b"}},
		"run names to describe": {env, []string{"describe", "run", "e"}, []string{"eval"}},
		"one run to describe":   {env, []string{"describe", "run", "eval", ""}, nil},
		"agent down":            {down, []string{"delete", "secret", ""}, nil},
		"no hidden commands":    {nil, []string{"__"}, nil},
		"help takes commands":   {nil, []string{"help", "get", "r"}, []string{"runs"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			code, out, errw := hush(t, tc.env, append([]string{completeName, "hush"}, tc.words...)...)
			if code != exitOK || errw != "" {
				t.Fatalf("got exit %d, stderr %q; want 0, nothing", code, errw)
			}
			got := strings.Fields(out)
			if tc.want == nil && len(got) != 0 {
				t.Errorf("got %q, want nothing", got)
			}
			for _, w := range tc.want {
				if !slices.Contains(got, w) {
					t.Errorf("got %q, want %q among them", got, w)
				}
			}
			if len(tc.want) > 0 && len(tc.want) < 5 && len(got) != len(tc.want) {
				t.Errorf("got %q, want exactly %q", got, tc.want)
			}
			if d := time.Since(start); d > completeTimeout+time.Second {
				t.Errorf("took %v, want under %v", d, completeTimeout+time.Second)
			}
		})
	}
}

// TestCompletionScripts checks that each shell gets a script, and that the
// bash one hands the typed words to the hidden command as TestComplete
// expects them.
func TestCompletionScripts(t *testing.T) {
	for _, shell := range completionShells {
		code, out, errw := hush(t, nil, "completion", shell)
		if code != exitOK || errw != "" || !strings.Contains(out, completeName) {
			t.Errorf("%s: got exit %d, stderr %q, script %q; want 0 and a script calling %s", shell, code, errw, out, completeName)
		}
	}
	script := filepath.Join(t.TempDir(), "hush.bash")
	if err := os.WriteFile(script, []byte(completionScripts["bash"]), 0o600); err != nil {
		t.Fatal(err)
	}
	// hush here is a stand-in that answers with the number of words it
	// was given (the last, empty, one does not show otherwise) and them.
	probe := `source "$1"
hush() { printf '%s\n' "$#" "$@"; }
COMP_WORDS=(hush delete secret "a b" ""); COMP_CWORD=4
_hush_complete
printf '[%s]' "${COMPREPLY[@]}"`
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", "-c", probe, "bash", script).CombinedOutput()
	if want := "[6][" + completeName + "][hush][delete][secret][a b]"; err != nil || string(out) != want {
		t.Errorf("bash: got %q (%v), want %q", out, err, want)
	}
}

// The zsh script parses, and fish's asks hush for the words typed so far.
// The CI scripts install both shells.
func TestCompletionScriptsZshFish(t *testing.T) {
	for _, shell := range []string{"zsh", "fish"} {
		if _, err := exec.LookPath(shell); err != nil {
			t.Fatalf("this test runs %s, which is not installed: run it through `make test`, which installs it, or `apt-get install zsh fish`", shell)
		}
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	zsh := filepath.Join(dir, "_hush")
	if err := os.WriteFile(zsh, []byte(completionScripts["zsh"]), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.CommandContext(ctx, "zsh", "-n", zsh).CombinedOutput(); err != nil {
		t.Errorf("zsh -n: %v\n%s", err, out)
	}
	fish := filepath.Join(dir, "hush.fish")
	if err := os.WriteFile(fish, []byte(completionScripts["fish"]), 0o600); err != nil {
		t.Fatal(err)
	}
	// hush here is a stand-in that answers with the words it was given,
	// which fish offers as the completions, sorted.
	probe := `source $argv[1]
function hush; printf '%s\n' $argv; end
complete -C 'hush delete secret '`
	out, err := exec.CommandContext(ctx, "fish", "-c", probe, fish).CombinedOutput()
	got := strings.Fields(string(out))
	slices.Sort(got)
	if want := []string{completeName, "delete", "hush", "secret"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("fish: got %q (%v), want the candidates %q", out, err, want)
	}
}
