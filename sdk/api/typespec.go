package api

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// A secret type is declared once, as a TypeSpec: what it holds (Fields,
// Data), how `hush create secret TYPE` takes it (Create), and how a run
// receives it (Inject). The CLI's create commands, the secrets-file parser,
// the agent's validation and its run injector all read the same entry, so a
// new type is one more entry in the table.

// CreateSpec is how `hush create secret TYPE` takes a secret of a type.
// A secrets file takes the same inputs: its keys are the field and data
// names, and a data value that the command reads from a file flag is also
// taken as that flag's name in snake_case (config_file).
type CreateSpec struct {
	// Usage completes "create ...", as in "create an environment variable".
	Usage string
	// Arg is what the command takes as its positional argument.
	Arg ArgKind
	// ArgsUsage names the positional argument in help, such as KEY=VALUE.
	ArgsUsage string
	// ArgField is the field that KEY sets, for ArgKeyValue.
	ArgField string
	// ArgData is the data value that the argument gives: VALUE for
	// ArgKeyValue, the file's contents for ArgFile.
	ArgData string
	// Inputs are the command's flags besides --name and --from, in the
	// order help lists them.
	Inputs []InputSpec
}

// ArgKind is what a create command takes as its positional argument.
type ArgKind int

// The positional argument kinds.
const (
	// ArgNone takes no argument: every value is a flag.
	ArgNone ArgKind = iota
	// ArgKeyValue takes KEY=VALUE (KEY=- reads VALUE from stdin; a bare KEY
	// prompts for it on a terminal). The secret's name derives from KEY
	// (SECRET_STUFF becomes secret-stuff); in a secrets file, where the name
	// is given, KEY defaults to the name (secret-stuff gives SECRET_STUFF).
	ArgKeyValue
	// ArgFile takes a file, or - for stdin, whose contents are the value.
	// The secret's name derives from the file's name.
	ArgFile
)

// InputSpec is one flag of a create command, which sets a field or a data
// value. A data value given on the command line may be - to read stdin, and
// is prompted for on a terminal when it is left out.
type InputSpec struct {
	// Flag is the flag's name, without dashes.
	Flag string
	// Usage is the flag's help; a word in backquotes names its value.
	Usage string
	// Target is the field or data name the flag sets.
	Target string
	// File means that the flag names a file holding the data value.
	File bool
	// Required inputs must be given; a data value may instead come from
	// --from, or be prompted for on a terminal.
	Required bool
}

// InjectSpec is how a run receives a secret of a type: files on the run's
// tmpfs, mounted into the run; environment variables; registry credentials.
type InjectSpec struct {
	// Files are written to a directory of the secret's own on the run's
	// tmpfs. When there are any, the run also gets SECRET_PATH_<NAME>,
	// the path where it sees the secret (its file, or its directory), and
	// the type should have a mount_path field to let its owner choose it.
	Files []FileSpec
	// Dir mounts the secret's directory, at mount_path or /secrets/NAME.
	// Otherwise the type has one file, mounted alone at mount_path or
	// /secrets/NAME/FILE, and the file takes the mount path's name; any
	// further files hold optional values and go beside it, each under its
	// own name, as a known_hosts file beside an SSH key.
	Dir bool
	// Env are the variables the run gets, in order.
	Env []EnvSpec
	// Registry makes the secret credentials for pulling images.
	Registry *RegistrySpec
}

// FileSpec is one file of a secret on the run's tmpfs.
type FileSpec struct {
	// Name is the file's name in the secret's directory; for a type mounted
	// as one file, the name it takes when there is no mount path.
	Name string
	// Data is the data value the file holds. A file of an optional value
	// that the secret does not hold is left out.
	Data string
	// Mode is the file's permissions; zero means 0400.
	Mode fs.FileMode
}

// DefaultFileMode is the mode of secret files whose FileSpec gives none:
// readable by the run's user only.
const DefaultFileMode fs.FileMode = 0o400

// EnvSource is where the value of an environment variable comes from.
type EnvSource int

// The environment variable sources.
const (
	// EnvData is a data value. Only the run's entrypoint sees it, through
	// the env file on the tmpfs, and it may hold no NUL byte.
	EnvData EnvSource = iota
	// EnvField is a field; an empty field sets no variable.
	EnvField
	// EnvPath is the path where the run sees the secret: its file, or its
	// directory when the type has Dir.
	EnvPath
	// EnvFilePath is the path where the run sees file Ref of a type that
	// has Dir.
	EnvFilePath
	// EnvFormat is Ref with each {FILE} in it replaced by the path where
	// the run sees the secret's file FILE (the name of its FileSpec, even
	// where the file takes its mount path's name).
	EnvFormat
)

