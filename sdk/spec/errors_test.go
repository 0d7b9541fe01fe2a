package spec

import (
	"reflect"
	"testing"
)

const knownTop = "known fields are name, image, command, gpus, compute, env_variables, secrets, scheduling, max_log_size, api, mask_secrets, retries, constraints, refresh, on_change"

func TestParseYAMLErrors(t *testing.T) {
	const base = "name: a\nimage: b\ncommand: c\n" // lines 1-3
	tests := map[string]struct {
		src  string
		want []string
	}{
		"unknown field": {base + "integrations: []\n", []string{
			`r.yaml:4:1: unknown field "integrations"; ` + knownTop}},
		"misspelt field": {base + "env_variable: {A: b}\n", []string{
			`r.yaml:4:1: unknown field "env_variable" (did you mean "env_variables"?); ` + knownTop}},
		"bad api access": {base + "api: {secrets: admin}\n", []string{
			`r.yaml:4:16: api.secrets "admin" is not valid: give "read" (the default: the run's token lists the secrets the run was given) or "write" (it may also create and delete your secrets)`}},
		"unknown api field": {base + "api: {runs: write}\n", []string{
			`r.yaml:4:7: unknown field "api.runs"; known fields in api are secrets`}},
		"unknown nested field": {base + "scheduling:\n  priority: high\n", []string{
			`r.yaml:5:3: unknown field "scheduling.priority"; known fields in scheduling are max_duration`}},
		"command not a string": {"name: a\nimage: b\ncommand: 42\n", []string{
			`r.yaml:3:10: command must be a string, got a whole number (42); put it in quotes to use it as text`}},
		"gpus not a whole number": {base + "gpus: 1.5\n", []string{
			`r.yaml:4:7: gpus must be a whole number, got a number (1.5)`}},
		"compute not a mapping": {base + "compute: 4\n", []string{
			`r.yaml:4:10: compute must be a mapping of fields such as {gpus: 1}, got a whole number (4)`}},
		"missing fields at document start": {"# comment\n\ngpus: 1\n", []string{
			`r.yaml:3:1: missing required field "name": every run spec needs name, image and command`,
			`r.yaml:3:1: missing required field "image": every run spec needs name, image and command`,
			`r.yaml:3:1: missing required field "command": every run spec needs name, image and command`}},
		"field given twice": {base + "name: b\n", []string{
			`r.yaml:4:1: field "name" is set twice (also at r.yaml:1:1): keep one`}},
		"field without value": {"name: a\nimage:\ncommand: c\n", []string{
			`r.yaml:2:1: field "image" has no value: give one or remove the field`}},
		"empty command": {"name: a\nimage: b\ncommand: \"  \"\n", []string{
			`r.yaml:3:10: command is empty: give the shell command the run executes`}},
		"negative retries": {base + "retries: -1\n", []string{
			`r.yaml:4:10: retries is -1: give how many times the run is placed again when its node is lost, from 0 to 10`}},
		"too many retries": {base + "retries: 11\n", []string{
			`r.yaml:4:10: retries is 11: give how many times the run is placed again when its node is lost, from 0 to 10`}},
		"retries not a whole number": {base + "retries: once\n", []string{
			`r.yaml:4:10: retries must be a whole number, got a string ("once")`}},
		"constraints not a list": {base + "constraints: node_class = gpu\n", []string{
			`r.yaml:4:14: constraints must be a list of strings such as ["node_class = gpu"], got a string ("node_class = gpu")`}},
		"bad constraints": {base + "constraints:\n  - node_class = gpu\n  - rack ~ r2\n  - rack == r2\n  - \"rack =\"\n  - 3\n", []string{
			`r.yaml:6:5: constraints[1]: "rack ~ r2": use KEY = VALUE or KEY != VALUE, such as "node_class = gpu"`,
			`r.yaml:7:5: constraints[2]: "rack == r2": use KEY = VALUE or KEY != VALUE, such as "node_class = gpu"`,
			`r.yaml:8:5: constraints[3]: "rack =": give a value after "=", such as "rack = gpu"`,
			`r.yaml:9:5: constraints[4] must be a string, got a whole number (3); put it in quotes to use it as text`}},
		"negative gpus": {base + "gpus: -2\n", []string{
			`r.yaml:4:7: gpus is -2: give 0 or more`}},
		"negative cpus": {base + "compute:\n  cpus: -0.5\n", []string{
			`r.yaml:5:9: compute.cpus is -0.5: give a number of CPUs, 0 or more (0 means no limit)`}},
		"gpus differ": {base + "gpus: 1\ncompute:\n  gpus: 2\n", []string{
			`r.yaml:4:7: gpus is 1 but compute.gpus is 2: set only one of them`}},
		"bad memory": {base + "compute: {memory: lots}\n", []string{
			`r.yaml:4:19: compute.memory "lots" is not valid: give a number of bytes, optionally with a suffix Ki, Mi, Gi, Ti (powers of 1024; "MiB" works too) or K, M, G, T (powers of 1000), such as "4Gi" or "512Mi"`}},
		"bad max_log_size": {base + "max_log_size: 4GB\n", []string{
			`r.yaml:4:15: max_log_size "4GB" is not valid: it is ambiguous: write "4GiB" (powers of 1024) or "4G" (powers of 1000)`}},
		"max_log_size too small": {base + "max_log_size: 1KiB\n", []string{
			`r.yaml:4:15: max_log_size "1KiB" is below the smallest log cap of 64KiB: give at least "64KiB", or leave it out for the agent's default`}},
		"max_log_size not a scalar": {base + "max_log_size: [1]\n", []string{
			`r.yaml:4:15: max_log_size must be a size such as "16MiB", got a list`}},
		"bad duration string": {base + "scheduling: {max_duration: 1 day}\n", []string{
			`r.yaml:4:28: scheduling.max_duration "1 day" is not valid: give a duration greater than 0 such as "30m" or "1h30m", or a number of hours`}},
		"too many hours": {base + "scheduling: {max_duration: 1e300}\n", []string{
			`r.yaml:4:28: scheduling.max_duration is 1e+300 hours: give at most 2562047 hours (about 292 years)`}},
		"negative hours": {base + "scheduling: {max_duration: -1}\n", []string{
			`r.yaml:4:28: scheduling.max_duration is -1 hours: give a number of hours greater than 0, or a duration such as "30m"`}},
		"bad env key": {base + "env_variables:\n  MY-VAR: x\n", []string{
			`r.yaml:5:3: env_variables: environment variable name "MY-VAR" is not valid: use letters, digits and '_', not starting with a digit`}},
		"env value not a scalar": {base + "env_variables: {A: [1]}\n", []string{
			`r.yaml:4:20: env_variables.A must be a string, number or boolean, got a list`}},
		"env list item without value": {base + "env_variables:\n  - key: A\n", []string{
			`r.yaml:5:5: env_variables[0] needs both key and value, such as {key: LOG_LEVEL, value: info}`}},
		"env key given twice": {base + "env_variables:\n  - {key: A, value: x}\n  - {key: A, value: y}\n", []string{
			`r.yaml:6:11: env_variables: A is set twice (also at r.yaml:5:11): keep one`}},
		"bad secret name": {base + "secrets: [ok, Not_OK]\n", []string{
			`r.yaml:4:15: secrets: secret name "Not_OK" is not valid: use lowercase letters, digits, '.' and '-', start and end with a letter or digit, at most 253 characters`}},
		"secrets without value": {base + "secrets:\n", []string{
			`r.yaml:4:1: field "secrets" has no value: write secrets: [] for no secrets, or remove the field for all of them`}},
		"nothing usable in name": {"name: ___\nimage: b\ncommand: c\n", []string{
			`r.yaml:1:7: run name "___" has nothing usable in it: use lowercase letters, digits, '.' and '-', starting and ending with a letter or digit`}},
		"not a mapping": {"- name: a\n", []string{
			`r.yaml:1:1: run spec must be a mapping of fields such as "name: hello", got a list`}},
		"empty": {"# nothing\n", []string{
			`r.yaml:1:1: run spec is empty: give at least name, image and command`}},
		"invalid yaml": {"name: a\n  image: b\n", []string{
			"r.yaml:2:3: invalid YAML: mapping values are not allowed in this context: a key is indented under a value that is not a mapping: line 2's `image:` is indented more than `name:` on line 1; indent it like its siblings, or make the line above a mapping"}},
		"two documents": {base + "---\nname: b\n", []string{
			`r.yaml:4:1: run spec holds more than one YAML document: keep one, and remove the second "---"`}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			s, _, err := Parse("r.yaml", []byte(tt.src))
			if s != nil {
				t.Errorf("got spec %+v, want nil", s)
			}
			if got := problems(t, err); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestParseHCLErrors(t *testing.T) {
	const base = "name = \"a\"\nimage = \"b\"\ncommand = \"c\"\n" // lines 1-3
	tests := map[string]struct {
		src  string
		want []string
	}{
		"unknown attribute": {base + "parameters = {}\n", []string{
			`r.hcl:4:1: unknown field "parameters"; ` + knownTop}},
		"unknown block": {base + "integration {}\n", []string{
			`r.hcl:4:1: unknown field "integration"; ` + knownTop}},
		"bad api access": {base + "api {\n  secrets = \"all\"\n}\n", []string{
			`r.hcl:5:13: api.secrets "all" is not valid: give "read" (the default: the run's token lists the secrets the run was given) or "write" (it may also create and delete your secrets)`}},
		"unknown nested attribute": {base + "compute {\n  gpu = 1\n}\n", []string{
			`r.hcl:5:3: unknown field "compute.gpu" (did you mean "gpus"?); known fields in compute are gpus, cpus, memory, cluster`}},
		"block written as attribute": {base + "compute = { gpus = 1 }\n", []string{
			`r.hcl:4:1: compute is a block: write compute { ... } without "="`}},
		"attribute written as block": {base + "env_variables {\n  A = \"b\"\n}\n", []string{
			`r.hcl:4:1: env_variables is an attribute, not a block: write env_variables = ...`}},
		"labelled block": {base + "scheduling \"x\" {}\n", []string{
			`r.hcl:4:12: scheduling block takes no label: write scheduling { ... }`}},
		"repeated block": {base + "compute {}\ncompute {}\n", []string{
			`r.hcl:5:1: compute block is given twice (also at r.hcl:4:1): merge them into one`}},
		"command not a string": {"name = \"a\"\nimage = \"b\"\ncommand = 42\n", []string{
			`r.hcl:3:11: command must be a string, got a number (42)`}},
		"missing fields at body start": {"# comment\ngpus = 1\n", []string{
			`r.hcl:1:1: missing required field "name": every run spec needs name, image and command`,
			`r.hcl:1:1: missing required field "image": every run spec needs name, image and command`,
			`r.hcl:1:1: missing required field "command": every run spec needs name, image and command`}},
		"null value": {"name = \"a\"\nimage = null\ncommand = \"c\"\n", []string{
			`r.hcl:2:9: image has no value: give one or remove it`}},
		"gpus differ": {base + "gpus = 1\ncompute {\n  gpus = 2\n}\n", []string{
			`r.hcl:4:8: gpus is 1 but compute.gpus is 2: set only one of them`}},
		"bad duration string": {base + "scheduling {\n  max_duration = \"soon\"\n}\n", []string{
			`r.hcl:5:18: scheduling.max_duration "soon" is not valid: give a duration greater than 0 such as "30m" or "1h30m", or a number of hours`}},
		"bad max_log_size": {base + "max_log_size = \"lots\"\n", []string{
			`r.hcl:4:16: max_log_size "lots" is not valid: give a number of bytes, optionally with a suffix Ki, Mi, Gi, Ti (powers of 1024; "MiB" works too) or K, M, G, T (powers of 1000), such as "4Gi" or "512Mi"`}},
		"max_log_size of wrong type": {base + "max_log_size = true\n", []string{
			`r.hcl:4:16: max_log_size must be a size such as "16MiB", got a bool (true)`}},
		"duration of wrong type": {base + "scheduling {\n  max_duration = true\n}\n", []string{
			`r.hcl:5:18: scheduling.max_duration must be a number of hours or a duration such as "30m", got a bool (true)`}},
		"retries not a whole number": {base + "retries = 1.5\n", []string{
			`r.hcl:4:11: retries must be a whole number, got a number (1.5)`}},
		"too many retries": {base + "retries = 20\n", []string{
			`r.hcl:4:11: retries is 20: give how many times the run is placed again when its node is lost, from 0 to 10`}},
		"constraints not a list": {base + "constraints = \"rack = r1\"\n", []string{
			`r.hcl:4:15: constraints must be a list of strings such as ["node_class = gpu"], got a string ("rack = r1")`}},
		"bad constraint": {base + "constraints = [\"node_class = gpu\", \"rack ~ r2\", true]\n", []string{
			`r.hcl:4:36: constraints[1]: "rack ~ r2": use KEY = VALUE or KEY != VALUE, such as "node_class = gpu"`,
			`r.hcl:4:49: constraints[2] must be a string, got a bool (true)`}},
		"env not a map": {base + "env_variables = [\"A\"]\n", []string{
			`r.hcl:4:17: env_variables must be a map such as { LOG_LEVEL = "info" }, got a list`}},
		"env key given twice": {base + "env_variables = { A = 1, A = 2 }\n", []string{
			`r.hcl:4:26: env_variables: A is set twice (also at r.hcl:4:19): keep one`}},
		"secret not a string": {base + "secrets = [\"ok\", 3]\n", []string{
			`r.hcl:4:18: secrets[1] must be a string, got a number (3)`}},
		"variables not allowed": {"name = var.name\nimage = \"b\"\ncommand = \"c\"\n", []string{
			`r.hcl:1:8: variables not allowed; Variables may not be used here`}},
		"syntax error": {"name = \"a\" image = \"b\"\n", []string{
			`r.hcl:1:12: missing newline after argument; An argument definition must end with a newline`}},
		"unclosed string": {"name = \"a\nimage = \"b\"\n", []string{
			`r.hcl:1:10: invalid multi-line string; Quoted strings may not be split over multiple lines. To produce a multi-line string, either use the \n escape to represent a newline character or use the "heredoc" multi-line template syntax`,
			`r.hcl:1:10: unterminated template string; No closing marker was found for the string`,
			`r.hcl:2:12: invalid multi-line string; Quoted strings may not be split over multiple lines. To produce a multi-line string, either use the \n escape to represent a newline character or use the "heredoc" multi-line template syntax`}},
		"unclosed block": {base + "compute {\n  gpus = 1\n", []string{
			`r.hcl:4:9: unclosed configuration block; There is no closing brace for this block before the end of the file. This may be caused by incorrect brace nesting elsewhere in this file`}},
		"YAML syntax in an HCL file": {"name: a\n", []string{
			`r.hcl:1:1: argument or block definition required; An argument or block definition is required here. To set an argument, use the equals sign "=" to introduce the argument value`}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			s, _, err := Parse("r.hcl", []byte(tt.src))
			if s != nil {
				t.Errorf("got spec %+v, want nil", s)
			}
			if got := problems(t, err); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

// TestSeveralErrors checks that every problem in a file is reported at once,
// in file order.
func TestSeveralErrors(t *testing.T) {
	tests := map[string]struct {
		path string
		want []string
	}{
		"yaml": {"testdata/errors.yaml", []string{
			`testdata/errors.yaml:2:1: missing required field "command": every run spec needs name, image and command`,
			`testdata/errors.yaml:3:8: image must be a string, got a list`,
			`testdata/errors.yaml:4:7: gpus is -1: give 0 or more`,
			`testdata/errors.yaml:6:9: compute.cpus must be a number, got a string ("lots")`,
			`testdata/errors.yaml:7:11: compute.memory "4GB" is not valid: it is ambiguous: write "4GiB" (powers of 1024) or "4G" (powers of 1000)`,
			`testdata/errors.yaml:8:3: unknown field "compute.instance"; known fields in compute are gpus, cpus, memory, cluster`,
			`testdata/errors.yaml:10:3: env_variables: environment variable name "9LIVES" is not valid: use letters, digits and '_', not starting with a digit`,
			`testdata/errors.yaml:11:11: secrets: secret name "Bad_Name" is not valid: use lowercase letters, digits, '.' and '-', start and end with a letter or digit, at most 253 characters`,
			`testdata/errors.yaml:13:17: scheduling.max_duration is 0 hours: give a number of hours greater than 0, or a duration such as "30m"`,
		}},
		"hcl": {"testdata/errors.hcl", []string{
			`testdata/errors.hcl:1:1: missing required field "command": every run spec needs name, image and command`,
			`testdata/errors.hcl:3:9: image must be a string, got a list`,
			`testdata/errors.hcl:4:9: gpus is -1: give 0 or more`,
			`testdata/errors.hcl:7:14: compute.cpus must be a number, got a string ("lots")`,
			`testdata/errors.hcl:8:14: compute.memory "4GB" is not valid: it is ambiguous: write "4GiB" (powers of 1024) or "4G" (powers of 1000)`,
			`testdata/errors.hcl:9:3: unknown field "compute.instance"; known fields in compute are gpus, cpus, memory, cluster`,
			`testdata/errors.hcl:13:3: env_variables: environment variable name "9LIVES" is not valid: use letters, digits and '_', not starting with a digit`,
			`testdata/errors.hcl:16:12: secrets: secret name "Bad_Name" is not valid: use lowercase letters, digits, '.' and '-', start and end with a letter or digit, at most 253 characters`,
			`testdata/errors.hcl:19:18: scheduling.max_duration is 0 hours: give a number of hours greater than 0, or a duration such as "30m"`,
		}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, _, err := ParseFile(tt.path)
			if got := problems(t, err); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

// TestMisspeltRequiredField checks that a misspelt required field is one
// problem at the typo, saying what it most likely is and that it is
// required, rather than a "missing" problem at the top of the file first.
func TestMisspeltRequiredField(t *testing.T) {
	const required = "every run spec needs name, image and command"
	tests := map[string]struct {
		file string
		src  string
		want []string
	}{
		"yaml command": {"r.yaml", "name: a\nimage: b\ncomand: echo hi\n", []string{
			`r.yaml:3:1: unknown field "comand": did you mean "command"? command is required: ` + required}},
		"hcl command": {"r.hcl", "name = \"a\"\nimage = \"b\"\ncomand = \"echo hi\"\n", []string{
			`r.hcl:3:1: unknown field "comand": did you mean "command"? command is required: ` + required}},
		"yaml two typos and a field missing": {"r.yaml", "# a comment\nnme: a\ncomand: echo hi\n", []string{
			`r.yaml:2:1: unknown field "nme": did you mean "name"? name is required: ` + required,
			`r.yaml:2:1: missing required field "image": ` + required,
			`r.yaml:3:1: unknown field "comand": did you mean "command"? command is required: ` + required}},
		"yaml typo of a field that is given": {"r.yaml", "name: a\nimage: b\ncommand: c\ncomand: d\n", []string{
			`r.yaml:4:1: unknown field "comand" (did you mean "command"?); ` + knownTop}},
		"yaml typo given twice": {"r.yaml", "name: a\nimage: b\ncomand: c\ncommnd: d\n", []string{
			`r.yaml:3:1: unknown field "comand": did you mean "command"? command is required: ` + required,
			`r.yaml:4:1: unknown field "commnd" (did you mean "command"?); ` + knownTop}},
		"yaml typo of another field is not folded": {"r.yaml", "name: a\nimage: b\ngpu: 1\n", []string{
			`r.yaml:1:1: missing required field "command": ` + required,
			`r.yaml:3:1: unknown field "gpu" (did you mean "gpus"?); ` + knownTop}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, _, err := Parse(tt.file, []byte(tt.src))
			if got := problems(t, err); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}
