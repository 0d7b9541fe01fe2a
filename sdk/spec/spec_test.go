package spec

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hush-sh/hush/sdk/api"
)

var fullSpec = &RunSpec{
	Name:        "train-model",
	Image:       "ghcr.io/example/trainer:1.2",
	Command:     "python train.py --epochs 3\n",
	GPUs:        2,
	CPUs:        7.5,
	Memory:      "16Gi",
	MemoryBytes: 16 << 30,
	Cluster:     "gpu-a",
	Env:         map[string]string{"LOG_LEVEL": "info", "WORKERS": "4", "DEBUG": "false"},
	Secrets:     []string{"hf-token", "wandb"},
	MaxDuration: 90 * time.Minute,
}

var sweepSpec = &RunSpec{
	Name:        "sweep",
	Image:       "python:3.12",
	Command:     "python -c 'print(1)'",
	GPUs:        1,
	Env:         map[string]string{"SEED": "42", "MODE": "fast"},
	Secrets:     []string{},
	MaxDuration: 30 * time.Minute,
}

func TestParseFileValid(t *testing.T) {
	tests := map[string]struct {
		path string
		want *RunSpec
	}{
		"yaml with env map, compute and hours":        {"testdata/full.yaml", fullSpec},
		"hcl with env map, compute and hours":         {"testdata/full.hcl", fullSpec},
		"yaml with mcli env list and duration string": {"testdata/mcli.yaml", sweepSpec},
		"hcl with quoted env key and duration string": {"testdata/duration.hcl", sweepSpec},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, warnings, err := ParseFile(tt.path)
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if len(warnings) != 0 {
				t.Errorf("got warnings %v, want none", warnings)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseValues(t *testing.T) {
	const base = "name: a\nimage: b\ncommand: c\n"
	tests := map[string]struct {
		src  string
		want func(*RunSpec) any
		val  any
	}{
		"no secrets field means all":  {base, func(s *RunSpec) any { return s.Secrets == nil }, true},
		"empty secrets means none":    {base + "secrets: []\n", func(s *RunSpec) any { return s.Secrets != nil && len(s.Secrets) == 0 }, true},
		"repeated secret used once":   {base + "secrets: [a, a]\n", func(s *RunSpec) any { return s.Secrets }, []string{"a"}},
		"compute.gpus alone":          {base + "compute: {gpus: 3}\n", func(s *RunSpec) any { return s.GPUs }, 3},
		"integer cpus":                {base + "compute: {cpus: 2}\n", func(s *RunSpec) any { return s.CPUs }, 2.0},
		"memory as plain bytes":       {base + "compute: {memory: 1048576}\n", func(s *RunSpec) any { return s.MemoryBytes }, int64(1 << 20)},
		"decimal memory":              {base + "compute: {memory: 2G}\n", func(s *RunSpec) any { return s.MemoryBytes }, int64(2e9)},
		"memory with a B":             {base + "compute: {memory: 512MiB}\n", func(s *RunSpec) any { return s.MemoryBytes }, int64(512 << 20)},
		"max_log_size":                {base + "max_log_size: 16MiB\n", func(s *RunSpec) any { return s.Request().MaxLogBytes }, int64(16 << 20)},
		"max_log_size as bytes":       {base + "max_log_size: 65536\n", func(s *RunSpec) any { return s.MaxLogBytes }, int64(64 << 10)},
		"no max_log_size":             {base, func(s *RunSpec) any { return s.MaxLogBytes }, int64(0)},
		"mask_secrets":                {base + "mask_secrets: true\n", func(s *RunSpec) any { return *s.Request().MaskSecrets }, true},
		"mask_secrets false":          {base + "mask_secrets: false\n", func(s *RunSpec) any { return *s.MaskSecrets }, false},
		"no mask_secrets":             {base, func(s *RunSpec) any { return s.MaskSecrets == nil }, true},
		"whole hours":                 {base + "scheduling: {max_duration: 2}\n", func(s *RunSpec) any { return s.MaxDuration }, 2 * time.Hour},
		"fraction of an hour rounded": {base + "scheduling: {max_duration: 0.1}\n", func(s *RunSpec) any { return s.MaxDuration }, 6 * time.Minute},
		"env value kept as written":   {base + "env_variables: {A: 1.50, B: \"x y\", C: true}\n", func(s *RunSpec) any { return s.Env }, map[string]string{"A": "1.50", "B": "x y", "C": "true"}},
		"anchors are followed":        {base + "compute: &c {gpus: 1}\nscheduling: {max_duration: 1}\n", func(s *RunSpec) any { return s.GPUs }, 1},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			s, _, err := Parse("run.yaml", []byte(tt.src))
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if got := tt.want(s); !reflect.DeepEqual(got, tt.val) {
				t.Errorf("got %#v, want %#v", got, tt.val)
			}
		})
	}
}

func TestParseMaxLogSizeHCL(t *testing.T) {
	s, _, err := Parse("r.hcl", []byte("name = \"a\"\nimage = \"b\"\ncommand = \"c\"\nmax_log_size = \"2.5MiB\"\n"))
	if err != nil {
		t.Fatalf("got error %v, want none", err)
	}
	if s.MaxLogSize != "2.5MiB" || s.MaxLogBytes != 5<<19 {
		t.Errorf("got %q = %d bytes, want \"2.5MiB\" = %d bytes", s.MaxLogSize, s.MaxLogBytes, 5<<19)
	}
}

func TestNameConversion(t *testing.T) {
	long := strings.Repeat("a", 62) + "-b"
	tests := map[string]struct {
		filename, src string
		want          string
		warning       string
	}{
		"valid name": {"r.yaml", "name: my-run\n", "my-run", ""},
		"mixed case and underscore": {"r.yaml", "name: My_Run\n", "my-run",
			`r.yaml:1:7: run name "My_Run" is not valid; using "my-run"`},
		"leading and trailing punctuation": {"r.yaml", "name: \"-Train Model!\"\n", "train-model",
			`r.yaml:1:7: run name "-Train Model!" is not valid; using "train-model"`},
		"longer than 63 characters": {"r.yaml", "name: " + long + "\n", strings.Repeat("a", 62),
			`r.yaml:1:7: run name "` + long + `" is not valid; using "` + strings.Repeat("a", 62) + `"`},
		"hcl": {"r.hcl", "name = \"My Run\"\n", "my-run",
			`r.hcl:1:8: run name "My Run" is not valid; using "my-run"`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			rest := "image: i\ncommand: c\n"
			if strings.HasSuffix(tt.filename, ".hcl") {
				rest = "image = \"i\"\ncommand = \"c\"\n"
			}
			s, warnings, err := Parse(tt.filename, []byte(tt.src+rest))
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if s.Name != tt.want {
				t.Errorf("got name %q, want %q", s.Name, tt.want)
			}
			var got []string
			for _, w := range warnings {
				got = append(got, w.String())
			}
			var want []string
			if tt.warning != "" {
				want = []string{tt.warning}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got warnings %q, want %q", got, want)
			}
		})
	}
}