// EnvSpec is one environment variable that a run gets from a secret.
type EnvSpec struct {
	// Name is the variable's name, unless NameField is set.
	Name string
	// NameField is the field that holds the variable's name, as an env
	// secret's key does.
	NameField string
	// From says where the value comes from, and Ref names the data value,
	// field or file.
	From EnvSource
	Ref  string
	// Prefix goes before the value, as "ssh -i " before a key's path.
	Prefix string
	// When names an optional data value: the run gets the variable only
	// when the secret holds it. Unless is the other way round. Two specs
	// of one variable, one When and one Unless the same value, choose
	// its value by whether the secret holds it.
	When, Unless string
}

// Applies reports whether a secret holding data gets the variable, as
// When and Unless say.
func (e *EnvSpec) Applies(data map[string][]byte) bool {
	_, with := data[e.When]
	_, without := data[e.Unless]
	return (e.When == "" || with) && (e.Unless == "" || !without)
}

// FormatFiles returns format with each {FILE} replaced by paths[FILE]
// (EnvFormat); a FILE with no path is left as it is.
func FormatFiles(format string, paths map[string]string) string {
	var pairs []string
	for name, p := range paths {
		pairs = append(pairs, "{"+name+"}", p)
	}
	return strings.NewReplacer(pairs...).Replace(format)
}

// RegistrySpec makes a secret credentials for a container registry: a run
// whose image comes from Server pulls it as Username with Password.
type RegistrySpec struct {
	// Server and Username are fields; Password is a data value.
	Server, Username, Password string
}

// DefaultMountPath is where a secret named name is mounted when it has no
// mount path.
func (s *InjectSpec) DefaultMountPath(name string) string {
	if s.Dir || len(s.Files) == 0 {
		return path.Join("/secrets", name)
	}
	return path.Join("/secrets", name, s.Files[0].Name)
}

// IsData reports whether name is one of the type's data values rather than
// a field.
func (s *TypeSpec) IsData(name string) bool {
	return slices.ContainsFunc(s.Data, func(d DataSpec) bool { return d.Name == name })
}

// IsOptional reports whether name is an optional data value of the type.
func (s *TypeSpec) IsOptional(name string) bool {
	return slices.ContainsFunc(s.Data, func(d DataSpec) bool { return d.Name == name && d.Optional })
}

// fileNames maps the name of each of the type's files to itself, to check
// that an EnvFormat names only those.
func (s *TypeSpec) fileNames() map[string]string {
	names := map[string]string{}
	for _, f := range s.Inject.Files {
		names[f.Name] = f.Name
	}
	return names
}

func (s *TypeSpec) isField(name string) bool {
	return slices.ContainsFunc(s.Fields, func(f FieldSpec) bool { return f.Name == name })
}

// FileInput returns the flag of the type's create command that names a
// file holding data value d, or nil when none does.
func (s *TypeSpec) FileInput(d string) *InputSpec {
	for i, in := range s.Create.Inputs {
		if in.File && in.Target == d {
			return &s.Create.Inputs[i]
		}
	}
	return nil
}

// registry holds the specs of the known types. It is replaced, never
// changed, so that readers need no lock. The built-in types enter it at
// its first use, not at start-up: every process pays package init, the
// entrypoint of each run included.
var (
	registry   atomic.Pointer[[]*TypeSpec]
	registerMu sync.Mutex
	builtins   sync.Once
)

func types() []*TypeSpec {
	builtins.Do(func() {
		for _, s := range builtinTypes {
			if err := add(s); err != nil {
				panic(err)
			}
		}
	})
	return registered()
}

// Types returns the specs of every secret type, in DESIGN's order.
func Types() []*TypeSpec { return slices.Clone(types()) }

// LookupType returns the spec of a type, or false when there is no such type.
func LookupType(t SecretType) (*TypeSpec, bool) {
	for _, s := range types() {
		if s.Type == t {
			return s, true
		}
	}
	return nil, false
}

// TypeNames lists the type names, for messages.
func TypeNames() []string {
	all := types()
	names := make([]string, len(all))
	for i, s := range all {
		names[i] = string(s.Type)
	}
	return names
}

