package spec

import (
	"reflect"
	"testing"
	"time"

	"github.com/hush-sh/hush/sdk/api"
)

const (
	yamlBase = "name: a\nimage: b\ncommand: c\n"                // lines 1-3
	hclBase  = "name = \"a\"\nimage = \"b\"\ncommand = \"c\"\n" // lines 1-3
)

func TestParseRefresh(t *testing.T) {
	sec := func(d time.Duration) api.Duration { return api.Duration(d) }
	tests := map[string]struct {
		file, src     string
		refresh       api.Refresh
		secrets       []string
		secretRefresh map[string]api.Refresh
		warnings      []string
	}{
		"yaml top level": {file: "r.yaml", src: yamlBase + "refresh: 1m\non_change: none\n",
			refresh: api.Refresh{Every: sec(time.Minute), OnChange: "none"}},
		"hcl top level": {file: "r.hcl", src: hclBase + "refresh = \"1m\"\non_change = \"none\"\n",
			refresh: api.Refresh{Every: sec(time.Minute), OnChange: "none"}},
		"yaml refresh alone": {file: "r.yaml", src: yamlBase + "refresh: 90s\n",
			refresh: api.Refresh{Every: sec(90 * time.Second)}},
		"yaml signal normalized": {file: "r.yaml", src: yamlBase + "refresh: 5m\non_change: signal:hup\n",
			refresh: api.Refresh{Every: sec(5 * time.Minute), OnChange: "signal:SIGHUP"}},
		"hcl signal normalized": {file: "r.hcl", src: hclBase + "refresh = \"5m\"\non_change = \"signal:USR1\"\n",
			refresh: api.Refresh{Every: sec(5 * time.Minute), OnChange: "signal:SIGUSR1"}},
		"yaml per secret, mixed flow list": {file: "r.yaml",
			src:     yamlBase + "secrets: [db, {name: vault-token, refresh: 30s, on_change: \"signal:SIGHUP\"}, hf]\n",
			secrets: []string{"db", "vault-token", "hf"},
			secretRefresh: map[string]api.Refresh{
				"vault-token": {Every: sec(30 * time.Second), OnChange: "signal:SIGHUP"}}},
		"yaml per secret, block list": {file: "r.yaml",
			src:     yamlBase + "secrets:\n  - db\n  - name: vault-token\n    refresh: 30s\n  - name: gcp\n",
			secrets: []string{"db", "vault-token", "gcp"},
			secretRefresh: map[string]api.Refresh{
				"vault-token": {Every: sec(30 * time.Second)}}},
		"hcl per secret, mixed list": {file: "r.hcl",
			src:     hclBase + "secrets = [\"db\", { name = \"vault-token\", refresh = \"30s\", on_change = \"signal:hup\" }, \"hf\"]\n",
			secrets: []string{"db", "vault-token", "hf"},
			secretRefresh: map[string]api.Refresh{
				"vault-token": {Every: sec(30 * time.Second), OnChange: "signal:SIGHUP"}}},
		"hcl list not written out": {file: "r.hcl",
			src:     hclBase + "secrets = ([\"db\", { name = \"vault-token\", refresh = \"30s\" }])\n",
			secrets: []string{"db", "vault-token"},
			secretRefresh: map[string]api.Refresh{
				"vault-token": {Every: sec(30 * time.Second)}}},
		"yaml both, secret on_change takes the run's refresh": {file: "r.yaml",
			src:     yamlBase + "refresh: 10m\non_change: restart\nsecrets:\n  - {name: db, on_change: none}\n  - {name: tls, refresh: 1m}\n",
			refresh: api.Refresh{Every: sec(10 * time.Minute), OnChange: "restart"},
			secrets: []string{"db", "tls"},
			secretRefresh: map[string]api.Refresh{
				"db":  {OnChange: "none"},
				"tls": {Every: sec(time.Minute)}}},
		"hcl both": {file: "r.hcl",
			src:     hclBase + "refresh = \"10m\"\nsecrets = [{ name = \"db\", on_change = \"none\" }]\n",
			refresh: api.Refresh{Every: sec(10 * time.Minute)},
			secrets: []string{"db"},
			secretRefresh: map[string]api.Refresh{
				"db": {OnChange: "none"}}},
		"a mapping with only a name is a plain name": {file: "r.yaml",
			src:     yamlBase + "secrets: [{name: db}]\n",
			secrets: []string{"db"}},
		"run on_change with a secret's refresh": {file: "r.yaml",
			src:     yamlBase + "on_change: none\nsecrets: [{name: db, refresh: 1m}]\n",
			refresh: api.Refresh{OnChange: "none"},
			secrets: []string{"db"},
			secretRefresh: map[string]api.Refresh{
				"db": {Every: sec(time.Minute)}}},
		"yaml on_change without refresh warns": {file: "r.yaml",
			src:      yamlBase + "on_change: none\n",
			refresh:  api.Refresh{OnChange: "none"},
			warnings: []string{`r.yaml:4:12: on_change has no effect without refresh: add a refresh such as "5m" to the run or to a secret, or remove on_change`}},
		"hcl on_change without refresh warns": {file: "r.hcl",
			src:      hclBase + "on_change = \"none\"\n",
			refresh:  api.Refresh{OnChange: "none"},
			warnings: []string{`r.hcl:4:13: on_change has no effect without refresh: add a refresh such as "5m" to the run or to a secret, or remove on_change`}},
		"yaml secret on_change without refresh warns": {file: "r.yaml",
			src:           yamlBase + "secrets:\n  - {name: db, on_change: none}\n  - {name: tls, refresh: 1m}\n",
			secrets:       []string{"db", "tls"},
			secretRefresh: map[string]api.Refresh{"db": {OnChange: "none"}, "tls": {Every: sec(time.Minute)}},
			warnings:      []string{`r.yaml:5:27: secrets[0]: on_change has no effect without refresh: give the secret or the run a refresh such as "5m", or remove on_change`}},
		"hcl secret on_change without refresh warns": {file: "r.hcl",
			src:           hclBase + "secrets = [\"x\", { name = \"db\", on_change = \"none\" }]\n",
			secrets:       []string{"x", "db"},
			secretRefresh: map[string]api.Refresh{"db": {OnChange: "none"}},
			warnings:      []string{`r.hcl:4:44: secrets[1]: on_change has no effect without refresh: give the secret or the run a refresh such as "5m", or remove on_change`}},
		"plain duplicate still only warns": {file: "r.yaml",
			src:      yamlBase + "secrets: [db, {name: db}]\n",
			secrets:  []string{"db"},
			warnings: []string{`r.yaml:4:22: secret "db" is listed twice (also at r.yaml:4:11); it is used once`}},
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
			if s.Refresh != tc.refresh {
				t.Errorf("got refresh %+v, want %+v", s.Refresh, tc.refresh)
			}
			if !reflect.DeepEqual(s.Secrets, tc.secrets) {
				t.Errorf("got secrets %q, want %q", s.Secrets, tc.secrets)
			}
			if !reflect.DeepEqual(s.SecretRefresh, tc.secretRefresh) {
				t.Errorf("got secret refresh %+v, want %+v", s.SecretRefresh, tc.secretRefresh)
			}
			req := s.Request()
			if req.Refresh != tc.refresh || !reflect.DeepEqual(req.SecretRefresh, tc.secretRefresh) {
				t.Errorf("got request refresh %+v %+v, want %+v %+v", req.Refresh, req.SecretRefresh, tc.refresh, tc.secretRefresh)
			}
		})
	}
}

