package spec

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hush-sh/hush/sdk/api"
)

// registerThrowaway adds a type that exists only in this test, whose
// create command takes a key like env's and a value from a file flag.
func registerThrowaway(t *testing.T) {
	t.Helper()
	remove, err := api.RegisterType(&api.TypeSpec{
		Type: "throwaway", Label: "throwaway",
		Fields: []api.FieldSpec{{Name: "var", Required: true, Check: api.ValidateEnvKey}},
		Data:   []api.DataSpec{{Name: "secret"}, {Name: "cert"}},
		Create: api.CreateSpec{Arg: api.ArgKeyValue, ArgField: "var", ArgData: "secret", Inputs: []api.InputSpec{
			{Flag: "pem-file", Target: "cert", File: true, Required: true},
		}},
		Inject: api.InjectSpec{Env: []api.EnvSpec{{NameField: "var", From: api.EnvData, Ref: "secret"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(remove)
}

// A type declared only in the table takes its keys in both formats, its
// file flag as a key, and its KEY=VALUE field defaulted from the name.
func TestParseSecretsRegisteredType(t *testing.T) {
	registerThrowaway(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cert"), []byte("cert-value"), 0o600); err != nil {
		t.Fatal(err)
	}
	want := []*api.CreateSecretRequest{{Name: "my-thing", Type: "throwaway",
		Fields: map[string]string{"var": "MY_THING"},
		Data:   map[string][]byte{"secret": []byte("stuff"), "cert": []byte("cert-value")}}}
	tests := map[string]struct {
		file, src string
		want      []string // problems; none means want above
	}{
		"hcl": {file: "s.hcl", src: `secret "throwaway" "my-thing" {
  secret   = env("SECRET_STUFF")
  pem_file = "cert"
}
`},
		"yaml": {file: "s.yaml", src: `secrets:
  - type: throwaway
    name: my-thing
    secret_from_env: SECRET_STUFF
    cert_from_file: cert
`},
		"hcl missing and unknown": {file: "s.hcl", src: `secret "throwaway" "my-thing" {
  cert_file = "cert"
}
`, want: []string{
			`s.hcl:1:1: secret "my-thing": missing secret: set secret = env("VAR") or file("PATH")`,
			`s.hcl:1:1: secret "my-thing": missing cert: set pem_file = "PATH" or cert = env("VAR")`,
			`s.hcl:2:3: secret "my-thing": unknown field "cert_file"; throwaway secrets take var, secret, cert, pem_file`,
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, tc.file)
			f, warnings, err := ParseSecrets(path, []byte(tc.src), lookup(testEnv))
			if len(warnings) > 0 {
				t.Errorf("got warnings %v, want none", warnings)
			}
			if tc.want == nil {
				if err != nil {
					t.Fatalf("got error %v, want none", err)
				}
				if got := requests(f); !reflect.DeepEqual(got, want) {
					t.Errorf("got %+v, want %+v", got, want)
				}
				return
			}
			if err == nil {
				t.Fatal("got no error, want problems")
			}
			got := strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), "")
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("got:\n%s\nwant it to hold:\n%s", got, w)
				}
			}
		})
	}
}
