package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hush-sh/hush/sdk/api"
	"github.com/hush-sh/hush/sdk/userfile"
)

// SecretsFile is a parsed secrets file: the secrets it declares, in file order.
//
// A secrets file declares the secrets `hush apply` makes every cluster hold.
// Each secret has a type, a name, and the type's `hush create secret TYPE`
// flags in snake_case: the non-sensitive fields by their field name (key,
// mount_path, username, server, email, profile, host) and the sensitive
// values by their data name (value, password, token, config, credentials,
// key). A type that holds a single value may take from = "PROVIDER:REF"
// instead, so that the agent asks a provider plugin for the value. An env
// secret's key defaults to its name upper-cased, "-" and "." as "_".
//
// In HCL each secret is a block, secret "TYPE" "NAME" { ... }, and a
// sensitive value is env("VAR"), file("path") or a string. In YAML the
// secrets are the list under the top-level secrets key, each item a mapping
// with type, name and the fields, and a sensitive value D is given as
// D_from_env: VAR, D_from_file: PATH or D: literal. A literal works but
// gives a warning, since anyone who reads the file sees it.
//
// The s3, gcp and oci create commands take their values as files
// (--config-file, --credentials-file, --key-file), so both formats also
// take config_file, credentials_file and key_file: the path of the file that
// holds config, credentials or key, exactly like file("path") and
// D_from_file. Every path is relative to the directory of the secrets file.
//
// A file must declare what it means: YAML's secrets: [] declares that there
// are no secrets, but an empty file, a YAML file without the secrets field
// or an HCL file without secret blocks is an error, so that a wrong or
// truncated file never reads as "none".
type SecretsFile struct {
	Secrets []*DeclaredSecret
}

// DeclaredSecret is one secret of a secrets file.
type DeclaredSecret struct {
	// Pos is where its block or list item starts.
	Pos Pos
	// Request holds Name, Type, Fields, and Data or From; ID and CreatedAt
	// are left empty for the caller.
	Request *api.CreateSecretRequest
}

// ParseSecretsFile reads and parses a secrets file; its extension (.hcl,
// .yaml, .yml) decides the format. env("VAR") and D_from_env read the
// process environment.
func ParseSecretsFile(path string) (*SecretsFile, []Warning, error) {
	src, err := readFile("secrets file", path, MaxSecretsFileSize)
	if err != nil {
		return nil, nil, err
	}
	return ParseSecrets(path, src, os.LookupEnv)
}

// MaxSecretsFileSize is the most bytes a secrets file may hold. Values are
// meant to come from env() and file(), but a file may hold literals, each
// up to api.MaxSecretSize.
const MaxSecretsFileSize = 16 << 20

// ParseSecrets parses src as if read from filename. getenv looks up
// env("VAR") and D_from_env; a nil getenv finds no variable. Files named by
// file("path"), D_file and D_from_file are read relative to the directory
// of filename. A file with problems gives a nil SecretsFile and an *Error
// listing all of them; the warnings found are returned either way. No
// message holds a secret value.
func ParseSecrets(filename string, src []byte, getenv func(string) (string, bool)) (*SecretsFile, []Warning, error) {
	if err := checkExt("secrets file", filename); err != nil {
		return nil, nil, err
	}
	if getenv == nil {
		getenv = func(string) (string, bool) { return "", false }
	}
	p := &secretsParser{
		reporter: reporter{filename: filename, sensitive: true},
		dir:      filepath.Dir(filename),
		getenv:   getenv,
		names:    map[string]Pos{},
		unique:   map[api.SecretType]*secretDecl{},
	}
	if strings.EqualFold(filepath.Ext(filename), ".hcl") {
		p.hcl = true
		p.secretsHCL(src)
	} else {
		p.secretsYAML(src)
	}
	if err := p.err(); err != nil {
		return nil, p.warnings, err
	}
	return &p.file, p.warnings, nil
}

// fileKey is the key that gives data value d of type s as the path of a
// file, like the create command's flag that reads it from a file
// (--config-file is config_file), or "" when the command takes d otherwise.
func fileKey(s *api.TypeSpec, d string) string {
	// A flag named for its value (--known-hosts) gives no key of its own:
	// the value's key, with file("PATH") or D_from_file, takes the file.
	if in := s.FileInput(d); in != nil {
		if key := strings.ReplaceAll(in.Flag, "-", "_"); key != d {
			return key
		}
	}
	return ""
}

