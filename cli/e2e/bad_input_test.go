package e2e

import (
	"encoding/base64"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestBadInput feeds the CLI and the API bad input. Each case must fail with
// a clear message and a non-zero exit (or a 4xx status), and leave the
// store as it was.
func TestBadInput(t *testing.T) {
	t.Parallel()
	a := startAgent(t, "")
	user := a.newUser("carol")
	a.mustHush(user, "", "create", "secret", "env", "EXISTING=1")
	files := t.TempDir()
	pub := writeFile(t, files, "id_rsa.pub", "ssh-ed25519 AAAAC3Nza me@host\n")
	big := writeFile(t, files, "big.bin", strings.Repeat("x", 1<<20+1))
	notJSON := writeFile(t, files, "key.json", "{not json")
	if err := os.Mkdir(filepath.Join(files, "adir"), 0o700); err != nil {
		t.Fatal(err)
	}
	bigValue := base64.StdEncoding.EncodeToString(make([]byte, 1<<20+10))
	hugeBody := `{"name":"x","type":"env","data":{"value":"` + strings.Repeat("A", 3<<20) + `"}}`
	hugeRun := `{"name":"x","image":"busybox","command":"` + strings.Repeat("x", 3<<20) + `"}`
	bigSpec := writeFile(t, files, "big.yaml", "name: big\nimage: busybox\ncommand: |\n  "+strings.Repeat("x", 3<<20)+"\n")

	cliCases := map[string]struct {
		args  []string
		stdin string
		code  int
		want  string
	}{
		"unknown type":           {args: []string{"create", "secret", "password", "X=1"}, code: 2, want: `unknown secret type "password"`},
		"no type":                {args: []string{"create", "secret"}, code: 2, want: "give a secret type"},
		"env key starts digit":   {args: []string{"create", "secret", "env", "1KEY=v"}, code: 2, want: `environment variable name "1KEY" is not valid`},
		"env key with dash":      {args: []string{"create", "secret", "env", "MY-KEY=v"}, code: 2, want: `"MY-KEY" is not valid`},
		"env without value":      {args: []string{"create", "secret", "env", "KEY"}, code: 2, want: `"KEY" has no value`},
		"env two arguments":      {args: []string{"create", "secret", "env", "A=1", "B=2"}, code: 2, want: "takes one KEY=VALUE argument; got 2"},
		"name with capitals":     {args: []string{"create", "secret", "env", "K=v", "--name", "MySecret"}, code: 2, want: `secret name "MySecret" is not valid`},
		"name ends with dash":    {args: []string{"create", "secret", "env", "K=v", "--name", "bad-"}, code: 2, want: "start and end with a letter or digit"},
		"name too long":          {args: []string{"create", "secret", "env", "K=v", "--name", strings.Repeat("a", 254)}, code: 2, want: "at most 253 characters"},
		"duplicate name":         {args: []string{"create", "secret", "env", "EXISTING=2"}, code: 1, want: "Secret existing already exists"},
		"missing file":           {args: []string{"create", "secret", "mounted", filepath.Join(files, "nope")}, code: 1, want: "does not exist: check the path"},
		"directory as file":      {args: []string{"create", "secret", "mounted", filepath.Join(files, "adir")}, code: 1, want: "is a directory"},
		"oversized file":         {args: []string{"create", "secret", "mounted", big}, code: 1, want: "over the limit of 1 MiB"},
		"oversized stdin":        {args: []string{"create", "secret", "env", "K=-"}, stdin: strings.Repeat("y", 1<<20+1), code: 1, want: "over the limit of 1 MiB"},
		"empty stdin":            {args: []string{"create", "secret", "env", "K=-"}, stdin: "", code: 1, want: "value of K: read an empty value from stdin"},
		"empty stdin for a file": {args: []string{"create", "secret", "mounted", "-", "--name", "x"}, stdin: "\n", code: 1, want: "read an empty value from stdin"},
		"run spec directory":     {args: []string{"run", "-f", filepath.Join(files, "adir")}, code: 1, want: "run spec " + filepath.Join(files, "adir") + " is a directory, not a regular file"},
		"run spec over 1 MiB":    {args: []string{"run", "-f", bigSpec}, code: 1, want: "run spec " + bigSpec + " is 3.0 MiB, more than the 1 MiB a run spec may hold"},
		"docker user on 2 lines": {args: []string{"create", "secret", "docker", "--username", "al\nice", "--password", "p", "--server", "ghcr.io"}, code: 2, want: `username: "al\nice" has a control character`},
		"docker server with tab": {args: []string{"create", "secret", "docker", "--username", "u", "--password", "p", "--server", "ghcr.io\t"}, code: 2, want: `server: "ghcr.io\t" has a control character`},
		"relative mount path":    {args: []string{"create", "secret", "mounted", pub, "--mount-path", "secrets/x"}, code: 2, want: `mount path "secrets/x" is not absolute`},
		"public key for git-ssh": {args: []string{"create", "secret", "git-ssh", pub}, code: 2, want: "give the private key file, not the .pub"},
		"hf token without hf_":   {args: []string{"create", "secret", "hf", "--token", "abc"}, code: 2, want: "starts with 'hf_'"},
		"gcp key not JSON":       {args: []string{"create", "secret", "gcp", "--credentials-file", notJSON}, code: 2, want: "not valid JSON"},
		"s3 missing credentials": {args: []string{"create", "secret", "s3", "--config-file", pub}, code: 2, want: "missing --credentials-file"},
		"docker missing server":  {args: []string{"create", "secret", "docker", "--username", "u", "--password", "p"}, code: 2, want: "missing --server"},
		"databricks bad host":    {args: []string{"create", "secret", "databricks", "--host", "workspace", "--token", "t"}, code: 2, want: `"workspace" is not a URL`},
		"bad provider reference": {args: []string{"create", "secret", "env", "K", "--from", "vault"}, code: 2, want: "write it as PROVIDER:REF"},
		"unknown provider":       {args: []string{"create", "secret", "env", "K", "--from", "vault:secret/db#pw"}, code: 1, want: `this agent has no provider plugin named "vault" (it has none`},
		"no-check without from":  {args: []string{"create", "secret", "env", "K=v", "--no-check"}, code: 2, want: "--no-check is for a reference given with --from"},
		"unknown flag":           {args: []string{"create", "secret", "env", "K=v", "--colour", "red"}, code: 2, want: "flag provided but not defined: -colour"},
		"delete unknown name":    {args: []string{"delete", "secret", "existing", "nope", "-y"}, code: 1, want: "no secret named nope: nothing was deleted"},
		"delete nothing":         {args: []string{"delete", "secret", "-y"}, code: 2, want: "give the names of the secrets to delete, or --all"},
		"get unknown type":       {args: []string{"get", "secrets", "--type", "magic"}, code: 2, want: `unknown secret type "magic"`},
	}
	for name, tc := range cliCases {
		t.Run("cli/"+name, func(t *testing.T) {
			before := a.secretIDs(user)
			r := a.hush(user, tc.stdin, tc.args...)
			if r.code != tc.code {
				t.Errorf("got exit %d, want %d\n%s", r.code, tc.code, r)
			}
			// A command given no subcommand prints its help first.
			if !slices.ContainsFunc(strings.Split(r.stderr, "\n"), func(l string) bool {
				return strings.HasPrefix(l, "✗  ") && strings.Contains(l, tc.want)
			}) {
				t.Errorf("stderr %q, want a ✗ line containing %q", r.stderr, tc.want)
			}
			if after := a.secretIDs(user); !maps.Equal(before, after) {
				t.Errorf("store changed: %v, then %v", before, after)
			}
		})
	}

	apiCases := map[string]struct {
		method, path, body string
		code               int
		want               string
	}{
		"malformed JSON":      {"POST", "/v1/secrets", `{"name": "x",`, 400, "not valid JSON"},
		"unknown JSON field":  {"POST", "/v1/secrets", `{"name":"x","type":"env","colour":"red"}`, 400, `unknown field \"colour\"`},
		"two JSON values":     {"POST", "/v1/secrets", `{"name":"x"} {"name":"y"}`, 400, "more than one JSON value"},
		"wrong JSON type":     {"POST", "/v1/secrets", `{"name":7}`, 400, "request body: name: must be a string, not a number"},
		"time not a string":   {"POST", "/v1/secrets", `{"created_at":5,"name":"x","type":"env"}`, 400, "request body: created_at: must be a time string such as 2026-01-02T15:04:05Z"},
		"field not a string":  {"POST", "/v1/secrets", `{"name":"x","type":"env","fields":{"key":5}}`, 400, "request body: fields.key: must be a string, not a number"},
		"docker user 2 lines": {"POST", "/v1/secrets", `{"name":"x","type":"docker","fields":{"username":"al\nice","server":"ghcr.io"},"data":{"password":"cA=="}}`, 400, `username: \"al\\nice\" has a control character`},
		"unknown type":        {"POST", "/v1/secrets", `{"name":"x","type":"magic"}`, 400, `unknown secret type \"magic\"`},
		"value not base64":    {"POST", "/v1/secrets", `{"name":"x","type":"env","fields":{"key":"X"},"data":{"value":"%%%"}}`, 400, "request body: data.value: not valid base64 (illegal base64 data at input byte 0)"},
		"value over 1 MiB":    {"POST", "/v1/secrets", `{"name":"x","type":"mounted","data":{"value":"` + bigValue + `"}}`, 413, "the limit is 1 MiB"},
		"body over 2 MiB":     {"POST", "/v1/secrets", hugeBody, 413, "request body is over 2 MiB"},
		"run over 2 MiB":      {"POST", "/v1/runs", hugeRun, 413, "run spec is over 2 MiB"},
		"bad id":              {"POST", "/v1/secrets", `{"id":"123","name":"x","type":"env","fields":{"key":"X"},"data":{"value":"dg=="}}`, 400, "is not a ULID"},
		"duplicate":           {"POST", "/v1/secrets", `{"name":"existing","type":"env","fields":{"key":"X"},"data":{"value":"dg=="}}`, 409, "secret existing already exists"},
		"unknown secret":      {"GET", "/v1/secrets/nope", "", 404, "secret nope not found"},
		"no such endpoint":    {"GET", "/v1/nothing", "", 404, "no API endpoint GET /v1/nothing"},
		"update":              {"PUT", "/v1/secrets/existing", `{}`, 405, "secrets are immutable"},
		"list unknown type":   {"GET", "/v1/secrets?type=magic", "", 400, `unknown secret type \"magic\"`},
		"token for bad user":  {"POST", "/v1/acl/tokens", `{"user":"Not Valid"}`, 403, "needs a management token"},
	}
	for name, tc := range apiCases {
		t.Run("api/"+name, func(t *testing.T) {
			before := a.secretIDs(user)
			code, body := a.request(tc.method, tc.path, user, tc.body)
			if code != tc.code {
				t.Errorf("got %d %s, want %d", code, body, tc.code)
			}
			if tc.want != "" && (!strings.HasPrefix(body, `{"error":`) || !strings.Contains(body, tc.want)) {
				t.Errorf("body %q, want a JSON error containing %q", body, tc.want)
			}
			if after := a.secretIDs(user); !maps.Equal(before, after) {
				t.Errorf("store changed: %v, then %v", before, after)
			}
		})
	}
	if code, body := a.request("POST", "/v1/acl/tokens", a.token, `{"user":"Not Valid"}`); code != 400 || !strings.Contains(body, "user name") {
		t.Errorf("token for an invalid user name: got %d %s, want 400", code, body)
	}
}

func TestBadConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := writeFile(t, dir, "base.hcl", "cluster = \"east\"\n")
	bad := writeFile(t, dir, "bad.hcl", `log_level = "chatty"
plugin "vault" {
  sha256 = "nothex"
}
runtime "podman" {}
`)
	cmd := []string{"agent", "-dev", "-config", good, "-config", bad}
	r := (&agent{t: t}).hush("", "", cmd...)
	if r.code != 1 {
		t.Fatalf("got %s, want exit 1", r)
	}
	for _, want := range []string{
		bad + `:1:1: Invalid log level; "chatty" is not one of trace, debug, info, warn, error`,
		bad + `:2:1: Missing plugin path`,
		bad + `:3:3: Invalid plugin checksum`,
		bad + `:5:1: Unknown runtime; runtime "podman"`,
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	r = (&agent{t: t}).hush("", "", "agent", "-dev", "-bind", "localhost")
	if r.code != 1 || !strings.Contains(r.stderr, `"localhost" must be HOST:PORT`) {
		t.Errorf("bad -bind: %s", r)
	}
	r = (&agent{t: t}).hush("", "", "agent")
	if r.code != 1 || !strings.Contains(r.stderr, "no data dir: set -data-dir") {
		t.Errorf("no data dir: %s", r)
	}
	// A relative data dir is refused before the agent starts; were it
	// not, the agent would start in a scratch directory and be stopped.
	relative := writeFile(t, dir, "relative.hcl", "cluster = \"east\"\ndata_dir = \"data\"\n")
	for args, want := range map[string]string{
		"agent -bind 127.0.0.1:0 -config " + relative: relative + `:2:1: Invalid data directory; "data" must be an absolute path`,
		"agent -bind 127.0.0.1:0 -data-dir data":      `-data-dir "data" must be an absolute path`,
	} {
		var stderr syncBuffer
		cmd, exited := startHush(t, nil, func(c *exec.Cmd) { c.Stderr, c.Dir = &stderr, t.TempDir() }, strings.Fields(args)...)
		if code := waitExit(t, cmd, exited, 20*time.Second); code != 1 || !strings.Contains(stderr.String(), want) {
			t.Errorf("hush %s: got exit %d, stderr %q; want exit 1 and %q", args, code, &stderr, want)
		}
	}
}
