package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"slices"
	"strings"
	"unicode"

	"github.com/hush-sh/hush/sdk/userfile"
	"golang.org/x/crypto/ssh"
)

// TypeSpec describes what a secret type holds: its non-sensitive fields, its
// sensitive data, and the rules they follow.
type TypeSpec struct {
	Type SecretType
	// Label is how messages name the type: "environment" for env.
	Label string
	// Fields are the non-sensitive settings, returned in metadata.
	Fields []FieldSpec
	// Data are the sensitive values, which never leave the agent except into
	// a run or to their owner's export.
	Data []DataSpec
	// UniquePerOwner means a user holds at most one secret of this type.
	UniquePerOwner bool
	// Create is how `hush create secret TYPE` and a secrets file take it.
	Create CreateSpec
	// Inject is how a run receives it.
	Inject InjectSpec
}

// FieldSpec is one non-sensitive field of a secret type.
type FieldSpec struct {
	Name     string
	Required bool
	// Check validates a set value; nil accepts any.
	Check func(string) error
}

// DataSpec is one sensitive value of a secret type. Every data value is
// required, unless it is Optional or the secret holds a provider reference
// in its place.
type DataSpec struct {
	Name string
	// Optional values may be left out, even by secrets stored before the
	// type had them; the type's files and variables that need one are
	// left out with it. A secret that holds a provider reference may
	// still hold its optional values.
	Optional bool
	// Absent says what a secret without this optional value does, and
	// why to give one; `hush create secret` and secrets files tell it
	// when the value is left out.
	Absent string
	// Env means that runs receive the value in an environment variable,
	// so it must be something the kernel can pass there: no NUL byte.
	// Registering the type sets it from Inject.
	Env bool
	// Check validates the value; nil accepts any.
	Check func([]byte) error
}

// Field names shared by several types.
const (
	FieldKey       = "key"
	FieldMountPath = "mount_path"
	FieldValue     = "value"
	// FieldKnownHosts is a git-ssh secret's known_hosts file.
	FieldKnownHosts = "known_hosts"
)