// keyKind is how a key of a secret gives what it sets.
type keyKind int

const (
	keyField keyKind = iota // a non-sensitive field, as a string
	keyData                 // a sensitive value written in the file
	keyEnv                  // the name of a variable that holds the value
	keyFile                 // the path of a file that holds the value
	keyFrom                 // a provider reference
)

// secretKey is a key a secret takes and what it sets.
type secretKey struct {
	name   string
	kind   keyKind
	target string // the field or data name; for from, the value it stands for
}

// secretsParser collects the secrets of one file and their problems. The
// format-specific code reads each secret through a secretDecl.
type secretsParser struct {
	reporter
	hcl    bool // which syntax hints in messages show
	dir    string
	getenv func(string) (string, bool)
	file   SecretsFile
	names  map[string]Pos
	unique map[api.SecretType]*secretDecl
}

// secretKeys lists the keys a secret of type s takes, in the order
// messages list them.
func (p *secretsParser) secretKeys(s *api.TypeSpec) []secretKey {
	var keys []secretKey
	for _, f := range s.Fields {
		keys = append(keys, secretKey{f.Name, keyField, f.Name})
	}
	for _, d := range s.Data {
		keys = append(keys, secretKey{d.Name, keyData, d.Name})
		if !p.hcl {
			keys = append(keys, secretKey{d.Name + "_from_env", keyEnv, d.Name}, secretKey{d.Name + "_from_file", keyFile, d.Name})
		}
		if k := fileKey(s, d.Name); k != "" {
			keys = append(keys, secretKey{k, keyFile, d.Name})
		}
	}
	// A single required value may be a provider reference instead, so
	// from and the value conflict. Several values cannot be: key reports
	// from then.
	from := secretKey{"from", keyFrom, "from"}
	if ref, ok := s.RefData(); ok {
		from.target = ref.Name
	}
	return append(keys, from)
}

// valueHint says how to give data value d of a type in this format.
func (p *secretsParser) valueHint(s *api.TypeSpec, d string) string {
	var hint, from string
	switch {
	case p.hcl && fileKey(s, d) != "":
		hint, from = fmt.Sprintf("set %s = \"PATH\" or %s = env(\"VAR\")", fileKey(s, d), d), `from = "PROVIDER:REF"`
	case p.hcl:
		hint, from = fmt.Sprintf("set %s = env(\"VAR\") or file(\"PATH\")", d), `from = "PROVIDER:REF"`
	default:
		hint, from = fmt.Sprintf("set %s_from_env: VAR or %s_from_file: PATH", d, d), "from: PROVIDER:REF"
	}
	if ref, ok := s.RefData(); ok && ref.Name == d {
		hint += ", or " + from
	}
	return hint
}

// dataHint says how to give data value d from a file in this format.
func (p *secretsParser) dataHint(d string) string {
	if p.hcl {
		return fmt.Sprintf("set %s = file(\"PATH\")", d)
	}
	return fmt.Sprintf("set %s_from_file: PATH", d)
}

// secretDecl is the secret being read.
type secretDecl struct {
	p     *secretsParser
	pos   Pos
	label string        // names the secret in messages
	spec  *api.TypeSpec // nil while the type is unknown
	req   api.CreateSecretRequest
	// given records the key that set each field and value, so that a second
	// one is reported and a bad one is not also reported missing.
	given map[string]secretSource
	// hasFrom means from was given, so missing values are not reported too.
	hasFrom bool
	// problems is how many problems the file had when the secret began.
	problems int
}

type secretSource struct {
	key string
	pos Pos
}

// begin starts a secret at pos; label names it until it has a name.
func (p *secretsParser) begin(pos Pos, label string) *secretDecl {
	return &secretDecl{p: p, pos: pos, label: label, given: map[string]secretSource{}, problems: len(p.problems)}
}

func (d *secretDecl) errorf(pos Pos, format string, args ...any) {
	d.p.errorf(pos, "%s: %s", d.label, fmt.Sprintf(format, args...))
}

func (d *secretDecl) setName(pos Pos, name string) {
	d.req.Name, d.label = name, fmt.Sprintf("secret %q", name)
	if err := api.ValidateSecretName(name); err != nil {
		d.p.errorf(pos, "%v", err)
		return
	}
	if first, ok := d.p.names[name]; ok {
		d.errorf(pos, "name is already declared at %s: give each secret its own name", first)
		return
	}
	d.p.names[name] = pos
}

