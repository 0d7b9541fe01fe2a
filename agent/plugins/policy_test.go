package plugins

import (
	"errors"
	"strings"
	"testing"
)

func TestMatchRef(t *testing.T) {
	tests := map[string]struct {
		pattern, ref string
		want         bool
	}{
		"exact":              {"db", "db", true},
		"exact differs":      {"db", "db2", false},
		"prefix star":        {"alice/*", "alice/db", true},
		"star crosses slash": {"alice/*", "alice/team/db#pw", true},
		"other user":         {"alice/*", "bob/db", false},
		"user as prefix":     {"alice/*", "alice2/db", false},
		"star alone":         {"*", "anything/at/all", true},
		"middle star":        {"secret/*/alice", "secret/data/alice", true},
		"middle star miss":   {"secret/*/alice", "secret/data/bob", false},
		"overlapping ends":   {"a*a", "a", false},
		"two stars":          {"a*b*c", "a-b-b-c", true},
		"empty rest":         {"alice/*", "alice/", true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := matchRef(tc.pattern, tc.ref); got != tc.want {
				t.Errorf("matchRef(%q, %q) = %v, want %v", tc.pattern, tc.ref, got, tc.want)
			}
		})
	}
}

func TestCheckReference(t *testing.T) {
	h := loadHost(t, false, `
plugin "own" {
  path = "/opt/own"
  allow {
    users = ["*"]
    refs  = ["${user}/*"]
  }
  allow {
    users = ["carol"]
    refs  = ["shared/*"]
  }
}
plugin "few" {
  path = "/opt/few"
  allow {
    users = ["alice"]
    refs  = ["*"]
  }
}
plugin "closed" { path = "/opt/closed" }
`)
	tests := map[string]struct {
		user, provider, ref string
		want                string // "" when allowed
	}{
		"own reference":             {"alice", "own", "alice/db", ""},
		"another user's":            {"bob", "own", "alice/db", "user bob may name references of provider own that match bob/*, and alice/db does not"},
		"dot-dot out of one's own":  {"bob", "own", "bob/../alice/db", `has a ".." segment`},
		"a second block for a user": {"carol", "own", "shared/x", ""},
		"a block for someone else":  {"bob", "own", "shared/x", "does not"},
		"user not named":            {"bob", "few", "x", "provider few allows user bob no references"},
		"user named":                {"alice", "few", "anything", ""},
		"no allow blocks":           {"alice", "closed", "x", "provider closed is for management tokens only"},
		"unknown provider":          {"alice", "nope", "x", ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := h.CheckReference(tc.user, tc.provider, tc.ref)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("got %v, want allowed", err)
			case tc.want != "" && (!errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want ErrNotAllowed containing %q", err, tc.want)
			}
		})
	}
}