// RegisterType adds a secret type to the table, after checking that its
// spec holds together, and returns a function that removes it again. It is
// for tests, which show that a type declared in one place is created,
// parsed and injected with no other change; a type that hush ships belongs
// in the built-in table, so that every binary knows it.
func RegisterType(s *TypeSpec) (remove func(), err error) {
	types() // the built-in types first
	if err := add(s); err != nil {
		return nil, err
	}
	return func() {
		registerMu.Lock()
		defer registerMu.Unlock()
		next := slices.DeleteFunc(slices.Clone(registered()), func(o *TypeSpec) bool { return o == s })
		registry.Store(&next)
	}, nil
}

func add(s *TypeSpec) error {
	registerMu.Lock()
	defer registerMu.Unlock()
	known := registered()
	if slices.ContainsFunc(known, func(o *TypeSpec) bool { return o.Type == s.Type }) {
		return fmt.Errorf("register secret type %s: there is one already", s.Type)
	}
	if err := s.check(); err != nil {
		return fmt.Errorf("register secret type %s: %w", s.Type, err)
	}
	// Data that a run receives in a variable must be able to go there.
	for i, d := range s.Data {
		for _, e := range s.Inject.Env {
			if e.From == EnvData && e.Ref == d.Name {
				s.Data[i].Env = true
			}
		}
	}
	next := append(slices.Clone(known), s)
	registry.Store(&next)
	return nil
}

// registered returns the registry as it is, built-in types or not.
func registered() []*TypeSpec {
	if p := registry.Load(); p != nil {
		return *p
	}
	return nil
}

// check reports the parts of a spec that name what the type does not hold.
func (s *TypeSpec) check() error {
	var errs []error
	if s.Type == "" || s.Label == "" {
		errs = append(errs, errors.New("no type or label"))
	}
	c := s.Create
	switch c.Arg {
	case ArgKeyValue:
		if !s.isField(c.ArgField) || !s.IsData(c.ArgData) {
			errs = append(errs, fmt.Errorf("KEY=VALUE sets field %q and data %q, which the type does not hold", c.ArgField, c.ArgData))
		}
	case ArgFile:
		if !s.IsData(c.ArgData) {
			errs = append(errs, fmt.Errorf("the file argument sets data %q, which the type does not hold", c.ArgData))
		}
	}
	for _, in := range c.Inputs {
		switch {
		case in.Flag == "" || in.Flag == "name" || in.Flag == "from":
			errs = append(errs, fmt.Errorf("flag %q: give each input a flag of its own", in.Flag))
		case in.File && !s.IsData(in.Target):
			errs = append(errs, fmt.Errorf("flag --%s reads a file into %q, which is not a data value of the type", in.Flag, in.Target))
		case !s.IsData(in.Target) && !s.isField(in.Target):
			errs = append(errs, fmt.Errorf("flag --%s sets %q, which the type does not hold", in.Flag, in.Target))
		}
	}
	inj := s.Inject
	for i, f := range inj.Files {
		if f.Name == "" || path.Base(f.Name) != f.Name || !s.IsData(f.Data) {
			errs = append(errs, fmt.Errorf("file %q holds %q: give a plain file name and a data value of the type", f.Name, f.Data))
		}
		if i > 0 && !inj.Dir && !s.IsOptional(f.Data) {
			errs = append(errs, fmt.Errorf("file %q of a type mounted as one file goes beside it, so it must hold an optional value: set Dir for several files", f.Name))
		}
	}
	for _, e := range inj.Env {
		var ok bool
		switch e.From {
		case EnvData:
			ok = s.IsData(e.Ref)
		case EnvField:
			ok = s.isField(e.Ref)
		case EnvPath:
			ok = len(inj.Files) > 0
		case EnvFilePath:
			ok = inj.Dir && slices.ContainsFunc(inj.Files, func(f FileSpec) bool { return f.Name == e.Ref })
		case EnvFormat:
			ok = !strings.ContainsAny(FormatFiles(e.Ref, s.fileNames()), "{}")
		}
		if !ok || (e.Name == "") == (e.NameField == "") || (e.NameField != "" && !s.isField(e.NameField)) {
			errs = append(errs, fmt.Errorf("variable %s%s takes %q, which the type does not hold, or has no single name", e.Name, e.NameField, e.Ref))
		}
		for _, d := range []string{e.When, e.Unless} {
			if d != "" && !s.IsOptional(d) {
				errs = append(errs, fmt.Errorf("variable %s%s depends on %q, which is not an optional value of the type", e.Name, e.NameField, d))
			}
		}
	}
	if r := inj.Registry; r != nil && (!s.isField(r.Server) || !s.isField(r.Username) || !s.IsData(r.Password)) {
		errs = append(errs, errors.New("registry credentials name fields or data the type does not hold"))
	}
	return errors.Join(errs...)
}