func (d *secretDecl) setType(pos Pos, typ string) {
	spec, ok := api.LookupType(api.SecretType(typ))
	if !ok {
		hint := ""
		if s := suggest(typ, api.TypeNames()); s != "" {
			hint = fmt.Sprintf(" (did you mean %q?)", s)
		}
		d.errorf(pos, "unknown type %q%s: use one of %s", typ, hint, strings.Join(api.TypeNames(), ", "))
		return
	}
	d.spec, d.req.Type = spec, spec.Type
}

// key looks up what the key name sets and claims it. It reports a key the
// type does not take and a value given twice, and returns false for them.
// A secret of unknown type takes nothing, quietly: its type is reported.
func (d *secretDecl) key(pos Pos, name string) (secretKey, bool) {
	if d.spec == nil {
		return secretKey{}, false
	}
	keys := d.p.secretKeys(d.spec)
	i := slices.IndexFunc(keys, func(k secretKey) bool { return k.name == name })
	if i < 0 {
		d.unknownKey(pos, name, keys)
		return secretKey{}, false
	}
	k := keys[i]
	if _, ok := d.spec.RefData(); k.kind == keyFrom && !ok {
		d.hasFrom = true
		d.errorf(pos, "%s secrets hold several values and cannot come from a provider reference: give each value instead", d.spec.Type)
		return k, false
	}
	if first, ok := d.given[k.target]; ok {
		if first.key == name {
			d.errorf(pos, "%s is set twice (also at %s): keep one", name, first.pos)
		} else {
			d.errorf(pos, "%s and %s both give %s (%s at %s): keep one", name, first.key, k.target, first.key, first.pos)
		}
		return k, false
	}
	d.given[k.target] = secretSource{name, pos}
	d.hasFrom = d.hasFrom || k.kind == keyFrom
	return k, true
}

func (d *secretDecl) unknownKey(pos Pos, name string, keys []secretKey) {
	var known []string
	if !d.p.hcl {
		known = []string{"type", "name"}
	}
	for _, k := range keys {
		if _, ok := d.spec.RefData(); k.kind != keyFrom || ok {
			known = append(known, k.name)
		}
	}
	hint := ""
	if s := suggest(name, known); s != "" {
		hint = fmt.Sprintf(" (did you mean %q?)", s)
	}
	d.errorf(pos, "unknown field %q%s; %s secrets take %s", name, hint, d.spec.Type, strings.Join(known, ", "))
}

// set gives k's target the value s, read as kind says; pos is where s is.
// kind differs from k.kind where HCL's env() and file() choose it.
func (d *secretDecl) set(k secretKey, kind keyKind, pos Pos, s string) {
	switch kind {
	case keyField:
		d.setField(pos, k.target, s)
	case keyFrom:
		if s == "" {
			d.errorf(pos, "from is empty: give a provider reference such as vault:secret/data/db#password")
			return
		}
		d.req.From = s
	case keyData:
		how := fmt.Sprintf("%s_from_env or %s_from_file", k.target, k.target)
		if d.p.hcl {
			how = fmt.Sprintf("%s = env(\"VAR\") or file(\"PATH\")", k.target)
		}
		d.p.warnf(pos, "%s: %s is a literal: anyone who reads this file sees it; use %s instead", d.label, k.target, how)
		d.setData(pos, k.target, []byte(s))
	case keyEnv:
		if err := api.ValidateEnvKey(s); err != nil {
			d.errorf(pos, "%s: %v", k.target, err)
			return
		}
		v, ok := d.p.getenv(s)
		if !ok {
			d.errorf(pos, "%s: environment variable %s is not set: set it where hush runs, or give the value another way", k.target, s)
			return
		}
		d.setData(pos, k.target, []byte(v))
	case keyFile:
		d.setFile(pos, k.target, s)
	}
}

func (d *secretDecl) setField(pos Pos, name, v string) {
	if d.req.Fields == nil {
		d.req.Fields = map[string]string{}
	}
	d.req.Fields[name] = v
	f := d.spec.Fields[slices.IndexFunc(d.spec.Fields, func(f api.FieldSpec) bool { return f.Name == name })]
	switch {
	case v == "" && f.Required:
		d.errorf(pos, "%s is empty: %s secrets need one", name, d.spec.Type)
	case v != "" && f.Check != nil:
		if err := f.Check(v); err != nil {
			d.errorf(pos, "%s: %v", name, err)
		}
	}
}

