// Package spec parses the files people write for hush: run specs (YAML
// files with mcli's fields, or HCL files with the same fields) and secrets
// files for hush apply (see SecretsFile), each format chosen by file
// extension. Every problem in a file is reported at once, each with the
// file, line and column it is about.
package spec

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hush-sh/hush/sdk/api"
	"github.com/hush-sh/hush/sdk/userfile"
)

// maxRunNameLen caps run names below the 253 characters secret names may
// have, so that a run name fits a hostname label and a container name.
const maxRunNameLen = 63

// RunSpec is a parsed run spec.
type RunSpec struct {
	// Name is the run's name, already converted to a valid one.
	Name string
	// Image is an OCI image reference.
	Image string
	// Command runs under /bin/sh -c.
	Command string
	// GPUs is the top-level gpus or compute.gpus; 0 means none.
	GPUs int
	// CPUs is compute.cpus; 0 means no limit.
	CPUs float64
	// Memory is compute.memory as written, such as "4Gi", "512Mi" or "2G".
	Memory string
	// MemoryBytes is Memory in bytes; 0 means no limit.
	MemoryBytes int64
	// Cluster is compute.cluster; "" means any.
	Cluster string
	// Env is env_variables, given as a map or as mcli's list of key and value.
	Env map[string]string
	// Secrets narrows which of the owner's secrets the run gets, in list
	// order, whether named alone or in a mapping: nil when the spec does
	// not name any (all of them), empty when it gives an empty list
	// (none).
	Secrets []string
	// MaxDuration is scheduling.max_duration; 0 means no limit.
	MaxDuration time.Duration
	// API is what the run's own token may do, such as api.secrets = "write".
	API api.RunAPI
	// MaxLogSize is max_log_size as written, such as "16MiB".
	MaxLogSize string
	// MaxLogBytes is MaxLogSize in bytes; 0 means the agent's default.
	MaxLogBytes int64
	// MaskSecrets is mask_secrets: nil when the spec leaves it to the
	// agent.
	MaskSecrets *bool
	// Retries is how many times the run is placed again when its node is
	// lost, from 0 (the default) to MaxRetries.
	Retries int
	// Constraints are the constraints list, parsed: the run goes only to
	// a node whose labels (meta, and "node_class") satisfy all of them.
	Constraints []api.Constraint
	// Refresh is the run's refresh and on_change: how often its secrets
	// are fetched again while it runs, and what a changed value does.
	Refresh api.Refresh
	// SecretRefresh is the refresh settings of the secrets given as
	// mappings in the secrets list, by name; nil when none has any. What a
	// secret leaves unset comes from Refresh (see api.RefreshFor).
	SecretRefresh map[string]api.Refresh
}

// Request turns the spec into a request to create the run. Cluster is not
// part of the request: the caller picks the agent to send it to.
func (s *RunSpec) Request() *api.CreateRunRequest {
	return &api.CreateRunRequest{
		Name:          s.Name,
		Image:         s.Image,
		Command:       s.Command,
		Env:           maps.Clone(s.Env),
		Secrets:       slices.Clone(s.Secrets),
		GPUs:          s.GPUs,
		CPUs:          s.CPUs,
		MemoryBytes:   s.MemoryBytes,
		MaxDuration:   api.Duration(s.MaxDuration),
		API:           s.API,
		MaxLogBytes:   s.MaxLogBytes,
		MaskSecrets:   s.MaskSecrets,
		Constraints:   slices.Clone(s.Constraints),
		Retries:       s.Retries,
		Refresh:       s.Refresh,
		SecretRefresh: maps.Clone(s.SecretRefresh),
	}
}

// Pos is a place in a spec file. Line and Column count from 1; 0 means
// unknown.
type Pos struct {
	Filename     string
	Line, Column int
}

// String renders the position as "file:line:col", leaving out what is
// unknown.
func (p Pos) String() string {
	switch {
	case p.Line == 0:
		return p.Filename
	case p.Column == 0:
		return fmt.Sprintf("%s:%d", p.Filename, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.Filename, p.Line, p.Column)
}

// Warning is something the user should know but that does not stop the
// run, such as a run name that was converted to a valid one.
type Warning struct {
	Pos     Pos
	Message string
}

// String renders the warning as "file:line:col: message".
func (w Warning) String() string { return w.Pos.String() + ": " + w.Message }

// Problem is one thing wrong with a spec.
type Problem struct {
	Pos     Pos
	Message string
}

// Error is every problem found in a spec, in the order they appear in it.
type Error struct {
	Problems []Problem
}

// Error renders one "file:line:col: message" per line.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Pos.String() + ": " + p.Message
	}
	return strings.Join(lines, "\n")
}

