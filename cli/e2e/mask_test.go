package e2e

import (
	"strings"
	"testing"
)

// TestMaskedLogs runs, with mask_secrets, a workload that prints its
// secret plainly, base64-encoded, split across two writes and inside a
// longer line: its stored and its streamed logs show *** in each place,
// and never the value; a run without the option prints it.
func TestMaskedLogs(t *testing.T) {
	_, image := containerdEnv(t)
	for _, rt := range []string{"exec", "containerd"} {
		t.Run(rt, func(t *testing.T) {
			a := startRunAgent(t, rt)
			user := a.newUser("alice")
			const value = "mask-canary-8241"
			a.mustHush(user, "", "create", "secret", "env", "CANARY="+value)
			a.mustHush(user, "", "create", "secret", "env", "TINY=abc")
			script := `echo "plain $CANARY"
printf '%s' "$CANARY" | base64
printf 'split %s' "${CANARY%????}"; sleep 0.3; printf '%s end\n' "${CANARY#${CANARY%????}}"
echo "url mask-canary%2D8241 in a longer line: x${CANARY}y"
echo "tiny $TINY"`
			r := a.mustHush(user, "", "run", "-f", writeSpec(t, "masked", image, script, "mask_secrets: true"))
			stored := a.mustHush(user, "", "logs", "masked").stdout
			want := "plain ***\n***\nsplit *** end\nurl mask-canary%2D8241 in a longer line: x***y\ntiny abc\n"
			for what, got := range map[string]string{"streamed": r.stdout, "stored": stored} {
				if strings.Contains(got, value) || strings.Contains(got, "bWFzay1jYW5hcnktODI0MQ") || !strings.Contains(got, want) {
					t.Errorf("%s log: got\n%s\nwant it to hold\n%s", what, got, want)
				}
			}
			if desc := a.mustHush(user, "", "describe", "run", "masked").stdout; !strings.Contains(desc, "secret tiny has a value or line shorter than 4 characters") {
				t.Errorf("no warning about the short value:\n%s", desc)
			}
			if out := a.mustHush(user, "", "run", "-f", writeSpec(t, "unmasked", image, `echo "plain $CANARY"`)).stdout; !strings.Contains(out, "plain "+value) {
				t.Errorf("a run without mask_secrets: got\n%s", out)
			}
		})
	}
}