// Validate checks a create request against its type's rules and returns
// every problem at once.
func (r *CreateSecretRequest) Validate() error {
	var errs []error
	if err := ValidateSecretName(r.Name); err != nil {
		errs = append(errs, err)
	}
	spec, ok := LookupType(r.Type)
	if !ok {
		errs = append(errs, fmt.Errorf("unknown secret type %q: use one of %s", r.Type, strings.Join(TypeNames(), ", ")))
		return errors.Join(errs...)
	}
	errs = append(errs, spec.validateFields(r.Fields)...)
	if mp := r.Fields[FieldMountPath]; mp != "" && !spec.Inject.Dir {
		// The files beside the one mounted go in its dir, under their
		// own names.
		for _, f := range spec.Inject.Files[min(1, len(spec.Inject.Files)):] {
			if path.Base(mp) == f.Name {
				errs = append(errs, fmt.Errorf("mount path %s ends in %s, the name of the secret's %s file, which goes beside it: give the file another name", mp, f.Name, f.Name))
			}
		}
	}
	if r.From != "" {
		errs = append(errs, spec.validateFrom(r.From, r.Data)...)
	}
	errs = append(errs, spec.validateData(r.Data, r.From != "")...)
	if err := spec.CheckEnvData(r.Name, r.Data); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// CheckEnvData checks the values of secret name that a run receives in
// environment variables (ValidateEnvValue), naming the secret and the
// value in each error.
func (s *TypeSpec) CheckEnvData(name string, data map[string][]byte) error {
	var errs []error
	for _, d := range s.Data {
		if !d.Env {
			continue
		}
		if err := ValidateEnvValue(data[d.Name]); err != nil {
			errs = append(errs, fmt.Errorf("secret %s: %s %w", name, d.Name, err))
		}
	}
	return errors.Join(errs...)
}

// ValidateEnvValue checks a value that a run receives in an environment
// variable. The kernel ends each variable at a NUL byte, so a value holding
// one would be cut short, and what follows it could set other variables.
func ValidateEnvValue(v []byte) error {
	if bytes.IndexByte(v, 0) >= 0 {
		return errors.New("contains a NUL byte, which an environment variable cannot hold (the rest of the value could set other variables): remove it")
	}
	return nil
}

func (s *TypeSpec) validateFields(fields map[string]string) []error {
	var errs []error
	for _, f := range s.Fields {
		v, set := fields[f.Name]
		switch {
		case !set || v == "":
			if f.Required {
				errs = append(errs, fmt.Errorf("%s secret needs %s", s.Type, f.Name))
			}
		case strings.ContainsFunc(v, unicode.IsControl):
			// Fields are one line each: a newline in a docker username
			// would break the registry credentials built from it.
			errs = append(errs, fmt.Errorf("%s: %q has a control character (such as a newline or a tab) in it: give it on one line", f.Name, v))
		case f.Check != nil:
			if err := f.Check(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", f.Name, err))
			}
		}
	}
	for name := range fields {
		if !slices.ContainsFunc(s.Fields, func(f FieldSpec) bool { return f.Name == name }) {
			errs = append(errs, fmt.Errorf("%s secret has no field %q", s.Type, name))
		}
	}
	return errs
}

// validateData checks the data values of a secret; fromRef means that it
// holds a provider reference, in place of its one required value.
func (s *TypeSpec) validateData(data map[string][]byte, fromRef bool) []error {
	var errs []error
	size := 0
	for _, d := range s.Data {
		v, set := data[d.Name]
		if !set {
			if !d.Optional && !fromRef {
				errs = append(errs, fmt.Errorf("%s secret needs a %s", s.Type, d.Name))
			}
			continue
		}
		size += len(v)
		if d.Check != nil {
			if err := d.Check(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", d.Name, err))
			}
		}
	}
	for name, v := range data {
		if !slices.ContainsFunc(s.Data, func(d DataSpec) bool { return d.Name == name }) {
			errs = append(errs, fmt.Errorf("%s secret has no data %q", s.Type, name))
			size += len(v)
		}
	}
	if size > MaxSecretSize {
		errs = append(errs, &SizeError{Size: size})
	}
	return errs
}

func (s *TypeSpec) validateFrom(from string, data map[string][]byte) []error {
	var errs []error
	ref, ok := s.RefData()
	if !ok {
		errs = append(errs, fmt.Errorf("%s secrets hold several values and cannot come from a provider reference", s.Type))
	} else if _, set := data[ref.Name]; set {
		errs = append(errs, errors.New("a secret holds either a value or a provider reference (from), not both"))
	}
	if !isReference(from) {
		errs = append(errs, fmt.Errorf("provider reference %q is not valid: write it as PROVIDER:REF, for example vault:secret/data/db#password", from))
	}
	return errs
}

// RefData returns the data value that a provider reference stands for: a
// type's one required value. It returns false for a type with several,
// which cannot come from a provider.
func (s *TypeSpec) RefData() (DataSpec, bool) {
	var ref DataSpec
	n := 0
	for _, d := range s.Data {
		if !d.Optional {
			ref, n = d, n+1
		}
	}
	return ref, n == 1
}

// SizeError reports a secret whose data is over MaxSecretSize.
type SizeError struct{ Size int }

func (e *SizeError) Error() string {
	return fmt.Sprintf("secret data is %s; the limit is %s", userfile.FormatSize(int64(e.Size)), userfile.FormatSize(MaxSecretSize))
}

// ValidateSecretName checks a secret name: lowercase letters, digits, "."
// and "-", alphanumeric first and last, at most 253 characters.
func ValidateSecretName(name string) error {
	if name == "" {
		return errors.New("secret name is empty")
	}
	if !IsName(name, 253, ".-") {
		return fmt.Errorf("secret name %q is not valid: use lowercase letters, digits, '.' and '-', start and end with a letter or digit, at most 253 characters", name)
	}
	return nil
}

// ValidateUserName checks a user name: lowercase letters, digits, ".", "_"
// and "-", alphanumeric first and last, at most 64 characters.
func ValidateUserName(name string) error {
	if !IsName(name, 64, "._-") {
		return fmt.Errorf("user name %q is not valid: use lowercase letters, digits, '.', '_' and '-', start and end with a letter or digit, at most 64 characters", name)
	}
	return nil
}

// ValidateEnvKey checks an environment variable name.
func ValidateEnvKey(key string) error {
	if !isEnvKey(key) {
		return fmt.Errorf("environment variable name %q is not valid: use letters, digits and '_', not starting with a digit", key)
	}
	return nil
}

// ValidateMountPath checks where a secret file goes in a run: an absolute,
// clean path that is not the root.
func ValidateMountPath(p string) error {
	switch {
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("mount path %q is not absolute: start it with '/'", p)
	case p == "/" || path.Clean(p) != p:
		return fmt.Errorf("mount path %q is not valid: give a clean absolute path below '/', such as /secrets/key", p)
	}
	return nil
}

// NameFromEnvKey derives a secret name from an environment variable name:
// lowercased, with "_" as "-" and leading and trailing ones dropped
// (SECRET_STUFF becomes secret-stuff, and so do secret_stuff and
// _Secret_Stuff). It returns "" for a key with no letter or digit, such as
// "__": the caller must then ask for a name rather than make one up.
func NameFromEnvKey(key string) string {
	return SanitizeName(key)
}

// EnvKeyFromName derives an environment variable name from a secret name:
// uppercased, with "-" and "." as "_" (secret-stuff becomes SECRET_STUFF).
func EnvKeyFromName(name string) string {
	return strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(name))
}

