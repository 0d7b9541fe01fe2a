package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hush-sh/hush/sdk/api"
)

// registerThrowaway adds secret types that exist only in this test: one
// that takes every value as a flag, one that takes a file argument.
func registerThrowaway(t *testing.T) {
	t.Helper()
	for _, s := range []*api.TypeSpec{{
		Type: "throwaway", Label: "throwaway",
		Fields: []api.FieldSpec{{Name: "login", Required: true}, {Name: "region"}},
		Data:   []api.DataSpec{{Name: "password"}, {Name: "cert"}},
		Create: api.CreateSpec{Usage: "a throwaway login", Inputs: []api.InputSpec{
			{Flag: "login", Target: "login", Required: true, Usage: "login `NAME`"},
			{Flag: "password", Target: "password", Required: true, Usage: "`PASSWORD` (- reads stdin)"},
			{Flag: "cert-file", Target: "cert", File: true, Required: true, Usage: "certificate `FILE`"},
			{Flag: "region", Target: "region", Usage: "`REGION`"},
		}},
		Inject: api.InjectSpec{Dir: true, Files: []api.FileSpec{{Name: "cert.pem", Data: "cert"}},
			Env: []api.EnvSpec{{Name: "THROW_PASSWORD", From: api.EnvData, Ref: "password"}}},
	}, {
		Type: "throwaway-file", Label: "throwaway file",
		Fields: []api.FieldSpec{{Name: api.FieldMountPath, Check: api.ValidateMountPath}},
		Data:   []api.DataSpec{{Name: api.FieldValue}},
		Create: api.CreateSpec{Usage: "a throwaway file", ArgsUsage: "FILE", Arg: api.ArgFile, ArgData: api.FieldValue,
			Inputs: []api.InputSpec{{Flag: "mount-path", Target: api.FieldMountPath, Usage: "`PATH`"}}},
		Inject: api.InjectSpec{Files: []api.FileSpec{{Name: "tok", Data: api.FieldValue}}},
	}} {
		remove, err := api.RegisterType(s)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(remove)
	}
}

// fakeAgent answers secret creates and keeps the requests.
type fakeAgent struct {
	mu       sync.Mutex
	requests []*api.CreateSecretRequest
}

func (a *fakeAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/secrets" {
		http.NotFound(w, r)
		return
	}
	var req api.CreateSecretRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	a.requests = append(a.requests, &req)
	a.mu.Unlock()
	json.NewEncoder(w).Encode(&api.Secret{ID: req.ID, Name: req.Name, Type: req.Type, Fields: req.Fields})
}

// A type declared only in the table gets its create command, flags,
// file and stdin reading, name derivation and checks with no other change.
func TestCreateRegisteredType(t *testing.T) {
	registerThrowaway(t)
	dir := t.TempDir()
	cert := filepath.Join(dir, "My_Cert")
	if err := os.WriteFile(cert, []byte("cert-value"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		args    []string
		stdin   string
		code    int
		want    *api.CreateSecretRequest
		wantErr string
	}{
		"flags, file flag and stdin": {
			args:  []string{"throwaway", "--login", "bob", "--password", "-", "--cert-file", cert, "--region", "eu"},
			stdin: "pw-value\n",
			want: &api.CreateSecretRequest{Name: "throwaway", Type: "throwaway",
				Fields: map[string]string{"login": "bob", "region": "eu"},
				Data:   map[string][]byte{"password": []byte("pw-value"), "cert": []byte("cert-value")}},
		},
		"file argument names the secret": {
			args: []string{"throwaway-file", cert, "--mount-path", "/etc/tok"},
			want: &api.CreateSecretRequest{Name: "my-cert", Type: "throwaway-file",
				Fields: map[string]string{api.FieldMountPath: "/etc/tok"},
				Data:   map[string][]byte{api.FieldValue: []byte("cert-value")}},
		},
		"required flag": {
			args: []string{"throwaway", "--password", "pw", "--cert-file", cert},
			code: exitUsage, wantErr: "missing --login: throwaway secrets need it",
		},
		"field check": {
			args: []string{"throwaway-file", cert, "--mount-path", "etc"},
			code: exitUsage, wantErr: `mount path "etc" is not absolute`,
		},
		"no --from for several values": {
			args: []string{"throwaway", "--from", "vault:x"},
			code: exitUsage, wantErr: "flag provided but not defined: -from",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			agent := &fakeAgent{}
			srv := httptest.NewServer(agent)
			defer srv.Close()
			t.Setenv("HUSH_ADDR", srv.URL)
			t.Setenv("HUSH_TOKEN", "x")
			var out, errb bytes.Buffer
			args := append([]string{"hush", "create", "secret"}, tc.args...)
			code := Run(context.Background(), "test", args, strings.NewReader(tc.stdin), &out, &errb)
			if code != tc.code {
				t.Fatalf("got exit %d, want %d (stderr %q)", code, tc.code, errb.String())
			}
			if !strings.Contains(errb.String(), tc.wantErr) {
				t.Errorf("got stderr %q, want it to hold %q", errb.String(), tc.wantErr)
			}
			var want []*api.CreateSecretRequest
			if tc.want != nil {
				want = []*api.CreateSecretRequest{tc.want}
			}
			for _, r := range agent.requests {
				if r.ID == "" || r.CreatedAt.IsZero() {
					t.Errorf("got request without id or creation time: %+v", r)
				}
				r.ID, r.CreatedAt = "", time.Time{}
			}
			if !reflect.DeepEqual(agent.requests, want) {
				t.Errorf("got requests %+v, want %+v", agent.requests, want)
			}
		})
	}
}