// MaxRunSpecSize is the most bytes a run spec file may hold. A spec is a
// name, an image, a command and some settings; anything near this is data
// that belongs in the image, a volume or a secret, and the agent refuses a
// request body of 2 MiB.
const MaxRunSpecSize = 1 << 20

// ParseFile reads and parses a run spec; its extension decides the format.
// It refuses what is not a regular file (a directory, a named pipe) and a
// file over MaxRunSpecSize before parsing anything.
func ParseFile(path string) (*RunSpec, []Warning, error) {
	src, err := readFile("run spec", path, MaxRunSpecSize)
	if err != nil {
		return nil, nil, err
	}
	return Parse(path, src)
}

// readFile reads the spec or secrets file at path, which must be a regular
// file of at most limit bytes named for its format; kind says what the
// file is, for the message. That it is not a file at all comes first: a
// directory has no extension either, but that is not what is wrong.
func readFile(kind, path string, limit int64) ([]byte, error) {
	src, err := userfile.ReadFile(path, limit)
	var notRegular *userfile.NotRegularError
	if errors.As(err, &notRegular) {
		return nil, fmt.Errorf("%s %s is %s, not a regular file: give the path of a %s file", kind, path, userfile.Kind(notRegular.Mode), kind)
	}
	if err := checkExt(kind, path); err != nil {
		return nil, err
	}
	var tooLarge *userfile.TooLargeError
	switch {
	case errors.As(err, &tooLarge):
		return nil, fmt.Errorf("%s %s is %s, more than the %s a %s may hold: keep large data out of it, in the image or a volume",
			kind, path, userfile.FormatSize(tooLarge.Size), userfile.FormatSize(limit), kind)
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", kind, err)
	}
	return src, nil
}

// Parse parses a run spec: YAML when filename ends in .yaml or .yml, HCL
// when it ends in .hcl. A spec with problems gives a nil RunSpec and an
// *Error listing all of them; the warnings found so far are returned
// either way.
func Parse(filename string, src []byte) (*RunSpec, []Warning, error) {
	if err := checkExt("run spec", filename); err != nil {
		return nil, nil, err
	}
	p := &parser{reporter: reporter{filename: filename}, present: map[string]bool{}, given: map[string]Pos{}}
	var start Pos
	switch strings.ToLower(filepath.Ext(filename)) {
	case ".hcl":
		p.hcl = true
		start = p.parseHCL(src)
	default:
		start = p.parseYAML(src)
	}
	return p.finish(start)
}

// checkExt checks that filename names its format; kind says what the file
// is, for the message.
func checkExt(kind, filename string) error {
	switch ext := strings.ToLower(filepath.Ext(filename)); ext {
	case ".yaml", ".yml", ".hcl":
		return nil
	case "":
		return fmt.Errorf("%s %q has no file extension: name it .yaml, .yml or .hcl to say which format it is in", kind, filename)
	default:
		return fmt.Errorf("%s %q has unsupported extension %q: name it .yaml, .yml or .hcl to say which format it is in", kind, filename, ext)
	}
}

// Field names, in the order messages list them.
var (
	topFields        = []string{"name", "image", "command", "gpus", "compute", "env_variables", "secrets", "scheduling", "max_log_size", "api", "mask_secrets", "retries", "constraints", "refresh", "on_change"}
	computeFields    = []string{"gpus", "cpus", "memory", "cluster"}
	schedulingFields = []string{"max_duration"}
	apiFields        = []string{"secrets"}
	requiredFields   = []string{"name", "image", "command"}
)

// reporter collects the problems and warnings of one file. The run-spec
// and secrets-file parsers embed it, so that both report alike.
type reporter struct {
	filename string
	// sensitive is set for a file that may hold secret values: messages
	// then never quote its text.
	sensitive bool
	problems  []Problem
	warnings  []Warning
}

func (r *reporter) errorf(pos Pos, format string, args ...any) {
	r.problems = append(r.problems, Problem{Pos: pos, Message: fmt.Sprintf(format, args...)})
}

func (r *reporter) warnf(pos Pos, format string, args ...any) {
	r.warnings = append(r.warnings, Warning{Pos: pos, Message: fmt.Sprintf(format, args...)})
}

// err returns the problems in file order as an *Error, or nil when there
// are none.
func (r *reporter) err() error {
	if len(r.problems) == 0 {
		return nil
	}
	slices.SortStableFunc(r.problems, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Pos.Line, b.Pos.Line), cmp.Compare(a.Pos.Column, b.Pos.Column))
	})
	return &Error{Problems: r.problems}
}