// SanitizeName turns any string, such as a file name, into a valid secret
// name where it can: lowercased, characters outside [a-z0-9.-] as "-", and
// leading and trailing punctuation dropped. It may return "" when nothing
// usable is left.
func SanitizeName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '-':
			b.WriteRune(r)
		default:
			b.WriteRune('-')
		}
	}
	name := strings.Trim(b.String(), ".-")
	if len(name) > 253 {
		name = strings.TrimRight(name[:253], ".-")
	}
	return name
}

func checkPrivateKey(b []byte) error {
	if !strings.Contains(string(b), "PRIVATE KEY-----") {
		return errors.New("this does not look like a private key (no PEM or OpenSSH 'PRIVATE KEY' block): give the private key file, not the .pub")
	}
	return nil
}

// checkKnownHosts checks that each line of a known_hosts file is one that
// ssh reads, and that it holds a host key. Its errors give line numbers,
// never the lines.
func checkKnownHosts(b []byte) error {
	var bad []string
	keys := 0
	for i, line := range strings.Split(string(b), "\n") {
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		// A comment after the key may have several words, which OpenSSH
		// takes and the parser does not: it is left out.
		fields := strings.Fields(line)
		n := 3 // hosts, key type, key
		if len(fields) > 0 && strings.HasPrefix(fields[0], "@") {
			n++ // a marker, such as @cert-authority
		}
		if len(fields) > n {
			line = strings.Join(fields[:n], " ")
		}
		_, _, _, _, _, err := ssh.ParseKnownHosts([]byte(line))
		switch {
		case err == io.EOF:
			// ssh passes over a line of one word; it is a mistake all the same.
			bad = append(bad, fmt.Sprintf("line %d (no host key on it)", i+1))
		case err != nil:
			// The parser's message may quote the line's words.
			bad = append(bad, fmt.Sprintf("line %d (not hosts, a key type and a key)", i+1))
		default:
			keys++
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("not a known_hosts file: %s: give a file of lines such as `github.com ssh-ed25519 AAAA...`, as `ssh-keyscan HOST` prints them",
			strings.Join(bad, "; "))
	}
	if keys == 0 {
		return errors.New("the known_hosts file holds no host keys, so ssh would refuse every host: add them, such as with `ssh-keyscan github.com >> known_hosts`, and check their fingerprints")
	}
	return nil
}

func checkJSON(b []byte) error {
	if !json.Valid(b) {
		return errors.New("not valid JSON: give the service account key file that GCP gave you")
	}
	return nil
}

func checkHFToken(b []byte) error {
	if !strings.HasPrefix(string(b), "hf_") {
		return errors.New("a Hugging Face token starts with 'hf_': copy it from https://huggingface.co/settings/tokens")
	}
	return nil
}

func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not a URL: give it as https://HOST", s)
	}
	return nil
}

func checkRegistry(s string) error {
	if strings.ContainsAny(s, " \t\n") {
		return fmt.Errorf("registry server %q contains white space", s)
	}
	return nil
}

func checkProfile(s string) error {
	if !isProfile(s) {
		return fmt.Errorf("AWS profile %q is not valid: use letters, digits, '.', '_' and '-'", s)
	}
	return nil
}
