package spec

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hush-sh/hush/sdk/api"
)

// testEnv is the environment the secrets tests see instead of the process's.
var testEnv = map[string]string{
	"SECRET_STUFF":      "stuff",
	"REGISTRY_PASSWORD": "registry-password",
	"DATABRICKS_TOKEN":  "dapi-test",
	"HF_TOKEN":          "hf_test",
	"NOT_HF":            "not-an-hf-token",
}

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

// parseSecretsFixture parses a file with testEnv.
func parseSecretsFixture(t *testing.T, path string) (*SecretsFile, []Warning, error) {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return ParseSecrets(path, src, lookup(testEnv))
}

func readFixture(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func requests(f *SecretsFile) []*api.CreateSecretRequest {
	var reqs []*api.CreateSecretRequest
	for _, s := range f.Secrets {
		reqs = append(reqs, s.Request)
	}
	return reqs
}

// TestParseSecretsFixtures checks that all.hcl and all.yaml, which declare
// every type, give the same requests.
func TestParseSecretsFixtures(t *testing.T) {
	file := func(name string) []byte { return readFixture(t, "testdata/secrets/files/"+name) }
	sshKey := file("id_test")
	want := []*api.CreateSecretRequest{
		{Name: "secret-stuff", Type: api.TypeEnv, Fields: map[string]string{"key": "SECRET_STUFF"}, Data: map[string][]byte{"value": []byte("stuff")}},
		{Name: "db-password", Type: api.TypeEnv, Fields: map[string]string{"key": "DB_PASSWORD"}, From: "vault:secret/data/db#password"},
		{Name: "app-config", Type: api.TypeMounted, Fields: map[string]string{"mount_path": "/etc/app/config.json"}, Data: map[string][]byte{"value": file("app.json")}},
		{Name: "deploy-key", Type: api.TypeSSH, Data: map[string][]byte{"value": sshKey}},
		{Name: "git-key", Type: api.TypeGitSSH, Fields: map[string]string{"mount_path": "/secrets/git/key"},
			Data: map[string][]byte{"value": sshKey, "known_hosts": file("known_hosts")}},
		{Name: "registry", Type: api.TypeDocker,
			Fields: map[string]string{"username": "robot", "server": "ghcr.io", "email": "robot@example.com"},
			Data:   map[string][]byte{"password": []byte("registry-password")}},
		{Name: "aws", Type: api.TypeS3, Fields: map[string]string{"profile": "test"},
			Data: map[string][]byte{"config": file("aws-config"), "credentials": file("aws-credentials")}},
		{Name: "gcp-key", Type: api.TypeGCP, Fields: map[string]string{"mount_path": "/secrets/gcp/key.json"}, Data: map[string][]byte{"credentials": file("gcp.json")}},
		{Name: "oci", Type: api.TypeOCI, Data: map[string][]byte{"config": file("oci-config"), "key": file("oci-key")}},
		{Name: "databricks", Type: api.TypeDatabricks, Fields: map[string]string{"host": "https://example.cloud.databricks.com"}, Data: map[string][]byte{"token": []byte("dapi-test")}},
		{Name: "hf-token", Type: api.TypeHF, Data: map[string][]byte{"token": []byte("hf_test")}},
	}
	tests := map[string]struct {
		path    string
		wantPos []string // of the first two secrets
	}{
		"hcl":  {"testdata/secrets/all.hcl", []string{"testdata/secrets/all.hcl:2:1", "testdata/secrets/all.hcl:6:1"}},
		"yaml": {"testdata/secrets/all.yaml", []string{"testdata/secrets/all.yaml:3:5", "testdata/secrets/all.yaml:6:5"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			f, warnings, err := parseSecretsFixture(t, tt.path)
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if len(warnings) != 0 {
				t.Errorf("got warnings %v, want none", warnings)
			}
			if got := requests(f); !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
			if got := []string{f.Secrets[0].Pos.String(), f.Secrets[1].Pos.String()}; !reflect.DeepEqual(got, tt.wantPos) {
				t.Errorf("got positions %q, want %q", got, tt.wantPos)
			}
		})
	}
	for _, s := range api.Types() {
		if !slices.ContainsFunc(want, func(r *api.CreateSecretRequest) bool { return r.Type == s.Type }) {
			t.Errorf("got no %s secret in the fixtures, want every type", s.Type)
		}
	}
}

// TestSecretsExamples keeps the examples parsing, and declaring the same.
func TestSecretsExamples(t *testing.T) {
	fromHCL, wh, err := parseSecretsFixture(t, "../../examples/secrets.hcl")
	if err != nil {
		t.Fatalf("hcl example: %v", err)
	}
	fromYAML, wy, err := parseSecretsFixture(t, "../../examples/secrets.yaml")
	if err != nil {
		t.Fatalf("yaml example: %v", err)
	}
	if len(wh)+len(wy) != 0 {
		t.Errorf("got warnings %v %v, want none", wh, wy)
	}
	if got, want := requests(fromYAML), requests(fromHCL); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v from YAML, want %+v as from HCL", got, want)
	}
	if got, want := len(fromHCL.Secrets), 6; got != want {
		t.Errorf("got %d secrets, want %d", got, want)
	}
}

