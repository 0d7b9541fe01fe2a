package e2e

import (
	"strings"
	"testing"
)

// A run gets only the secrets it was given, and its token reaches no more:
// it cannot hand a child run other secrets, write secrets without a grant,
// or reach runs it did not launch.
func TestRunTokenScope(t *testing.T) {
	t.Parallel()
	a := startRunAgent(t, "exec")
	user := a.newUser("alice")
	a.mustHush(user, "", "create", "secret", "env", "GIVEN=canary-given-41")
	a.mustHush(user, "", "create", "secret", "env", "OTHER=canary-other-43")
	a.mustHush(user, "", "run", "-f", writeSpec(t, "bystander", "x", "echo bystander says canary-other-43"))

	parent := `printf 'name: child\nimage: x\ncommand: echo "child GIVEN=[$GIVEN] OTHER=[${OTHER:-}]"\n' > "$HOME_DIR/child.yaml"
hush run -f "$HOME_DIR/child.yaml"
printf 'name: greedy\nimage: x\ncommand: echo "greedy OTHER=[$OTHER]"\nsecrets: [other]\n' > "$HOME_DIR/greedy.yaml"
hush run -f "$HOME_DIR/greedy.yaml" || echo "greedy refused"
printf 'name: writer\nimage: x\ncommand: "true"\napi: {secrets: write}\n' > "$HOME_DIR/writer.yaml"
hush run -f "$HOME_DIR/writer.yaml" || echo "writer refused"
echo "listed: $(hush get secrets -o name | tr '\n' ' ')"
hush delete secret other -y || echo "delete refused"
hush create secret env PLANTED=x || echo "create refused"
hush logs bystander || echo "bystander hidden"
echo "runs: $(hush get runs -o name | tr '\n' ' ')"`
	spec := writeSpec(t, "parent", "x", "HOME_DIR=$(mktemp -d)\n"+parent, "secrets: [given]")
	r := a.hush(user, "", "run", "-f", spec)
	out := r.stdout + r.stderr
	for _, want := range []string{
		"child GIVEN=[canary-given-41] OTHER=[]",
		"may get only the secrets that run was given (given), not other",
		"greedy refused",
		`cannot have api.secrets "write": the launching run does not have it`,
		"writer refused",
		"listed: given \n",
		"no secret named other", // not even visible to the run
		"delete refused",
		"a run's token cannot create secrets unless its run spec grants it",
		"create refused",
		"bystander hidden",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the parent run's output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "canary-other-43") {
		t.Errorf("a run given only 'given' saw the other secret's value:\n%s", out)
	}
	if runs := regexpLine(out, "runs: "); !strings.Contains(runs, "parent") || !strings.Contains(runs, "child") || strings.Contains(runs, "bystander") {
		t.Errorf("the run's token lists runs %q, want its own and its child's only", runs)
	}
	ids := a.secretIDs(user)
	if _, ok := ids["other"]; !ok {
		t.Errorf("the run's token deleted secret other: %v", ids)
	}
	if _, ok := ids["planted"]; ok {
		t.Errorf("the run's token created a secret: %v", ids)
	}
	desc := a.mustHush(user, "", "describe", "run", "child").stdout
	if !strings.Contains(desc, "Secrets:    those of its parent: given\n") || !strings.Contains(desc, "API:        secrets read\n") {
		t.Errorf("describe run child:\n%s", desc)
	}

	// With the grant, a run may write its owner's secrets, and describe
	// says so.
	granted := writeSpec(t, "granted", "x", "hush create secret env PLANTED=from-run && hush delete secret planted -y", "api: {secrets: write}")
	a.mustHush(user, "", "run", "-f", granted)
	if desc := a.mustHush(user, "", "describe", "run", "granted").stdout; !strings.Contains(desc, "API:        secrets write\n") {
		t.Errorf("describe run granted:\n%s", desc)
	}
	if ids := a.secretIDs(user); len(ids) != 2 {
		t.Errorf("after the granted run created and deleted a secret: %v", ids)
	}
}

// A NUL byte in an env value would set other variables in runs: the agent
// refuses it.
func TestNULValueRefused(t *testing.T) {
	t.Parallel()
	a := startAgent(t, "")
	user := a.newUser("alice")
	// "a\x00INJECTED=1", base64 encoded as JSON carries bytes.
	code, body := a.request("POST", "/v1/secrets", user,
		`{"name":"nulval","type":"env","fields":{"key":"NULVAL"},"data":{"value":"YQBJTkpFQ1RFRD0x"}}`)
	if code != 400 || !strings.Contains(body, "secret nulval: value contains a NUL byte") {
		t.Errorf("got %d %s, want 400 naming the secret and the NUL byte", code, body)
	}
	if ids := a.secretIDs(user); len(ids) != 0 {
		t.Errorf("secrets after the refused create: %v", ids)
	}
}

// regexpLine returns the rest of the first line of s that starts with
// prefix.
func regexpLine(s, prefix string) string {
	for _, line := range strings.Split(s, "\n") {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			return rest
		}
	}
	return ""
}