func TestRequestClonesSecretRefresh(t *testing.T) {
	s := &RunSpec{SecretRefresh: map[string]api.Refresh{"db": {OnChange: "none"}}}
	req := s.Request()
	req.SecretRefresh["db"] = api.Refresh{OnChange: "restart"}
	if got := s.SecretRefresh["db"].OnChange; got != "none" {
		t.Errorf("got spec on_change %q after changing the request, want %q", got, "none")
	}
}

func TestParseRefreshErrors(t *testing.T) {
	const (
		badDuration = `give how often to fetch the secrets again as a duration such as "30s" or "5m"`
		badOnChange = `is not valid: give "restart" (the default), "none", or "signal:" followed by a signal such as SIGHUP`
	)
	tests := map[string]struct {
		file, src string
		want      []string
	}{
		"yaml duration that does not parse": {"r.yaml", yamlBase + "refresh: often\n", []string{
			`r.yaml:4:10: refresh "often" is not valid: ` + badDuration}},
		"yaml zero duration": {"r.yaml", yamlBase + "refresh: 0s\n", []string{
			`r.yaml:4:10: refresh "0s" is not valid: ` + badDuration}},
		"yaml bare number": {"r.yaml", yamlBase + "refresh: 30\n", []string{
			`r.yaml:4:10: refresh must be a duration such as "30s" or "5m", got a whole number (30)`}},
		"yaml too short": {"r.yaml", yamlBase + "refresh: 500ms\n", []string{
			`r.yaml:4:10: refresh of 500ms is shorter than the 1s the agent allows: each refresh calls the secret's provider`}},
		"yaml bad on_change": {"r.yaml", yamlBase + "refresh: 1m\non_change: reload\n", []string{
			`r.yaml:5:12: on_change "reload" ` + badOnChange}},
		"yaml unknown signal": {"r.yaml", yamlBase + "refresh: 1m\non_change: signal:KILL\n", []string{
			`r.yaml:5:12: on_change "signal:KILL" names a signal the agent does not send: give one of SIGHUP, SIGUSR1, SIGUSR2, SIGINT, SIGQUIT, SIGTERM, SIGWINCH`}},
		"yaml empty on_change": {"r.yaml", yamlBase + "refresh: 1m\non_change: \"\"\n", []string{
			`r.yaml:5:12: on_change is empty: give "restart", "none" or "signal:" followed by a signal such as SIGHUP, or leave it out`}},
		"yaml secret duration": {"r.yaml", yamlBase + "secrets:\n  - name: db\n    refresh: soon\n", []string{
			`r.yaml:6:14: secrets[0].refresh "soon" is not valid: ` + badDuration}},
		"yaml secret too short": {"r.yaml", yamlBase + "secrets: [{name: db, refresh: 10ms}]\n", []string{
			`r.yaml:4:31: the refresh of secret db of 10ms is shorter than the 1s the agent allows: each refresh calls the secret's provider`}},
		"yaml secret bad on_change": {"r.yaml", yamlBase + "secrets: [{name: db, refresh: 1m, on_change: never}]\n", []string{
			`r.yaml:4:46: secrets[0]: on_change "never" ` + badOnChange}},
		"yaml secret without name": {"r.yaml", yamlBase + "secrets:\n  - db\n  - refresh: 1m\n", []string{
			`r.yaml:6:5: secrets[1] needs a name: give the secret the settings are for, such as {name: vault-token, refresh: 5m}`}},
		"yaml secret name without value": {"r.yaml", yamlBase + "secrets: [{name: , refresh: 1m}]\n", []string{
			`r.yaml:4:12: field "secrets[0].name" has no value: give one or remove the field`}},
		"yaml secret unknown field": {"r.yaml", yamlBase + "secrets: [{name: db, refrsh: 1m}]\n", []string{
			`r.yaml:4:22: unknown field "secrets[0].refrsh" (did you mean "refresh"?); known fields in secrets[0] are name, refresh, on_change`}},
		"yaml secret bad name": {"r.yaml", yamlBase + "secrets: [{name: DB, refresh: 1m}]\n", []string{
			`r.yaml:4:18: secrets: secret name "DB" is not valid: use lowercase letters, digits, '.' and '-', start and end with a letter or digit, at most 253 characters`}},
		"yaml secret twice with settings": {"r.yaml", yamlBase + "secrets: [db, {name: db, refresh: 1m}]\n", []string{
			`r.yaml:4:22: secret "db" is listed twice (also at r.yaml:4:11) and has refresh settings here: list it once, with its settings`}},
		"yaml secret with settings, then twice": {"r.yaml", yamlBase + "secrets: [{name: db, refresh: 1m}, db]\n", []string{
			`r.yaml:4:36: secret "db" is listed twice (also at r.yaml:4:18, with refresh settings): list it once, with its settings`}},
		"yaml secrets not a list": {"r.yaml", yamlBase + "secrets: db\n", []string{
			`r.yaml:4:10: secrets must be a list of secret names such as [secret-stuff], or of mappings such as {name: vault-token, refresh: 5m}, got a string ("db")`}},
		"yaml every problem of a mapping at once": {"r.yaml", yamlBase + "secrets:\n  - refresh: x\n    on_change: y\n", []string{
			`r.yaml:5:5: secrets[0] needs a name: give the secret the settings are for, such as {name: vault-token, refresh: 5m}`,
			`r.yaml:5:14: secrets[0].refresh "x" is not valid: ` + badDuration,
			`r.yaml:6:16: secrets[0]: on_change "y" ` + badOnChange}},

		"hcl duration that does not parse": {"r.hcl", hclBase + "refresh = \"1 minute\"\n", []string{
			`r.hcl:4:11: refresh "1 minute" is not valid: ` + badDuration}},
		"hcl bare number": {"r.hcl", hclBase + "refresh = 60\n", []string{
			`r.hcl:4:11: refresh must be a duration such as "30s" or "5m", got a number (60)`}},
		"hcl too short": {"r.hcl", hclBase + "refresh = \"100ms\"\n", []string{
			`r.hcl:4:11: refresh of 100ms is shorter than the 1s the agent allows: each refresh calls the secret's provider`}},
		"hcl bad on_change": {"r.hcl", hclBase + "refresh = \"1m\"\non_change = \"reload\"\n", []string{
			`r.hcl:5:13: on_change "reload" ` + badOnChange}},
		"hcl on_change not a string": {"r.hcl", hclBase + "refresh = \"1m\"\non_change = true\n", []string{
			`r.hcl:5:13: on_change must be a string, got a bool (true)`}},
		"hcl secret duration": {"r.hcl", hclBase + "secrets = [{ name = \"db\", refresh = \"x\" }]\n", []string{
			`r.hcl:4:37: secrets[0].refresh "x" is not valid: ` + badDuration}},
		"hcl secret bad on_change": {"r.hcl", hclBase + "secrets = [{ name = \"db\", refresh = \"1m\", on_change = \"kill\" }]\n", []string{
			`r.hcl:4:55: secrets[0]: on_change "kill" ` + badOnChange}},
		"hcl secret without name": {"r.hcl", hclBase + "secrets = [\"x\", { refresh = \"1m\" }]\n", []string{
			`r.hcl:4:17: secrets[1] needs a name: give the secret the settings are for, such as { name = "vault-token", refresh = "5m" }`}},
		"hcl secret unknown field": {"r.hcl", hclBase + "secrets = [{ name = \"db\", onchange = \"none\" }]\n", []string{
			`r.hcl:4:27: unknown field "secrets[0].onchange" (did you mean "on_change"?); known fields in secrets[0] are name, refresh, on_change`}},
		"hcl secret field twice": {"r.hcl", hclBase + "secrets = [{ name = \"db\", name = \"x\" }]\n", []string{
			`r.hcl:4:27: field "secrets[0].name" is set twice (also at r.hcl:4:14): keep one`}},
		"hcl secret twice with settings": {"r.hcl", hclBase + "secrets = [\"db\", { name = \"db\", on_change = \"none\" }]\n", []string{
			`r.hcl:4:27: secret "db" is listed twice (also at r.hcl:4:12) and has refresh settings here: list it once, with its settings`}},
		"hcl secrets not a list": {"r.hcl", hclBase + "secrets = \"db\"\n", []string{
			`r.hcl:4:11: secrets must be a list of secret names such as ["secret-stuff"], or of objects such as { name = "vault-token", refresh = "5m" }, got a string ("db")`}},
		"hcl list not written out, no name": {"r.hcl", hclBase + "secrets = ([{ refresh = \"1m\" }])\n", []string{
			`r.hcl:4:11: secrets[0] needs a name: give the secret the settings are for, such as { name = "vault-token", refresh = "5m" }`}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, _, err := Parse(tc.file, []byte(tc.src))
			if s != nil {
				t.Errorf("got spec %+v, want nil", s)
			}
			if got := problems(t, err); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}
