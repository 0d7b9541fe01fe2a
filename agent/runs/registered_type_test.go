package runs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
	"github.com/hush-sh/hush/sdk/spec"
)

// throwawayTypes are secret types that exist only in this test: one whose
// files are mounted as a directory, one mounted as a single file.
func throwawayTypes() []*api.TypeSpec {
	mountPath := api.FieldSpec{Name: api.FieldMountPath, Check: api.ValidateMountPath}
	return []*api.TypeSpec{{
		Type: "throwaway", Label: "throwaway",
		Fields: []api.FieldSpec{{Name: "login", Required: true}, {Name: "region"}, mountPath},
		Data:   []api.DataSpec{{Name: "password"}, {Name: "cert"}},
		Create: api.CreateSpec{Usage: "a throwaway login", Inputs: []api.InputSpec{
			{Flag: "login", Target: "login", Required: true},
			{Flag: "password", Target: "password", Required: true},
			{Flag: "cert-file", Target: "cert", File: true, Required: true},
			{Flag: "region", Target: "region"},
			{Flag: "mount-path", Target: api.FieldMountPath},
		}},
		Inject: api.InjectSpec{
			Dir:   true,
			Files: []api.FileSpec{{Name: "netrc", Data: "password", Mode: 0o440}, {Name: "cert.pem", Data: "cert"}},
			Env: []api.EnvSpec{
				{Name: "THROW_DIR", From: api.EnvPath},
				{Name: "THROW_CERT", From: api.EnvFilePath, Ref: "cert.pem"},
				{Name: "THROW_LOGIN", From: api.EnvField, Ref: "login"},
				{Name: "THROW_REGION", From: api.EnvField, Ref: "region"},
				{Name: "THROW_PASSWORD", From: api.EnvData, Ref: "password"},
			},
		},
	}, {
		Type: "throwaway-file", Label: "throwaway file",
		Fields: []api.FieldSpec{mountPath},
		Data:   []api.DataSpec{{Name: api.FieldValue}},
		Create: api.CreateSpec{Usage: "a throwaway file", ArgsUsage: "FILE", Arg: api.ArgFile, ArgData: api.FieldValue,
			Inputs: []api.InputSpec{{Flag: "mount-path", Target: api.FieldMountPath}}},
		Inject: api.InjectSpec{
			Files: []api.FileSpec{{Name: "tok", Data: api.FieldValue}},
			Env:   []api.EnvSpec{{Name: "THROW_FILE", From: api.EnvPath, Prefix: "file:"}},
		},
	}}
}

func registerThrowaway(t *testing.T) {
	t.Helper()
	for _, s := range throwawayTypes() {
		remove, err := api.RegisterType(s)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(remove)
	}
}

// A type declared only in the table is parsed from a secrets file, stored
// and injected into a real run, with no other change.
func TestRegisteredTypeInjected(t *testing.T) {
	registerThrowaway(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cert"), []byte("cert-value"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := `
secret "throwaway" "t" {
  login     = "bob"
  password  = env("THROW_PW")
  cert_file = "cert"
}
secret "throwaway-file" "f" {
  value = file("cert")
}
`
	getenv := func(k string) (string, bool) { return "pw-value", k == "THROW_PW" }
	file, warnings, err := spec.ParseSecrets(filepath.Join(dir, "secrets.hcl"), []byte(src), getenv)
	if err != nil || len(warnings) > 0 {
		t.Fatalf("parse: got %v %v, want no error or warning", err, warnings)
	}
	h := newHarness(t)
	for _, d := range file.Secrets {
		r := d.Request
		h.secret(&store.Secret{Name: r.Name, Type: r.Type, Fields: r.Fields, Data: r.Data})
	}
	script := `
echo "dir=$([ "$THROW_DIR" = "$SECRET_PATH_T" ] && echo same) $(stat -c %a $THROW_DIR)"
echo "netrc=$(cat $THROW_DIR/netrc) $(stat -c %a $THROW_DIR/netrc)"
echo "cert=$(cat $THROW_CERT) $(stat -c %a $THROW_CERT) $([ "$THROW_CERT" = "$THROW_DIR/cert.pem" ] && echo inside)"
echo "login=$THROW_LOGIN password=$THROW_PASSWORD region=${THROW_REGION-unset}"
echo "file=$(cat $SECRET_PATH_F) $THROW_FILE" | sed "s#$SECRET_PATH_F#PATH#"
`
	run, out := h.finish(h.submit("throwaway", script))
	want := `dir=same 700
netrc=pw-value 440
cert=cert-value 400 inside
login=bob password=pw-value region=unset
file=cert-value file:PATH
`
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	if run.Status != api.RunCompleted {
		t.Errorf("got %s: %s", run.Status, run.Error)
	}
	if hits := grep(t, h.dataDir, "pw-value"); len(hits) > 0 {
		t.Errorf("the secret value is in plaintext in %v", hits)
	}

	// A data value that goes into a variable is held to what a variable
	// can carry, although the type never said so itself.
	h.secret(&store.Secret{Name: "nul", Type: "throwaway", Fields: map[string]string{"login": "x"},
		Data: map[string][]byte{"password": []byte("a\x00B=1"), "cert": []byte("c")}})
	run, _ = h.finish(h.submit("nul", "true", func(r *api.CreateRunRequest) { r.Secrets = []string{"nul"} }))
	if want := "secret nul: password contains a NUL byte"; run.Status != api.RunFailed || !strings.Contains(run.Error, want) {
		t.Errorf("got %s %q, want FAILED with %q", run.Status, run.Error, want)
	}
}
