package api

import (
	"errors"
	"strings"
	"testing"
)

func TestNameFromEnvKey(t *testing.T) {
	tests := map[string]string{
		"SECRET_STUFF": "secret-stuff",
		"_PRIVATE_":    "private",
		"a__b":         "a--b",
		"X1":           "x1",
		// Keys that differ only in case meet at one name.
		"secret_stuff": "secret-stuff",
		"Secret_Stuff": "secret-stuff",
		// No letter or digit: no name, for the caller to ask for one.
		"__": "",
		"_":  "",
	}
	for key, want := range tests {
		if got := NameFromEnvKey(key); got != want {
			t.Errorf("NameFromEnvKey(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestSanitizeName(t *testing.T) {
	tests := map[string]string{
		"my_id_rsa":              "my-id-rsa",
		"Key File.JSON":          "key-file.json",
		".hidden":                "hidden",
		"___":                    "",
		strings.Repeat("a", 300): strings.Repeat("a", 253),
	}
	for in, want := range tests {
		got := SanitizeName(in)
		if got != want {
			t.Errorf("SanitizeName(%q) = %q, want %q", in, got, want)
		}
		if got != "" && ValidateSecretName(got) != nil {
			t.Errorf("SanitizeName(%q) = %q, which is not a valid name", in, got)
		}
	}
}

func TestEnvKeyFromName(t *testing.T) {
	if got := EnvKeyFromName("secret-stuff.v2"); got != "SECRET_STUFF_V2" {
		t.Errorf("got %q, want SECRET_STUFF_V2", got)
	}
}

func TestValidateSecretName(t *testing.T) {
	good := []string{"a", "secret-stuff", "a.b-c", "0", strings.Repeat("x", 253)}
	bad := []string{"", "A", "-a", "a-", ".a", "a.", "a_b", "a b", "ü", strings.Repeat("x", 254)}
	for _, n := range good {
		if err := ValidateSecretName(n); err != nil {
			t.Errorf("ValidateSecretName(%q) = %v, want nil", n, err)
		}
	}
	for _, n := range bad {
		if err := ValidateSecretName(n); err == nil {
			t.Errorf("ValidateSecretName(%q) = nil, want an error", n)
		}
	}
}

func TestValidateEnvKey(t *testing.T) {
	for _, k := range []string{"A", "_a", "SECRET_STUFF", "x9"} {
		if err := ValidateEnvKey(k); err != nil {
			t.Errorf("ValidateEnvKey(%q) = %v, want nil", k, err)
		}
	}
	for _, k := range []string{"", "9A", "A-B", "A B", "A=B"} {
		if err := ValidateEnvKey(k); err == nil {
			t.Errorf("ValidateEnvKey(%q) = nil, want an error", k)
		}
	}
}

const testKey = "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n"

// testKnownHosts is a known_hosts line, as `ssh-keyscan github.com` prints it.
const testKnownHosts = "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"

func TestCheckKnownHosts(t *testing.T) {
	tests := map[string]struct {
		in   string
		want []string // in the error; none for valid
	}{
		"one host":         {in: testKnownHosts},
		"comments, blanks": {in: "# pinned\n\n" + testKnownHosts + "\n"},
		"hashed and marked": {in: "|1|F1E1KeoE/eEWhi10WpGv4OdiO6Y=|3988QV0VE8wmZL7suNrYQLITLCg= " + testKnownHosts[len("github.com "):] +
			"@cert-authority *.example.com " + testKnownHosts[len("github.com "):]},
		"no line break at the end": {in: strings.TrimSuffix(testKnownHosts, "\n")},
		"a comment of words":       {in: strings.TrimSuffix(testKnownHosts, "\n") + " my laptop, 2026\n"},
		"every bad line": {in: "github.com\n" + testKnownHosts + "github.com ssh-ed25519 AAAA!!\n",
			want: []string{"not a known_hosts file: line 1 (", "; line 3 (", "as `ssh-keyscan HOST` prints them"}},
		"a public key alone": {in: testKnownHosts[len("github.com "):], want: []string{"line 1 ("}},
		"empty":              {in: "", want: []string{"holds no host keys"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := checkKnownHosts([]byte(tc.in))
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("got no error, want one holding %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to hold %q", err, w)
				}
			}
		})
	}
}

func TestCreateSecretRequestValidate(t *testing.T) {
	tests := map[string]struct {
		req  CreateSecretRequest
		want string // "" for valid
	}{
		"env": {
			req: CreateSecretRequest{Name: "a", Type: TypeEnv, Fields: map[string]string{"key": "A"}, Data: map[string][]byte{"value": []byte("v")}},
		},
		"env from provider": {
			req: CreateSecretRequest{Name: "a", Type: TypeEnv, Fields: map[string]string{"key": "A"}, From: "vault:secret/data/db#pw"},
		},
		"env without key": {
			req:  CreateSecretRequest{Name: "a", Type: TypeEnv, Data: map[string][]byte{"value": []byte("v")}},
			want: "env secret needs key",
		},
		"env without value": {
			req:  CreateSecretRequest{Name: "a", Type: TypeEnv, Fields: map[string]string{"key": "A"}},
			want: "env secret needs a value",
		},
		"unknown type": {
			req:  CreateSecretRequest{Name: "a", Type: "magic"},
			want: `unknown secret type "magic"`,
		},
		"relative mount path": {
			req:  CreateSecretRequest{Name: "a", Type: TypeMounted, Fields: map[string]string{"mount_path": "x/y"}, Data: map[string][]byte{"value": []byte("v")}},
			want: "mount path \"x/y\" is not absolute",
		},
		"public key as ssh key": {
			req:  CreateSecretRequest{Name: "a", Type: TypeSSH, Data: map[string][]byte{"value": []byte("ssh-ed25519 AAAA")}},
			want: "does not look like a private key",
		},
		"ssh key": {
			req: CreateSecretRequest{Name: "a", Type: TypeGitSSH, Data: map[string][]byte{"value": []byte(testKey)}},
		},
		"git-ssh key mounted where its known_hosts goes": {
			req:  CreateSecretRequest{Name: "a", Type: TypeGitSSH, Fields: map[string]string{"mount_path": "/root/.ssh/known_hosts"}, Data: map[string][]byte{"value": []byte(testKey)}},
			want: "mount path /root/.ssh/known_hosts ends in known_hosts",
		},
		"ssh key with known_hosts": {
			req: CreateSecretRequest{Name: "a", Type: TypeGitSSH, Data: map[string][]byte{"value": []byte(testKey), "known_hosts": []byte(testKnownHosts)}},
		},
		"known_hosts with a bad line": {
			req: CreateSecretRequest{Name: "a", Type: TypeGitSSH, Data: map[string][]byte{"value": []byte(testKey),
				"known_hosts": []byte(testKnownHosts + "github.com ssh-ed25519 not-base64!\n# fine\nnot a host key line\n")}},
			want: "known_hosts: not a known_hosts file: line 2 (",
		},
		"known_hosts of comments only": {
			req:  CreateSecretRequest{Name: "a", Type: TypeGitSSH, Data: map[string][]byte{"value": []byte(testKey), "known_hosts": []byte("# none\n\n")}},
			want: "known_hosts: the known_hosts file holds no host keys",
		},
		"ssh key from provider with known_hosts": {
			req: CreateSecretRequest{Name: "a", Type: TypeGitSSH, From: "vault:x", Data: map[string][]byte{"known_hosts": []byte(testKnownHosts)}},
		},
		"ssh key from provider and as a value": {
			req:  CreateSecretRequest{Name: "a", Type: TypeGitSSH, From: "vault:x", Data: map[string][]byte{"value": []byte(testKey)}},
			want: "either a value or a provider reference",
		},
		"hf without prefix": {
			req:  CreateSecretRequest{Name: "a", Type: TypeHF, Data: map[string][]byte{"token": []byte("abc")}},
			want: "starts with 'hf_'",
		},
		"gcp not json": {
			req:  CreateSecretRequest{Name: "a", Type: TypeGCP, Data: map[string][]byte{"credentials": []byte("{")}},
			want: "not valid JSON",
		},
		"databricks bad host": {
			req:  CreateSecretRequest{Name: "a", Type: TypeDatabricks, Fields: map[string]string{"host": "example.com"}, Data: map[string][]byte{"token": []byte("t")}},
			want: "is not a URL",
		},
		"env value with a NUL byte": {
			req:  CreateSecretRequest{Name: "a", Type: TypeEnv, Fields: map[string]string{"key": "A"}, Data: map[string][]byte{"value": []byte("a\x00INJECTED=1")}},
			want: "secret a: value contains a NUL byte",
		},
		"databricks token with a NUL byte": {
			req:  CreateSecretRequest{Name: "d", Type: TypeDatabricks, Fields: map[string]string{"host": "https://x"}, Data: map[string][]byte{"token": []byte("t\x00X=1")}},
			want: "secret d: token contains a NUL byte",
		},
		"mounted file with a NUL byte": {
			req: CreateSecretRequest{Name: "m", Type: TypeMounted, Data: map[string][]byte{"value": []byte("binary\x00file")}},
		},
		"field with a NUL byte": {
			req:  CreateSecretRequest{Name: "m", Type: TypeMounted, Fields: map[string]string{"mount_path": "/a\x00b"}, Data: map[string][]byte{"value": []byte("v")}},
			want: `mount_path: "/a\x00b" has a control character`,
		},
		"docker missing fields": {
			req:  CreateSecretRequest{Name: "a", Type: TypeDocker, Data: map[string][]byte{"password": []byte("p")}},
			want: "docker secret needs username\ndocker secret needs server",
		},
		"docker username with a newline": {
			req: CreateSecretRequest{Name: "a", Type: TypeDocker, Fields: map[string]string{"username": "al\nice", "server": "ghcr.io"},
				Data: map[string][]byte{"password": []byte("p")}},
			want: `username: "al\nice" has a control character (such as a newline or a tab) in it: give it on one line`,
		},
		"docker server with a carriage return": {
			req: CreateSecretRequest{Name: "a", Type: TypeDocker, Fields: map[string]string{"username": "u", "server": "ghcr.io\r"},
				Data: map[string][]byte{"password": []byte("p")}},
			want: `server: "ghcr.io\r" has a control character`,
		},
		"docker email with a NUL": {
			req: CreateSecretRequest{Name: "a", Type: TypeDocker, Fields: map[string]string{"username": "u", "server": "ghcr.io", "email": "a@b\x00"},
				Data: map[string][]byte{"password": []byte("p")}},
			want: `email: "a@b\x00" has a control character`,
		},
		"docker": {
			req: CreateSecretRequest{Name: "a", Type: TypeDocker, Fields: map[string]string{"username": "u", "server": "ghcr.io", "email": "a@b.c"},
				Data: map[string][]byte{"password": []byte("p")}},
		},
		"s3 from provider": {
			req:  CreateSecretRequest{Name: "a", Type: TypeS3, From: "vault:x"},
			want: "hold several values and cannot come from a provider reference",
		},
		"value and reference": {
			req:  CreateSecretRequest{Name: "a", Type: TypeHF, From: "vault:x", Data: map[string][]byte{"token": []byte("hf_x")}},
			want: "either a value or a provider reference",
		},
		"bad reference": {
			req:  CreateSecretRequest{Name: "a", Type: TypeHF, From: "nocolon"},
			want: "write it as PROVIDER:REF",
		},
		"unknown field": {
			req:  CreateSecretRequest{Name: "a", Type: TypeHF, Fields: map[string]string{"colour": "red"}, Data: map[string][]byte{"token": []byte("hf_x")}},
			want: `hf secret has no field "colour"`,
		},
		"bad name and key at once": {
			req:  CreateSecretRequest{Name: "Bad", Type: TypeEnv, Fields: map[string]string{"key": "1X"}, Data: map[string][]byte{"value": []byte("v")}},
			want: "secret name \"Bad\" is not valid",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.req.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestSizeLimit(t *testing.T) {
	req := CreateSecretRequest{Name: "big", Type: TypeMounted, Data: map[string][]byte{"value": make([]byte, MaxSecretSize+1)}}
	var size *SizeError
	if err := req.Validate(); !errors.As(err, &size) {
		t.Fatalf("got %v, want a SizeError", err)
	}
	req.Data["value"] = make([]byte, MaxSecretSize)
	if err := req.Validate(); err != nil {
		t.Fatalf("exactly the limit: got %v, want no error", err)
	}
}

func TestErrorIs(t *testing.T) {
	// From an agent that sends no code, the status decides; a 409 is a
	// conflict, not necessarily an existing secret.
	tests := map[int]error{401: ErrUnauthorized, 403: ErrForbidden, 404: ErrNotFound, 409: ErrConflict, 413: ErrTooLarge, 400: ErrInvalid, 503: ErrUnavailable}
	for code, want := range tests {
		if err := error(&Error{StatusCode: code}); !errors.Is(err, want) {
			t.Errorf("status %d does not match %v", code, want)
		}
	}
	// With a code, its kind decides.
	byCode := map[string]struct{ is, isNot error }{
		CodeSecretExists:     {ErrExists, ErrConflict},
		CodeUniqueType:       {ErrExists, ErrConflict},
		CodeRunEnded:         {ErrConflict, ErrExists},
		CodeNoImages:         {ErrConflict, ErrExists},
		CodeSecretDeleted:    {ErrConflict, ErrExists},
		CodeSecretUnreadable: {ErrInternal, ErrNotFound},
		CodeImmutable:        {ErrInvalid, ErrConflict},
	}
	for code, tc := range byCode {
		err := error(&Error{StatusCode: 409, Code: code})
		if !errors.Is(err, tc.is) || errors.Is(err, tc.isNot) {
			t.Errorf("code %s: matches %v %v, %v %v; want only the first", code, tc.is, errors.Is(err, tc.is), tc.isNot, errors.Is(err, tc.isNot))
		}
	}
	if err := error(&Error{StatusCode: 404, Code: "from_a_newer_agent"}); !errors.Is(err, ErrNotFound) {
		t.Error("an unknown code does not fall back to the status")
	}
}

// TestEveryCodeHasAKind: a code without a kind would match no sentinel.
func TestEveryCodeHasAKind(t *testing.T) {
	for _, code := range []string{CodeUnauthenticated, CodeForbidden, CodeNotFound, CodeExists, CodeConflict, CodeInvalid,
		CodeTooLarge, CodeUnavailable, CodeInternal, CodeSecretExists, CodeUniqueType, CodeSecretDeleted, CodeIDMismatch,
		CodeRunEnded, CodeNoImages, CodeImmutable, CodeSecretUnreadable} {
		if KindOf(code) == nil {
			t.Errorf("code %s has no kind", code)
		}
	}
}

func TestFormatMemory(t *testing.T) {
	tests := map[string]struct {
		n    int64
		want string
	}{
		"bytes":     {n: 512, want: "512B"},
		"mebibytes": {n: 512 << 20, want: "512MiB"},
		"gibibytes": {n: 28 << 30, want: "28GiB"},
		"a half":    {n: 3 << 29, want: "1.5GiB"},
		"rounded":   {n: 31_270_000_000, want: "29.1GiB"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := FormatMemory(tc.n); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
