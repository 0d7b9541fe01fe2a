package e2e

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

// listTokens lists the tokens token may see, as the CLI prints them in
// JSON.
func listTokens(t *testing.T, a *agent, token string) []map[string]any {
	t.Helper()
	var out []map[string]any
	if err := json.Unmarshal([]byte(a.mustHush(token, "", "acl", "token", "list", "-o", "json").stdout), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTokenLifecycle: a token made with --ttl works, lists, and is refused
// with a message that says it expired once it has; revoking alice's token
// stops that token only: her running run (and its own token), her secrets
// and her other tokens stay.
func TestTokenLifecycle(t *testing.T) {
	a := startRunAgent(t, "exec")
	alice := a.newUser("alice")
	other := a.newUser("alice")
	a.mustHush(alice, "", "create", "secret", "env", "SECRET_STUFF=kept-value-41")

	// The run's token cannot list tokens; it can list its owner's secrets
	// before and after alice's token is revoked.
	ticker := `hush acl token list >/dev/null 2>&1 || echo run-token-cannot-list
i=0
while :; do i=$((i+1)); echo "tick $i $(hush get secrets -o name 2>&1)"; sleep 0.3; done`
	a.mustHush(alice, "", "run", "--no-follow", "-f", writeSpec(t, "ticker", "x", ticker))
	waitForLog(t, a, alice, "ticker", "tick 1 secret-stuff")

	short := a.mustHush(a.token, "", "acl", "token", "create", "--user", "alice", "--ttl", "4s", "--description", "short-lived")
	if !strings.Contains(short.stdout, "Expires:") {
		t.Errorf("create --ttl: %s", short)
	}
	shortToken := strings.TrimSpace(bannerValue(t, short.stdout, "Token:"))
	if r := a.hush(shortToken, "", "get", "secrets", "-o", "name"); r.code != 0 || r.stdout != "secret-stuff\n" {
		t.Fatalf("use the token before it expires: %s", r)
	}

	// Root sees every token, never a token itself; alice sees her own,
	// her run's included.
	table := a.mustHush(a.token, "", "acl", "token", "list").stdout
	for _, want := range []string{"ACCESSOR", "LAST USED", "root (management)", "short-lived"} {
		if !strings.Contains(table, want) {
			t.Errorf("list as root lacks %q:\n%s", want, table)
		}
	}
	for _, secret := range []string{a.token, alice, other, shortToken} {
		if strings.Contains(table, secret) {
			t.Errorf("list as root shows a token's secret:\n%s", table)
		}
	}
	var aliceAccessor, shortAccessor string
	var expiresAt time.Time
	runTokens := 0
	mine := listTokens(t, a, alice)
	for _, tok := range mine {
		if tok["user"] != "alice" {
			t.Errorf("alice lists a token of %v", tok["user"])
		}
		if tok["run_id"] != nil {
			runTokens++
		}
		if tok["description"] == "short-lived" {
			shortAccessor = tok["accessor"].(string)
			expiresAt, _ = time.Parse(time.RFC3339Nano, tok["expires_at"].(string))
		}
		if tok["last_used_at"] != nil && tok["run_id"] == nil && tok["description"] == nil && tok["accessor"] != "" {
			// alice's first token made the run and the secret; the other
			// has not been used yet.
			aliceAccessor = tok["accessor"].(string)
		}
	}
	if len(mine) != 4 || runTokens != 1 || shortAccessor == "" || aliceAccessor == "" || expiresAt.IsZero() {
		t.Fatalf("alice lists %v; want her 3 tokens and her run's, the short-lived one with an expiry", mine)
	}

	// Once it expires, the token is refused, and the CLI says why and what
	// to do.
	time.Sleep(time.Until(expiresAt) + 100*time.Millisecond)
	r := a.hush(shortToken, "", "get", "secrets")
	if r.code != 1 || !strings.Contains(r.stderr, "expired at") || !strings.Contains(r.stderr, "Your token has expired") {
		t.Errorf("an expired token: %s; want exit 1 saying that it expired", r)
	}
	if code, body := a.request("GET", "/v1/secrets", shortToken, ""); code != 401 || !strings.Contains(body, `"code":"token_expired"`) {
		t.Errorf("an expired token over the API: %d %s, want 401 token_expired", code, body)
	}
	if table := a.mustHush(other, "", "acl", "token", "list").stdout; !strings.Contains(table, "expired ") {
		t.Errorf("the listing does not show the token expired:\n%s", table)
	}

	// Revoking alice's token ends that token, nothing else of hers.
	if r := a.mustHush(a.token, "", "acl", "token", "revoke", aliceAccessor); r.stdout != "✔  Revoked token "+aliceAccessor+"\n" {
		t.Errorf("revoke: %s", r)
	}
	if r := a.hush(alice, "", "get", "secrets"); r.code != 1 || !strings.Contains(r.stderr, "token not valid") {
		t.Errorf("the revoked token: %s; want it refused", r)
	}
	before := a.mustHush(other, "", "logs", "ticker").stdout
	if !strings.Contains(before, "run-token-cannot-list") {
		t.Errorf("the run's token listed tokens; its log:\n%s", before)
	}
	n := strings.Count(before, "tick ")
	after := waitForLog(t, a, other, "ticker", "tick "+strconv.Itoa(n+2)+" ")
	for _, line := range strings.Split(after, "\n") {
		if strings.HasPrefix(line, "tick ") && line != "tick "+strings.Fields(line)[1]+" secret-stuff" {
			t.Errorf("the run's token stopped working: %q", line)
		}
	}
	if s := runStatus(t, a, other, "ticker")["status"]; s != "RUNNING" {
		t.Errorf("alice's run after her token's revocation: %v, want RUNNING", s)
	}
	if r := a.mustHush(other, "", "get", "secrets", "-o", "name"); r.stdout != "secret-stuff\n" {
		t.Errorf("alice's secrets after her token's revocation: %q, want secret-stuff", r.stdout)
	}
	if got := listTokens(t, a, other); len(got) != 3 {
		t.Errorf("alice's tokens after the revocation: %v; want 3 (the other, the expired one, the run's)", got)
	}
	a.mustHush(other, "", "stop", "run", "ticker")
}
