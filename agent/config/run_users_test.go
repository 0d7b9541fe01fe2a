package config

import (
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunUsers(t *testing.T) {
	passwdFile, groupFile, subuidFile, subgidFile = "testdata/passwd", "testdata/group", "testdata/subuid", "testdata/subgid"
	t.Cleanup(func() {
		passwdFile, groupFile, subuidFile, subgidFile = "/etc/passwd", "/etc/group", "/etc/subuid", "/etc/subgid"
	})

	tests := map[string]struct {
		src  string
		want string // "" when the config is valid
	}{
		"uid range": {
			src: `runtime "exec" { uid_range = "700000000-700065535" }`,
		},
		"overlaps subordinate uids": {
			src:  `runtime "exec" { uid_range = "200000-265535" }`,
			want: `x.hcl:1:18: Uid range in use; "200000-265535" includes the subordinate uids of bob (165536-231071)`,
		},
		"overlaps subordinate gids": {
			src:  `runtime "exec" { uid_range = "900010000-900010099" }`,
			want: `includes the subordinate gids of carol (900000000-900065535)`,
		},
		"one uid": {
			src: `runtime "exec" { uid_range = "70000-70000" }`,
		},
		"not a range": {
			src:  `runtime "exec" { uid_range = "200000" }`,
			want: `x.hcl:1:18: Invalid uid range; "200000" must be FIRST-LAST, two uids such as "700000000-700065535"`,
		},
		"not numbers": {
			src:  `runtime "exec" { uid_range = "a-b" }`,
			want: `x.hcl:1:18: Invalid uid range; "a-b" must be FIRST-LAST`,
		},
		"negative": {
			src:  `runtime "exec" { uid_range = "-5-10" }`,
			want: `x.hcl:1:18: Invalid uid range`,
		},
		"root": {
			src:  `runtime "exec" { uid_range = "0-100" }`,
			want: `x.hcl:1:18: Invalid uid range; "0-100" includes uid 0, which is root`,
		},
		"reversed": {
			src:  `runtime "exec" { uid_range = "300-200" }`,
			want: `x.hcl:1:18: Invalid uid range; "300-200" starts after it ends`,
		},
		"past the last uid": {
			src:  `runtime "exec" { uid_range = "200000-4294967295" }`,
			want: `x.hcl:1:18: Invalid uid range; "200000-4294967295" goes past the highest uid, 4294967294`,
		},
		"overlaps a user": {
			src:  `runtime "exec" { uid_range = "900-1000" }`,
			want: `x.hcl:1:18: Uid range in use; "900-1000" includes user alice (1000), group alice (1000): runs would share their ids`,
		},
		"overlaps a group": {
			src:  "runtime \"exec\" {\n  uid_range = \"4000-6000\"\n}",
			want: `x.hcl:2:3: Uid range in use; "4000-6000" includes group builders (5000)`,
		},
		"both": {
			src:  "runtime \"exec\" {\n  uid_range = \"200000-200100\"\n  user = \"nobody\"\n}",
			want: `x.hcl:3:3: Conflicting run users; Set uid_range`,
		},
		"root user": {
			src:  `runtime "exec" { user = "root" }`,
			want: `x.hcl:1:18: Invalid run user; user "root" has uid 0 and gid 0`,
		},
		"unknown user": {
			src:  `runtime "exec" { user = "no-such-user-x" }`,
			want: `x.hcl:1:18: Invalid run user; there is no user "no-such-user-x" on this host: create one (useradd --system --no-create-home no-such-user-x) or use uid_range`,
		},
		"on containerd": {
			src:  `runtime "containerd" { uid_range = "200000-265535" }`,
			want: `x.hcl:1:24: Unsupported argument; runtime "containerd" has no uid_range`,
		},
	}
	if _, err := user.Lookup("nobody"); err == nil {
		tests["user"] = struct{ src, want string }{src: `runtime "exec" { user = "nobody" }`}
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := writeFile(t, "x.hcl", tc.src)
			_, diags := LoadFiles(p)
			got := strings.ReplaceAll(FormatDiagnostics(diags), filepath.Dir(p)+"/", "")
			switch {
			case tc.want == "" && diags.HasErrors():
				t.Errorf("got %s, want no error", got)
			case tc.want != "" && !strings.Contains(got, tc.want):
				t.Errorf("got %q, want it to contain %q", got, tc.want)
			}
		})
	}
}

func TestParseUIDRange(t *testing.T) {
	first, last, err := ParseUIDRange("200000-265535")
	if err != nil || first != 200000 || last != 265535 {
		t.Errorf("got %d, %d, %v; want 200000, 265535", first, last, err)
	}
}