func TestUnsupportedExtension(t *testing.T) {
	tests := map[string]struct {
		filename string
		want     string
	}{
		"json": {"run.json", `run spec "run.json" has unsupported extension ".json": name it .yaml, .yml or .hcl to say which format it is in`},
		"none": {"run", `run spec "run" has no file extension: name it .yaml, .yml or .hcl to say which format it is in`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, _, err := Parse(tt.filename, []byte("name: a\n"))
			if err == nil || err.Error() != tt.want {
				t.Errorf("got error %v, want %s", err, tt.want)
			}
			if _, _, err := ParseFile(tt.filename); err == nil || err.Error() != tt.want {
				t.Errorf("ParseFile: got error %v, want %s", err, tt.want)
			}
		})
	}
}

func TestExtensionCase(t *testing.T) {
	for _, filename := range []string{"run.yml", "RUN.YAML", "run.HCL"} {
		src := "name: a\nimage: b\ncommand: c\n"
		if strings.HasSuffix(strings.ToLower(filename), ".hcl") {
			src = "name = \"a\"\nimage = \"b\"\ncommand = \"c\"\n"
		}
		if _, _, err := Parse(filename, []byte(src)); err != nil {
			t.Errorf("%s: got error %v, want none", filename, err)
		}
	}
}

func TestParseFileMissing(t *testing.T) {
	_, _, err := ParseFile(t.TempDir() + "/missing.yaml")
	if err == nil || !strings.HasPrefix(err.Error(), "read run spec: ") {
		t.Errorf("got error %v, want a read run spec error", err)
	}
}