// A git-ssh secret takes known_hosts as its create command's --known-hosts
// does: checked, and told about when it is left out.
func TestParseSecretsKnownHosts(t *testing.T) {
	const knownHosts = "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
	env := map[string]string{
		"KEY":         "-----BEGIN OPENSSH PRIVATE KEY-----\nk\n-----END OPENSSH PRIVATE KEY-----\n",
		"KNOWN_HOSTS": knownHosts,
		"BAD_HOSTS":   "# ok\ngithub.com\n",
	}
	tests := map[string]struct {
		filename, src string
		wantErr       string
		wantWarning   string
		wantHosts     bool
	}{
		"hcl": {filename: "s.hcl", src: `secret "git-ssh" "git" {
  value       = env("KEY")
  known_hosts = env("KNOWN_HOSTS")
}`, wantHosts: true},
		"yaml": {filename: "s.yaml", src: "secrets: [{type: git-ssh, name: git, value_from_env: KEY, known_hosts_from_env: KNOWN_HOSTS}]", wantHosts: true},
		"from a provider": {filename: "s.hcl", src: `secret "git-ssh" "git" {
  from        = "vault:secret/data/git#key"
  known_hosts = env("KNOWN_HOSTS")
}`, wantHosts: true},
		"hcl without": {filename: "s.hcl", src: `secret "git-ssh" "git" { value = env("KEY") }`,
			wantWarning: `s.hcl:1:1: secret "git": no known_hosts: each run accepts an SSH host's key the first time`},
		"yaml without": {filename: "s.yaml", src: "secrets: [{type: git-ssh, name: git, value_from_env: KEY}]",
			wantWarning: "; set known_hosts_from_file: PATH"},
		"hcl bad": {filename: "s.hcl", src: `secret "git-ssh" "git" {
  value       = env("KEY")
  known_hosts = env("BAD_HOSTS")
}`, wantErr: `s.hcl:3:21: secret "git": known_hosts: not a known_hosts file: line 2 (no host key on it)`},
		"yaml bad": {filename: "s.yaml", src: "secrets: [{type: git-ssh, name: git, value_from_env: KEY, known_hosts_from_env: BAD_HOSTS}]",
			wantErr: "line 2 (no host key on it)"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			f, warnings, err := ParseSecrets(tt.filename, []byte(tt.src), lookup(env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error holding %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			switch {
			case tt.wantWarning == "" && len(warnings) > 0:
				t.Errorf("got warnings %v, want none", warnings)
			case tt.wantWarning != "" && (len(warnings) != 1 || !strings.Contains(warnings[0].String(), tt.wantWarning)):
				t.Errorf("got warnings %v, want one holding %q", warnings, tt.wantWarning)
			}
			got, ok := f.Secrets[0].Request.Data["known_hosts"]
			if ok != tt.wantHosts || (ok && string(got) != knownHosts) {
				t.Errorf("got known_hosts %q (held: %v), want held: %v", got, ok, tt.wantHosts)
			}
		})
	}
}

func TestParseSecretsEnvKey(t *testing.T) {
	tests := map[string]struct {
		filename, src string
		want          string
	}{
		"hcl name":      {"s.hcl", `secret "env" "secret-stuff" { value = env("SECRET_STUFF") }`, "SECRET_STUFF"},
		"hcl dots":      {"s.hcl", `secret "env" "my.app-token" { value = env("SECRET_STUFF") }`, "MY_APP_TOKEN"},
		"hcl explicit":  {"s.hcl", "secret \"env\" \"secret-stuff\" {\n  key = \"OTHER\"\n  value = env(\"SECRET_STUFF\")\n}\n", "OTHER"},
		"yaml name":     {"s.yaml", "secrets: [{type: env, name: secret-stuff, value_from_env: SECRET_STUFF}]", "SECRET_STUFF"},
		"yaml explicit": {"s.yml", "secrets: [{type: env, name: secret-stuff, key: OTHER, value_from_env: SECRET_STUFF}]", "OTHER"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			f, _, err := ParseSecrets(tt.filename, []byte(tt.src), lookup(testEnv))
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if got := f.Secrets[0].Request.Fields; !reflect.DeepEqual(got, map[string]string{"key": tt.want}) {
				t.Errorf("got fields %v, want key %s", got, tt.want)
			}
		})
	}
}

