package api

import (
	"slices"
	"strings"
	"testing"
)

// okSpec is a type whose spec holds together.
func okSpec() *TypeSpec {
	return &TypeSpec{
		Type: "throwaway", Label: "throwaway",
		Fields: []FieldSpec{{Name: "login"}, {Name: FieldMountPath}},
		Data:   []DataSpec{{Name: "password"}, {Name: "cert"}},
		Create: CreateSpec{Inputs: []InputSpec{
			{Flag: "login", Target: "login"},
			{Flag: "password", Target: "password"},
			{Flag: "cert-file", Target: "cert", File: true},
		}},
		Inject: InjectSpec{
			Dir:   true,
			Files: []FileSpec{{Name: "cert.pem", Data: "cert"}},
			Env: []EnvSpec{
				{Name: "CERT", From: EnvFilePath, Ref: "cert.pem"},
				{Name: "PASSWORD", From: EnvData, Ref: "password"},
			},
		},
	}
}

func TestRegisterTypeChecksSpec(t *testing.T) {
	tests := map[string]struct {
		change func(s *TypeSpec)
		want   string
	}{
		"taken type":             {func(s *TypeSpec) { s.Type = TypeEnv }, "there is one already"},
		"flag for nothing":       {func(s *TypeSpec) { s.Create.Inputs[0].Target = "nope" }, `flag --login sets "nope"`},
		"file flag for a field":  {func(s *TypeSpec) { s.Create.Inputs[2].Target = "login" }, "flag --cert-file reads a file into \"login\""},
		"flag named from":        {func(s *TypeSpec) { s.Create.Inputs[0].Flag = "from" }, `flag "from"`},
		"key=value without key":  {func(s *TypeSpec) { s.Create.Arg, s.Create.ArgData = ArgKeyValue, "password" }, "KEY=VALUE sets field"},
		"file argument for none": {func(s *TypeSpec) { s.Create.Arg = ArgFile }, "the file argument sets data"},
		"file of nothing":        {func(s *TypeSpec) { s.Inject.Files[0].Data = "nope" }, `file "cert.pem" holds "nope"`},
		"file name with a slash": {func(s *TypeSpec) { s.Inject.Files[0].Name = "a/b" }, `file "a/b"`},
		"two files, no dir": {func(s *TypeSpec) {
			s.Inject.Dir = false
			s.Inject.Files = append(s.Inject.Files, FileSpec{Name: "p", Data: "password"})
		}, "must hold an optional value"},
		"format of no file": {func(s *TypeSpec) {
			s.Inject.Env[0] = EnvSpec{Name: "CERT", From: EnvFormat, Ref: "--cert {cert.pem} --ca {ca.pem}"}
		}, "variable CERT"},
		"when a required value":   {func(s *TypeSpec) { s.Inject.Env[1].When = "password" }, `depends on "password"`},
		"unless nothing":          {func(s *TypeSpec) { s.Inject.Env[1].Unless = "nope" }, `depends on "nope"`},
		"file path outside a dir": {func(s *TypeSpec) { s.Inject.Dir = false }, "variable CERT"},
		"variable of nothing":     {func(s *TypeSpec) { s.Inject.Env[1].Ref = "nope" }, "variable PASSWORD"},
		"variable with two names": {func(s *TypeSpec) { s.Inject.Env[1].NameField = "login" }, "no single name"},
		"registry of nothing": {func(s *TypeSpec) {
			s.Inject.Registry = &RegistrySpec{Server: "server", Username: "login", Password: "password"}
		}, "registry credentials"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := okSpec()
			tc.change(s)
			remove, err := RegisterType(s)
			if err == nil {
				remove()
				t.Fatalf("got no error, want one with %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %q, want it to hold %q", err, tc.want)
			}
			if _, ok := LookupType("throwaway"); ok {
				t.Error("a refused type is registered")
			}
		})
	}
}

func TestRegisterType(t *testing.T) {
	s := okSpec()
	remove, err := RegisterType(s)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := LookupType("throwaway")
	if !ok || got != s || !slices.Contains(TypeNames(), "throwaway") {
		t.Fatalf("got %v %v, want the registered type", got, ok)
	}
	// The password goes into a variable, so it must be able to.
	if !s.Data[0].Env || s.Data[1].Env {
		t.Errorf("got Env %v %v, want true for password and false for cert", s.Data[0].Env, s.Data[1].Env)
	}
	req := &CreateSecretRequest{Name: "t", Type: "throwaway", Fields: map[string]string{"login": "bob"},
		Data: map[string][]byte{"password": []byte("a\x00b"), "cert": []byte("c")}}
	if err := req.Validate(); err == nil || !strings.Contains(err.Error(), "password contains a NUL byte") {
		t.Errorf("got %v, want the NUL byte refused", err)
	}
	remove()
	if _, ok := LookupType("throwaway"); ok {
		t.Error("the type is still there after remove")
	}
}

// The shipped types check out as a registered one would, and the data
// their runs receive in variables are held to what a variable can carry.
func TestBuiltinTypes(t *testing.T) {
	var env []string
	for _, s := range Types() {
		if err := s.check(); err != nil {
			t.Errorf("%s: %v", s.Type, err)
		}
		for _, d := range s.Data {
			if d.Env {
				env = append(env, string(s.Type)+"."+d.Name)
			}
		}
	}
	if want := []string{"env.value", "databricks.token", "hf.token"}; !slices.Equal(env, want) {
		t.Errorf("got env data %v, want %v", env, want)
	}
}