func TestRequest(t *testing.T) {
	got := fullSpec.Request()
	want := &api.CreateRunRequest{
		Name:        "train-model",
		Image:       "ghcr.io/example/trainer:1.2",
		Command:     "python train.py --epochs 3\n",
		Env:         map[string]string{"LOG_LEVEL": "info", "WORKERS": "4", "DEBUG": "false"},
		Secrets:     []string{"hf-token", "wandb"},
		GPUs:        2,
		CPUs:        7.5,
		MemoryBytes: 16 << 30,
		MaxDuration: api.Duration(90 * time.Minute),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	got.Env["LOG_LEVEL"] = "debug"
	got.Secrets[0] = "other"
	if fullSpec.Env["LOG_LEVEL"] != "info" || fullSpec.Secrets[0] != "hf-token" {
		t.Errorf("changing the request changed the spec")
	}

	if got := (&RunSpec{}).Request().Secrets; got != nil {
		t.Errorf("got secrets %#v for a spec without secrets, want nil (all)", got)
	}
	if got := sweepSpec.Request().Secrets; got == nil || len(got) != 0 {
		t.Errorf("got secrets %#v for an empty list, want an empty non-nil slice (none)", got)
	}
}

func TestAPIGrant(t *testing.T) {
	tests := map[string]struct{ file, src string }{
		"yaml": {"r.yaml", "name: a\nimage: b\ncommand: c\napi: {secrets: write}\n"},
		"hcl":  {"r.hcl", "name = \"a\"\nimage = \"b\"\ncommand = \"c\"\napi {\n  secrets = \"write\"\n}\n"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, _, err := Parse(tc.file, []byte(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Request().API; !got.SecretsWrite() {
				t.Errorf("got api %+v, want secrets write", got)
			}
		})
	}
	s, _, err := Parse("r.yaml", []byte("name: a\nimage: b\ncommand: c\n"))
	if err != nil || s.Request().API.SecretsWrite() {
		t.Errorf("without api: got %+v, %v; want no write access", s, err)
	}
}

// TestExamplesAgree keeps the YAML and HCL examples describing the same run.
func TestExamplesAgree(t *testing.T) {
	fromYAML, wy, err := ParseFile("../../examples/hello-secret-user.yaml")
	if err != nil {
		t.Fatalf("yaml example: %v", err)
	}
	fromHCL, wh, err := ParseFile("../../examples/hello-secret-user.hcl")
	if err != nil {
		t.Fatalf("hcl example: %v", err)
	}
	if len(wy)+len(wh) != 0 {
		t.Errorf("got warnings %v %v, want none", wy, wh)
	}
	if !reflect.DeepEqual(fromYAML, fromHCL) {
		t.Errorf("got %+v from HCL, want %+v as from YAML", fromHCL, fromYAML)
	}
	if want := "echo Hello $SECRET_STUFF!\n"; fromYAML.Command != want {
		t.Errorf("got command %q, want %q", fromYAML.Command, want)
	}
}

func TestParseMemory(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    int64
		wantErr bool
	}{
		"plain bytes":    {in: "512", want: 512},
		"binary":         {in: "4Gi", want: 4 << 30},
		"decimal":        {in: "2G", want: 2e9},
		"fraction":       {in: "1.5Mi", want: 3 << 19},
		"kilo and tera":  {in: "3Ti", want: 3 << 40},
		"zero":           {in: "0", want: 0},
		"byte suffix":    {in: "4GB", wantErr: true},
		"lowercase unit": {in: "4gi", wantErr: true},
		"negative":       {in: "-1Gi", wantErr: true},
		"too large":      {in: "9000000Ti", wantErr: true},
		"empty":          {in: "", wantErr: true},
		"space inside":   {in: "4 Gi", wantErr: true},
		"no number":      {in: "Gi", wantErr: true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseMemory(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

// problems returns the lines of err, which must be an *Error.
func problems(t *testing.T, err error) []string {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got error %v (%T), want *Error", err, err)
	}
	if got, want := len(strings.Split(e.Error(), "\n")), len(e.Problems); got != want {
		t.Errorf("got %d lines for %d problems", got, want)
	}
	return strings.Split(e.Error(), "\n")
}

func TestPlacementFields(t *testing.T) {
	want := []api.Constraint{
		{Key: "node_class", Op: "=", Value: "gpu"},
		{Key: "rack", Op: "!=", Value: "r2"},
		{Key: "zone", Op: "=", Value: "eu west"},
	}
	tests := map[string]struct {
		file, src string
		warnings  []string
	}{
		"yaml": {file: "r.yaml", src: "name: a\nimage: b\ncommand: c\nretries: 3\n" +
			"constraints:\n  - node_class = gpu\n  - rack!=r2\n  - \"  zone =  eu west \"\n  - node_class=gpu\n",
			warnings: []string{`r.yaml:9:5: constraint "node_class = gpu" is listed twice (also at r.yaml:6:5); it is used once`}},
		"hcl": {file: "r.hcl", src: "name = \"a\"\nimage = \"b\"\ncommand = \"c\"\nretries = 3\n" +
			"constraints = [\"node_class = gpu\", \"rack != r2\", \"zone = eu west\"]\n"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, warnings, err := Parse(tc.file, []byte(tc.src))
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			var got []string
			for _, w := range warnings {
				got = append(got, w.String())
			}
			if !reflect.DeepEqual(got, tc.warnings) {
				t.Errorf("got warnings %q, want %q", got, tc.warnings)
			}
			req := s.Request()
			if req.Retries != 3 {
				t.Errorf("got retries %d, want 3", req.Retries)
			}
			if !reflect.DeepEqual(req.Constraints, want) {
				t.Errorf("got constraints %+v, want %+v", req.Constraints, want)
			}
			req.Constraints[0].Value = "cpu"
			if s.Constraints[0].Value != "gpu" {
				t.Errorf("changing the request changed the spec")
			}
		})
	}
	s, _, err := Parse("r.yaml", []byte("name: a\nimage: b\ncommand: c\n"))
	if err != nil {
		t.Fatal(err)
	}
	if req := s.Request(); req.Retries != 0 || req.Constraints != nil {
		t.Errorf("without the fields: got retries %d constraints %v, want 0 and none", req.Retries, req.Constraints)
	}
}

func TestParseConstraint(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    api.Constraint
		wantErr string
	}{
		"equal":              {in: "node_class = gpu", want: api.Constraint{Key: "node_class", Op: "=", Value: "gpu"}},
		"not equal":          {in: "rack != r2", want: api.Constraint{Key: "rack", Op: "!=", Value: "r2"}},
		"no spaces":          {in: "rack!=r2", want: api.Constraint{Key: "rack", Op: "!=", Value: "r2"}},
		"value with a space": {in: " zone = eu west ", want: api.Constraint{Key: "zone", Op: "=", Value: "eu west"}},
		"unknown operator":   {in: "rack ~ r2", wantErr: `"rack ~ r2": use KEY = VALUE or KEY != VALUE`},
		"double equals":      {in: "rack == r2", wantErr: `"rack == r2": use KEY = VALUE or KEY != VALUE`},
		"no key":             {in: "= gpu", wantErr: `"= gpu": use KEY = VALUE or KEY != VALUE`},
		"key with a space":   {in: "node class = gpu", wantErr: `"node class = gpu": use KEY = VALUE`},
		"no value":           {in: "rack !=", wantErr: `"rack !=": give a value after "!="`},
		"empty":              {in: "", wantErr: `"": use KEY = VALUE`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseConstraint(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}