// TestParseSecretsFilePaths checks that paths are relative to the secrets
// file, wherever the caller runs, and that ParseSecretsFile reads the
// process environment.
func TestParseSecretsFilePaths(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "conf")
	abs := filepath.Join(dir, "abs.txt")
	for path, content := range map[string]string{
		filepath.Join(conf, "files", "rel.txt"): "relative",
		abs:                                     "absolute",
	} {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("HUSH_SPEC_TEST_VALUE", "from-env")
	tests := map[string]string{
		"secrets.hcl": `secret "mounted" "rel" { value = file("files/rel.txt") }
secret "mounted" "abs" { value = file("` + abs + `") }
secret "env" "env" { value = env("HUSH_SPEC_TEST_VALUE") }
`,
		"secrets.yaml": `secrets:
  - {type: mounted, name: rel, value_from_file: ./files/rel.txt}
  - {type: mounted, name: abs, value_from_file: "` + abs + `"}
  - {type: env, name: env, value_from_env: HUSH_SPEC_TEST_VALUE}
`,
	}
	for name, src := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(conf, name)
			if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			f, _, err := ParseSecretsFile(path)
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			var got []string
			for _, s := range f.Secrets {
				got = append(got, string(s.Request.Data["value"]))
			}
			if want := []string{"relative", "absolute", "from-env"}; !reflect.DeepEqual(got, want) {
				t.Errorf("got values %q, want %q", got, want)
			}
		})
	}
}

func TestParseSecretsLiteral(t *testing.T) {
	tests := map[string]struct {
		filename, src string
		want          []string
	}{
		"hcl": {"s.hcl", "secret \"docker\" \"reg\" {\n  username = \"robot\"\n  server   = \"ghcr.io\"\n  password = \"pw\"\n}\n", []string{
			`s.hcl:4:14: secret "reg": password is a literal: anyone who reads this file sees it; use password = env("VAR") or file("PATH") instead`}},
		"hcl heredoc": {"s.hcl", "secret \"mounted\" \"m\" {\n  value = <<-EOT\n    pw\n  EOT\n}\n", []string{
			`s.hcl:2:11: secret "m": value is a literal: anyone who reads this file sees it; use value = env("VAR") or file("PATH") instead`}},
		"yaml": {"s.yaml", "secrets:\n  - type: hf\n    name: hf\n    token: hf_pw\n", []string{
			`s.yaml:4:12: secret "hf": token is a literal: anyone who reads this file sees it; use token_from_env or token_from_file instead`}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			f, warnings, err := ParseSecrets(tt.filename, []byte(tt.src), nil)
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			var got []string
			for _, w := range warnings {
				got = append(got, w.String())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got warnings\n%q\nwant\n%q", got, tt.want)
			}
			if len(f.Secrets) != 1 || len(f.Secrets[0].Request.Data) != 1 {
				t.Errorf("got %+v, want one secret holding the literal", f.Secrets)
			}
		})
	}
}