// parser collects a spec and its problems; the format-specific code reads
// the file and calls the set methods, which check values shared by both
// formats.
type parser struct {
	reporter
	spec RunSpec
	// present records the fields the spec has, valid or not, so that a
	// required field with a bad value is not also reported missing.
	present map[string]bool
	// given records where values were set, by dotted path, to find
	// duplicates and to reconcile gpus with compute.gpus.
	given                map[string]Pos
	topGPUs, computeGPUs int
	refreshState
	// typos records the top-level unknown fields whose suggestion is a
	// required field, by that field, so that finish can fold "missing
	// command" into the "comand" it most likely is.
	typos map[string]typo
	// hcl is true for an HCL spec, to give examples in its syntax.
	hcl bool
}

// typo is an unknown top-level field that looks like a required one.
type typo struct {
	name    string // the field as written
	problem int    // the index of its problem in p.problems
}

// unknownField reports a field that is not in known, suggesting the
// closest known one for a likely typo.
func (p *parser) unknownField(pos Pos, path, name string, known []string) {
	where := "known fields are"
	full := name
	if path != "" {
		where = "known fields in " + path + " are"
		full = path + "." + name
	}
	hint := ""
	if s := suggest(name, known); s != "" {
		hint = fmt.Sprintf(" (did you mean %q?)", s)
		if _, seen := p.typos[s]; path == "" && !seen && slices.Contains(requiredFields, s) {
			if p.typos == nil {
				p.typos = map[string]typo{}
			}
			p.typos[s] = typo{name: name, problem: len(p.problems)}
		}
	}
	p.errorf(pos, "unknown field %q%s; %s %s", full, hint, where, strings.Join(known, ", "))
}

func (p *parser) setName(pos Pos, name string) {
	if api.ValidateSecretName(name) == nil && len(name) <= maxRunNameLen {
		p.spec.Name = name
		return
	}
	fixed := api.SanitizeName(name)
	if len(fixed) > maxRunNameLen {
		fixed = strings.TrimRight(fixed[:maxRunNameLen], ".-")
	}
	if fixed == "" {
		p.errorf(pos, "run name %q has nothing usable in it: use lowercase letters, digits, '.' and '-', starting and ending with a letter or digit", name)
		return
	}
	p.warnf(pos, "run name %q is not valid; using %q", name, fixed)
	p.spec.Name = fixed
}

func (p *parser) setImage(pos Pos, image string) {
	if strings.TrimSpace(image) == "" {
		p.errorf(pos, "image is empty: give an image reference such as docker.io/library/busybox:latest")
		return
	}
	p.spec.Image = image
}

func (p *parser) setCommand(pos Pos, command string) {
	if strings.TrimSpace(command) == "" {
		p.errorf(pos, "command is empty: give the shell command the run executes")
		return
	}
	p.spec.Command = command
}

// setGPUs records gpus (path "gpus") or compute.gpus; finish reconciles them.
func (p *parser) setGPUs(pos Pos, path string, n int) {
	if n < 0 {
		p.errorf(pos, "%s is %d: give 0 or more", path, n)
		return
	}
	p.given[path] = pos
	if path == "gpus" {
		p.topGPUs = n
	} else {
		p.computeGPUs = n
	}
}

func (p *parser) setCPUs(pos Pos, n float64) {
	if !(n >= 0) || math.IsInf(n, 1) {
		p.errorf(pos, "compute.cpus is %g: give a number of CPUs, 0 or more (0 means no limit)", n)
		return
	}
	p.spec.CPUs = n
}

func (p *parser) setMemory(pos Pos, s string) {
	n, err := parseMemory(s)
	if err != nil {
		p.errorf(pos, "compute.memory %q is not valid: %v", s, err)
		return
	}
	p.spec.Memory, p.spec.MemoryBytes = s, n
}

func (p *parser) setMaxLogSize(pos Pos, s string) {
	n, err := parseMemory(s)
	if err != nil {
		p.errorf(pos, "max_log_size %q is not valid: %v", s, err)
		return
	}
	if n < api.MinLogSize {
		least := fmt.Sprintf("%dKiB", api.MinLogSize>>10)
		p.errorf(pos, "max_log_size %q is below the smallest log cap of %s: give at least %q, or leave it out for the agent's default", s, least, least)
		return
	}
	p.spec.MaxLogSize, p.spec.MaxLogBytes = s, n
}