// TestCreateSecretNames checks how create secret names a secret from its
// argument against a real agent: an argument that gives no name, and any
// other mistake the command line shows, is a usage error (exit 2, nothing
// created); a name taken by a secret made from another spelling of the
// key says where the name came from and how to give another.
func TestCreateSecretNames(t *testing.T) {
	dir := t.TempDir()
	underscores := filepath.Join(dir, "___")
	if err := os.WriteFile(underscores, []byte("v"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		// before are commands that must succeed first.
		before  [][]string
		args    []string
		code    int
		wantErr []string
		// created are the secrets the agent holds after it all.
		created string
	}{
		"key of underscores": {
			args: []string{"env", "__=x"}, code: exitUsage,
			wantErr: []string{`✗  the key "__" gives no secret name (a name needs a letter or a digit): give one with --name NAME`,
				"Run `hush create secret env --help` for usage."},
		},
		"key of one underscore and no value": {
			args: []string{"env", "_"}, code: exitUsage,
			wantErr: []string{`the key "_" gives no secret name`},
		},
		"key of underscores with --name": {
			args: []string{"env", "__=x", "--name", "odd"}, created: "odd\n",
		},
		"file name of underscores": {
			args: []string{"mounted", underscores}, code: exitUsage,
			wantErr: []string{`the file name "___" gives no secret name`, "--name NAME"},
		},
		"key with a space": {
			args: []string{"env", "FOO BAR=x"}, code: exitUsage,
			wantErr: []string{`environment variable name "FOO BAR" is not valid`, "Run `hush create secret env --help` for usage."},
		},
		"invalid --name": {
			args: []string{"env", "K=v", "--name", "MySecret"}, code: exitUsage,
			wantErr: []string{`secret name "MySecret" is not valid`, "--help"},
		},
		"another spelling of a key": {
			before: [][]string{{"env", "SECRET_STUFF=a"}},
			args:   []string{"env", "Secret_Stuff=b"}, code: exitError, created: "secret-stuff\n",
			wantErr: []string{"✗  Secret secret-stuff already exists (the name comes from the key \"Secret_Stuff\"). " +
				"Secrets cannot be modified: delete it with `hush delete secret secret-stuff` and create it again, " +
				"or give this one another name with --name NAME.\n"},
		},
		"a name given with --name": {
			before: [][]string{{"env", "A=a", "--name", "taken"}},
			args:   []string{"env", "B=b", "--name", "taken"}, code: exitError, created: "taken\n",
			wantErr: []string{"✗  Secret taken already exists. Secrets cannot be modified: " +
				"delete it with `hush delete secret taken` and create it again.\n"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			addr, token := testAgent(t, "c")
			env := map[string]string{"HUSH_ADDR": addr, "HUSH_TOKEN": token}
			for _, b := range tc.before {
				if code, out, errw := hush(t, env, append([]string{"create", "secret"}, b...)...); code != 0 {
					t.Fatalf("%v: got exit %d, stdout %q, stderr %q; want 0", b, code, out, errw)
				}
			}
			code, _, errw := hush(t, env, append([]string{"create", "secret"}, tc.args...)...)
			if code != tc.code {
				t.Errorf("got exit %d, want %d; stderr %q", code, tc.code, errw)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(errw, want) {
					t.Errorf("got stderr %q, want it to hold %q", errw, want)
				}
			}
			if _, out, _ := hush(t, env, "get", "secrets", "-o", "name"); out != tc.created {
				t.Errorf("got secrets %q, want %q", out, tc.created)
			}
		})
	}
}

// TestExistsError checks the refusal of a name that clusters hold, with
// and without a name derived from the argument.
func TestExistsError(t *testing.T) {
	tests := map[string]struct {
		nameFrom string
		on       []string
		want     string
	}{
		"on all, name given": {
			want: "Secret db already exists. Secrets cannot be modified: delete it with `hush delete secret db` and create it again.",
		},
		"on all, name from a key": {
			nameFrom: `the key "DB"`,
			want: `Secret db already exists (the name comes from the key "DB"). Secrets cannot be modified: ` +
				"delete it with `hush delete secret db` and create it again, or give this one another name with --name NAME.",
		},
		"on some, name given": {
			on: []string{"a", "b"},
			want: "Secret db already exists on a, b, so nothing was created. Copy it to the other clusters with `hush sync secrets`, " +
				"or delete it with `hush delete secret db` and create it again.",
		},
		"on some, name from a key": {
			nameFrom: `the key "Db"`, on: []string{"a"},
			want: `Secret db already exists on a, so nothing was created (the name comes from the key "Db"). ` +
				"Copy it to the other clusters with `hush sync secrets`, delete it with `hush delete secret db` and create it again, " +
				"or give this one another name with --name NAME.",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := existsError("db", tc.nameFrom, tc.on).Error(); got != tc.want {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}