func TestParseSecretsEmptyList(t *testing.T) {
	f, warnings, err := ParseSecrets("s.yaml", []byte("secrets: []\n"), nil)
	if err != nil || len(warnings) != 0 {
		t.Fatalf("got error %v and warnings %v, want none", err, warnings)
	}
	if len(f.Secrets) != 0 {
		t.Errorf("got %d secrets, want 0", len(f.Secrets))
	}
}

func TestParseSecretsExtension(t *testing.T) {
	const want = `secrets file "secrets.json" has unsupported extension ".json": name it .yaml, .yml or .hcl to say which format it is in`
	if _, _, err := ParseSecrets("secrets.json", nil, nil); err == nil || err.Error() != want {
		t.Errorf("got error %v, want %s", err, want)
	}
	if _, _, err := ParseSecretsFile("secrets.json"); err == nil || err.Error() != want {
		t.Errorf("ParseSecretsFile: got error %v, want %s", err, want)
	}
	_, _, err := ParseSecretsFile(filepath.Join(t.TempDir(), "missing.hcl"))
	if err == nil || !strings.HasPrefix(err.Error(), "read secrets file: ") {
		t.Errorf("got error %v, want a read secrets file error", err)
	}
}

// TestParseSecretsTooLarge checks the size limit on a file and on a
// secret's values together.
func TestParseSecretsTooLarge(t *testing.T) {
	dir := t.TempDir()
	for name, size := range map[string]int{"big": api.MaxSecretSize + 1, "half": api.MaxSecretSize/2 + 1} {
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	src := `secret "mounted" "big" { value = file("big") }
secret "s3" "two-halves" {
  config_file      = "half"
  credentials_file = "half"
}
`
	path := filepath.Join(dir, "s.hcl")
	_, _, err := ParseSecrets(path, []byte(src), nil)
	want := []string{
		path + `:1:39: secret "big": value: file "big" (` + filepath.Join(dir, "big") + `) is 1048577 bytes, more than the 1048576 a secret may hold: keep large files out of secrets, in the image or a volume`,
		path + `:2:1: secret "two-halves": its values come to 1048578 bytes, more than the 1048576 a secret may hold: keep large files out of secrets`,
	}
	if got := problems(t, err); !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}

// TestParseSecretsErrors checks that every problem in a file is reported
// at once, in file order, each where it is and saying how to fix it.
func TestParseSecretsErrors(t *testing.T) {
	tests := map[string]struct {
		path string
		want []string
	}{
		"hcl": {"testdata/secrets/errors.hcl", []string{
			`testdata/secrets/errors.hcl:2:8: secret "unknown-type": unknown type "mount" (did you mean "mounted"?): use one of env, mounted, ssh, git-ssh, docker, s3, gcp, oci, databricks, hf`,
			`testdata/secrets/errors.hcl:5:14: secret name "Bad_Name" is not valid: use lowercase letters, digits, '.' and '-', start and end with a letter or digit, at most 253 characters`,
			`testdata/secrets/errors.hcl:11:1: secret "dup": missing value: set value = env("VAR") or file("PATH"), or from = "PROVIDER:REF"`,
			`testdata/secrets/errors.hcl:11:14: secret "dup": name is already declared at testdata/secrets/errors.hcl:8:14: give each secret its own name`,
			`testdata/secrets/errors.hcl:12:3: secret "dup": unknown field "valeu" (did you mean "value"?); env secrets take key, value, from`,
			`testdata/secrets/errors.hcl:14:1: secret "no-username": missing username: docker secrets need it`,
			`testdata/secrets/errors.hcl:18:1: secret "no-credentials": missing credentials: set credentials_file = "PATH" or credentials = env("VAR"), or from = "PROVIDER:REF"`,
			`testdata/secrets/errors.hcl:22:3: secret "value-and-from": from and value both give value (value at testdata/secrets/errors.hcl:21:3): keep one`,
			`testdata/secrets/errors.hcl:26:3: secret "config-twice": config_file and config both give config (config at testdata/secrets/errors.hcl:25:3): keep one`,
			`testdata/secrets/errors.hcl:30:15: secret "unset": value: environment variable UNSET_VAR is not set: set it where hush runs, or give the value another way`,
			`testdata/secrets/errors.hcl:33:16: secret "unreadable": value: read file "files/missing.txt" (testdata/secrets/files/missing.txt): no such file or directory: check the path, which is relative to the secrets file's directory`,
			`testdata/secrets/errors.hcl:38:1: secret "git-two": a user holds one git-ssh secret, and secret "git-one" at testdata/secrets/errors.hcl:35:1 is one already: keep one`,
			`testdata/secrets/errors.hcl:41:1: secret "9lives": key: environment variable name "9LIVES" is not valid: use letters, digits and '_', not starting with a digit`,
			`testdata/secrets/errors.hcl:41:1: secret "9lives": provider reference "no-colon" is not valid: write it as PROVIDER:REF, for example vault:secret/data/db#password`,
			`testdata/secrets/errors.hcl:45:15: secret "not-hf": token: a Hugging Face token starts with 'hf_': copy it from https://huggingface.co/settings/tokens`,
			`testdata/secrets/errors.hcl:49:16: secret "relative": mount_path: mount path "etc/app.json" is not absolute: start it with '/'`,
			`testdata/secrets/errors.hcl:52:3: secret "oci-from": oci secrets hold several values and cannot come from a provider reference: give each value instead`,
			`testdata/secrets/errors.hcl:55:11: secret "functions": token: unknown function "base64decode": a secret value is env("VAR"), file("PATH") or a string`,
			`testdata/secrets/errors.hcl:58:11: variables not allowed; Variables may not be used here`,
			`testdata/secrets/errors.hcl:61:11: secret "number": token must be env("VAR"), file("PATH") or a string, got a number`,
			`testdata/secrets/errors.hcl:64:11: secret "host-from-env": host is not a secret value, so write it as a plain string; env() and file() are for secret values`,
			`testdata/secrets/errors.hcl:68:11: secret "two-args": value: env takes one argument: write env("VAR")`,
			`testdata/secrets/errors.hcl:70:1: secret block needs two labels, its type and its name, such as secret "env" "db-password" { ... }`,
			`testdata/secrets/errors.hcl:72:1: unknown field "value": a secrets file holds only secret "TYPE" "NAME" { ... } blocks`,
			`testdata/secrets/errors.hcl:73:1: unknown block "secrets" (did you mean "secret"?): a secrets file holds only secret "TYPE" "NAME" { ... } blocks`,
			`testdata/secrets/errors.hcl:75:1: secret "nested": missing value: set value = env("VAR") or file("PATH"), or from = "PROVIDER:REF"`,
			`testdata/secrets/errors.hcl:76:3: secret "nested": value is a block, but a secret holds only fields: write value = ...`,
			`testdata/secrets/errors.hcl:80:11: secret "null": value has no value: give one or remove it`,
		}},
		"yaml": {"testdata/secrets/errors.yaml", []string{
			`testdata/secrets/errors.yaml:3:12: secret "unknown-type": unknown type "mount" (did you mean "mounted"?): use one of env, mounted, ssh, git-ssh, docker, s3, gcp, oci, databricks, hf`,
			`testdata/secrets/errors.yaml:4:23: secret name "Bad_Name" is not valid: use lowercase letters, digits, '.' and '-', start and end with a letter or digit, at most 253 characters`,
			`testdata/secrets/errors.yaml:6:5: secret "dup": missing value: set value_from_env: VAR or value_from_file: PATH, or from: PROVIDER:REF`,
			`testdata/secrets/errors.yaml:6:23: secret "dup": name is already declared at testdata/secrets/errors.yaml:5:23: give each secret its own name`,
			`testdata/secrets/errors.yaml:6:28: secret "dup": unknown field "valeu_from_env" (did you mean "value_from_env"?); env secrets take type, name, key, value, value_from_env, value_from_file, from`,
			`testdata/secrets/errors.yaml:7:5: secret "no-username": missing username: docker secrets need it`,
			`testdata/secrets/errors.yaml:8:5: secret "no-credentials": missing credentials: set credentials_from_env: VAR or credentials_from_file: PATH, or from: PROVIDER:REF`,
			`testdata/secrets/errors.yaml:9:69: secret "value-and-from": from and value_from_env both give value (value_from_env at testdata/secrets/errors.yaml:9:39): keep one`,
			`testdata/secrets/errors.yaml:10:66: secret "value-twice": value_from_file and value_from_env both give value (value_from_env at testdata/secrets/errors.yaml:10:36): keep one`,
			`testdata/secrets/errors.yaml:11:42: secret "key-twice": key is set twice (also at testdata/secrets/errors.yaml:11:34): keep one`,
			`testdata/secrets/errors.yaml:12:46: secret "unset": value: environment variable UNSET_VAR is not set: set it where hush runs, or give the value another way`,
			`testdata/secrets/errors.yaml:13:56: secret "unreadable": value: read file "files/missing.txt" (testdata/secrets/files/missing.txt): no such file or directory: check the path, which is relative to the secrets file's directory`,
			`testdata/secrets/errors.yaml:15:5: secret "git-two": a user holds one git-ssh secret, and secret "git-one" at testdata/secrets/errors.yaml:14:5 is one already: keep one`,
			`testdata/secrets/errors.yaml:16:5: secret "9lives": key: environment variable name "9LIVES" is not valid: use letters, digits and '_', not starting with a digit`,
			`testdata/secrets/errors.yaml:16:5: secret "9lives": provider reference "no-colon" is not valid: write it as PROVIDER:REF, for example vault:secret/data/db#password`,
			`testdata/secrets/errors.yaml:17:46: secret "not-hf": token: a Hugging Face token starts with 'hf_': copy it from https://huggingface.co/settings/tokens`,
			`testdata/secrets/errors.yaml:18:82: secret "relative": mount_path: mount path "etc/app.json" is not absolute: start it with '/'`,
			`testdata/secrets/errors.yaml:19:33: secret "oci-from": oci secrets hold several values and cannot come from a provider reference: give each value instead`,
			`testdata/secrets/errors.yaml:20:37: secret "number": token must be a string, got a whole number; put it in quotes to use it as text`,
			`testdata/secrets/errors.yaml:21:48: secret "bad-var": value: environment variable name "1X" is not valid: use letters, digits and '_', not starting with a digit`,
			`testdata/secrets/errors.yaml:22:5: secrets[19]: missing name: add name: with the secret's name, such as db-password`,
			`testdata/secrets/errors.yaml:23:5: secret "no-type": missing type: add type: with one of env, mounted, ssh, git-ssh, docker, s3, gcp, oci, databricks, hf`,
			`testdata/secrets/errors.yaml:24:35: secret "type-twice": type is set twice (also at testdata/secrets/errors.yaml:24:6): keep one`,
			`testdata/secrets/errors.yaml:27:5: secret "null-value": value_from_env has no value: give one or remove it`,
			`testdata/secrets/errors.yaml:28:5: secrets[23] must be a mapping such as {type: env, name: db-password, value_from_env: DB_PASSWORD}, got a string`,
			`testdata/secrets/errors.yaml:29:1: unknown field "secret" (did you mean "secrets"?): a secrets file holds only the secrets list`,
		}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			f, _, err := parseSecretsFixture(t, tt.path)
			if f != nil {
				t.Errorf("got %+v, want nil", f)
			}
			if got := problems(t, err); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestParseSecretsFileErrors covers problems with a file as a whole.
func TestParseSecretsFileErrors(t *testing.T) {
	const noSecrets = "list them under secrets:, or write secrets: [] to declare none"
	const example = "{type: env, name: db-password, value_from_env: DB_PASSWORD}"
	tests := map[string]struct {
		filename, src string
		want          []string
	}{
		"hcl without secrets": {"s.hcl", "# nothing yet\n", []string{
			`s.hcl:1:1: secrets file declares no secrets: add secret "TYPE" "NAME" { ... } blocks`}},
		"hcl syntax error": {"s.hcl", "secret \"env\" \"a\" {\n  value =\n}\n", []string{
			`s.hcl:2:10: invalid expression; Expected the start of an expression, but found an invalid expression token`}},
		"empty yaml": {"s.yaml", "", []string{
			`s.yaml:1:1: secrets file is empty: ` + noSecrets}},
		"yaml comments only": {"s.yaml", "# nothing yet\n", []string{
			`s.yaml:1:1: secrets file is empty: ` + noSecrets}},
		"yaml without secrets": {"s.yaml", "version: 1\n", []string{
			`s.yaml:1:1: unknown field "version": a secrets file holds only the secrets list`,
			`s.yaml:1:1: secrets file has no secrets field: ` + noSecrets}},
		"secrets without value": {"s.yaml", "secrets:\n", []string{
			`s.yaml:1:1: field "secrets" has no value: ` + noSecrets}},
		"secrets not a list": {"s.yaml", "secrets: {type: env}\n", []string{
			`s.yaml:1:10: secrets must be a list such as [` + example + `], got a mapping`}},
		"secrets twice": {"s.yaml", "secrets: []\nsecrets: []\n", []string{
			`s.yaml:2:1: field "secrets" is set twice (also at s.yaml:1:1): keep one`}},
		"not a mapping": {"s.yaml", "- {type: env}\n", []string{
			`s.yaml:1:1: secrets file must be a mapping such as secrets: [` + example + `], got a list`}},
		"two documents": {"s.yaml", "secrets: []\n---\nsecrets: []\n", []string{
			`s.yaml:2:1: secrets file holds more than one YAML document: keep one, and remove the second "---"`}},
		"invalid yaml": {"s.yaml", "secrets: [\n", []string{
			`s.yaml:1:10: invalid YAML: did not find expected node content`}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			f, _, err := ParseSecrets(tt.filename, []byte(tt.src), nil)
			if f != nil {
				t.Errorf("got %+v, want nil", f)
			}
			if got := problems(t, err); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

// TestSecretValuesNotInMessages puts a recognisable value everywhere a
// secret value can be and checks that no error or warning shows it.
func TestSecretValuesNotInMessages(t *testing.T) {
	const canary, number = "canary-7f3a9c-value", "4815162342"
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "canary.txt"), []byte(canary), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CANARY": canary}
	tests := map[string]struct{ filename, src string }{
		"hcl": {"s.hcl", `secret "env" "literal" {
  value = "` + canary + `"
}
secret "hf" "not-hf-from-env" {
  token = env("CANARY")
}
secret "ssh" "not-a-key-from-file" {
  value = file("canary.txt")
}
secret "gcp" "not-json" {
  credentials = "` + canary + `"
}
secret "env" "literal-and-from" {
  value = "` + canary + `"
  from  = "vault:x"
}
secret "docker" "literal-no-username" {
  server   = "ghcr.io"
  password = "` + canary + `"
}
secret "hf" "number" {
  token = ` + number + `
}
secret "hf" "list" {
  token = ["` + canary + `"]
}
secret "hf" "arithmetic" {
  token = "` + canary + `" + 1
}
secret "hf" "template" {
  token = "` + canary + `${upper("x")}"
}
`},
		"yaml": {"s.yaml", `secrets:
  - {type: env, name: literal, value: ` + canary + `}
  - {type: hf, name: not-hf-from-env, token_from_env: CANARY}
  - {type: ssh, name: not-a-key-from-file, value_from_file: canary.txt}
  - {type: gcp, name: not-json, credentials: ` + canary + `}
  - {type: env, name: literal-and-from, value: ` + canary + `, from: "vault:x"}
  - {type: docker, name: literal-no-username, server: ghcr.io, password: ` + canary + `}
  - {type: hf, name: number, token: ` + number + `}
  - {type: hf, name: list, token: [` + canary + `]}
  - ` + canary + `
`},
		"yaml list": {"s.yaml", "secrets: " + canary + "\n"},
		"yaml root": {"s.yaml", canary + "\n"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, warnings, err := ParseSecrets(filepath.Join(dir, tt.filename), []byte(tt.src), lookup(env))
			if err == nil {
				t.Fatal("got no error, want some")
			}
			messages := problems(t, err)
			for _, w := range warnings {
				messages = append(messages, w.String())
			}
			for _, m := range messages {
				if strings.Contains(m, canary) || strings.Contains(m, number) {
					t.Errorf("got a secret value in %q", m)
				}
			}
		})
	}
}