func (p *parser) setCluster(pos Pos, s string) {
	if strings.TrimSpace(s) == "" {
		p.errorf(pos, "compute.cluster is empty: give a cluster name, or leave the field out for any cluster")
		return
	}
	p.spec.Cluster = s
}

// setEnv adds one environment variable; keyPos is where its key is.
func (p *parser) setEnv(keyPos Pos, key, value string) {
	if err := api.ValidateEnvKey(key); err != nil {
		p.errorf(keyPos, "env_variables: %v", err)
		return
	}
	path := "env_variables." + key
	if first, ok := p.given[path]; ok {
		p.errorf(keyPos, "env_variables: %s is set twice (also at %s): keep one", key, first)
		return
	}
	p.given[path] = keyPos
	if p.spec.Env == nil {
		p.spec.Env = map[string]string{}
	}
	p.spec.Env[key] = value
}

// initSecrets marks the secrets list as given, so that an empty list
// means no secrets rather than all of them.
func (p *parser) initSecrets() {
	p.spec.Secrets = []string{}
}

// addSecret adds a secret to the list and reports whether it was added:
// not when its name is not valid or it is listed already.
func (p *parser) addSecret(pos Pos, name string) bool {
	if err := api.ValidateSecretName(name); err != nil {
		p.errorf(pos, "secrets: %v", err)
		return false
	}
	path := "secrets." + name
	if first, ok := p.given[path]; ok {
		if settings, ok := p.secretSettings[name]; ok {
			p.errorf(pos, "secret %q is listed twice (also at %s, with refresh settings): list it once, with its settings", name, settings)
		} else {
			p.warnf(pos, "secret %q is listed twice (also at %s); it is used once", name, first)
		}
		return false
	}
	p.given[path] = pos
	p.spec.Secrets = append(p.spec.Secrets, name)
	return true
}

// setMaxDurationHours takes max_duration as a number, which mcli reads as
// hours.
func (p *parser) setMaxDurationHours(pos Pos, hours float64) {
	const maxHours = float64(math.MaxInt64) / float64(time.Hour)
	if hours >= maxHours {
		p.errorf(pos, "scheduling.max_duration is %g hours: give at most %d hours (about 292 years)", hours, math.MaxInt64/int64(time.Hour))
		return
	}
	d := time.Duration(hours * float64(time.Hour))
	if math.IsNaN(hours) || d <= 0 {
		p.errorf(pos, "scheduling.max_duration is %g hours: give a number of hours greater than 0, or a duration such as \"30m\"", hours)
		return
	}
	// Float hours are inexact (0.1h is not quite 6m); round to a second.
	p.spec.MaxDuration = max(d.Round(time.Second), time.Second)
}

// setMaxDurationString takes max_duration as a Go duration string.
func (p *parser) setMaxDurationString(pos Pos, s string) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d <= 0 {
		p.errorf(pos, "scheduling.max_duration %q is not valid: give a duration greater than 0 such as \"30m\" or \"1h30m\", or a number of hours", s)
		return
	}
	p.spec.MaxDuration = d
}

// setSecretsAPI takes api.secrets: what the run's token may do with its
// owner's secrets.
func (p *parser) setSecretsAPI(pos Pos, access string) {
	a := api.RunAPI{Secrets: access}
	if err := api.ValidateRunAPI(a); err != nil {
		p.errorf(pos, "%v", err)
		return
	}
	p.spec.API = a
}

// finish checks what needs the whole spec and returns the result; start is
// where missing fields are reported.
func (p *parser) finish(start Pos) (*RunSpec, []Warning, error) {
	for _, f := range requiredFields {
		if p.present[f] {
			continue
		}
		// A misspelt required field is one problem, told where the typo is
		// rather than at the top of the file.
		if t, ok := p.typos[f]; ok {
			p.problems[t.problem].Message = fmt.Sprintf("unknown field %q: did you mean %q? %s is required: every run spec needs name, image and command", t.name, f, f)
			continue
		}
		p.errorf(start, "missing required field %q: every run spec needs name, image and command", f)
	}
	top, hasTop := p.given["gpus"]
	_, hasCompute := p.given["compute.gpus"]
	switch {
	case hasTop && hasCompute && p.topGPUs != p.computeGPUs:
		p.errorf(top, "gpus is %d but compute.gpus is %d: set only one of them", p.topGPUs, p.computeGPUs)
	case hasTop:
		p.spec.GPUs = p.topGPUs
	case hasCompute:
		p.spec.GPUs = p.computeGPUs
	}
	p.warnOnChange()
	if err := p.err(); err != nil {
		return nil, p.warnings, err
	}
	return &p.spec, p.warnings, nil
}