// setData stores a sensitive value and checks it; the type's checks never
// quote the value.
func (d *secretDecl) setData(pos Pos, name string, b []byte) {
	if d.req.Data == nil {
		d.req.Data = map[string][]byte{}
	}
	d.req.Data[name] = b
	spec := d.spec.Data[slices.IndexFunc(d.spec.Data, func(s api.DataSpec) bool { return s.Name == name })]
	if spec.Check != nil {
		if err := spec.Check(b); err != nil {
			d.errorf(pos, "%s: %v", name, err)
		}
	}
}

// setFile reads a value from path, relative to the secrets file, reading
// no more than a secret may hold.
func (d *secretDecl) setFile(pos Pos, name, path string) {
	resolved := path
	if !filepath.IsAbs(path) {
		resolved = filepath.Join(d.p.dir, path)
	}
	fail := func(err error) {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is in the message already
		}
		d.errorf(pos, "%s: read file %q (%s): %v: check the path, which is relative to the secrets file's directory", name, path, resolved, err)
	}
	b, err := userfile.ReadFile(resolved, api.MaxSecretSize)
	var notRegular *userfile.NotRegularError
	var tooLarge *userfile.TooLargeError
	switch {
	case errors.As(err, &notRegular):
		d.errorf(pos, "%s: file %q (%s) is %s, not a regular file: give the path of a file, relative to the secrets file's directory",
			name, path, resolved, userfile.Kind(notRegular.Mode))
		return
	case errors.As(err, &tooLarge):
		d.errorf(pos, "%s: file %q (%s) is %d bytes, more than the %d a secret may hold: keep large files out of secrets, in the image or a volume",
			name, path, resolved, tooLarge.Size, api.MaxSecretSize)
		return
	case err != nil:
		fail(err)
		return
	}
	d.setData(pos, name, b)
}

// end checks what needs the whole secret and adds it to the file.
func (d *secretDecl) end() {
	p := d.p
	if d.spec == nil {
		return
	}
	// The KEY of a KEY=VALUE type, such as an env secret's key, is never
	// missing: it defaults to the name, once the name is valid.
	defaultKey := ""
	if d.spec.Create.Arg == api.ArgKeyValue {
		defaultKey = d.spec.Create.ArgField
	}
	if _, ok := d.given[defaultKey]; !ok && defaultKey != "" && api.ValidateSecretName(d.req.Name) == nil {
		if d.req.Fields == nil {
			d.req.Fields = map[string]string{}
		}
		d.req.Fields[defaultKey] = api.EnvKeyFromName(d.req.Name)
	}
	for _, f := range d.spec.Fields {
		_, ok := d.given[f.Name]
		if f.Required && !ok && f.Name != defaultKey {
			d.errorf(d.pos, "missing %s: %s secrets need it", f.Name, d.spec.Type)
		}
	}
	size := 0
	for _, s := range d.spec.Data {
		size += len(d.req.Data[s.Name])
		_, ok := d.given[s.Name]
		switch {
		case !ok && s.Optional && s.Absent != "":
			d.p.warnf(d.pos, "%s: no %s: %s; %s", d.label, s.Name, s.Absent, p.dataHint(s.Name))
		case !ok && !s.Optional && !d.hasFrom:
			d.errorf(d.pos, "missing %s: %s", s.Name, p.valueHint(d.spec, s.Name))
		}
	}
	if size > api.MaxSecretSize {
		d.errorf(d.pos, "its values come to %d bytes, more than the %d a secret may hold: keep large files out of secrets", size, api.MaxSecretSize)
	}
	if d.spec.UniquePerOwner {
		if first, ok := p.unique[d.spec.Type]; ok {
			d.errorf(d.pos, "a user holds one %s secret, and %s at %s is one already: keep one", d.spec.Type, first.label, first.pos)
		} else {
			p.unique[d.spec.Type] = d
		}
	}
	// The API's own checks catch what is left, such as the form of a
	// provider reference; after other problems they would only repeat them.
	if len(p.problems) == d.problems {
		var joined interface{ Unwrap() []error }
		if err := d.req.Validate(); errors.As(err, &joined) {
			for _, e := range joined.Unwrap() {
				d.errorf(d.pos, "%v", e)
			}
		} else if err != nil {
			d.errorf(d.pos, "%v", err)
		}
	}
	req := d.req
	p.file.Secrets = append(p.file.Secrets, &DeclaredSecret{Pos: d.pos, Request: &req})
}
