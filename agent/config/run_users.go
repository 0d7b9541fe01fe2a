package config

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
)

// The account databases that uid_range must stay clear of; tests point them
// at fixtures. subuid and subgid hold the ranges that rootless containers
// map their users to: processes with those ids are other users' too.
var (
	passwdFile = "/etc/passwd"
	groupFile  = "/etc/group"
	subuidFile = "/etc/subuid"
	subgidFile = "/etc/subgid"
)

// MaxUID is the highest uid a run may have: the kernel reads (uid_t)-1 as
// "leave unchanged".
const MaxUID = 1<<32 - 2

// ExampleUIDRange is the uid_range that messages suggest: above the ids
// that distributions hand out to accounts and, as subordinate ids, to
// rootless containers (useradd's SUB_UID_MAX is 600100000).
const ExampleUIDRange = "700000000-700065535"

// problem is one invalid setting of a runtime block.
type problem struct{ attr, summary, detail string }

// validateRunUsers checks the exec runtime's uid_range and user.
func (r *RuntimeConfig) validateRunUsers() []problem {
	var out []problem
	if r.UIDRange != "" && r.User != "" {
		out = append(out, problem{"user", "Conflicting run users",
			"Set uid_range (a uid of its own for each run) or user (one account for every run), not both."})
	}
	if r.UIDRange != "" {
		first, last, err := ParseUIDRange(r.UIDRange)
		if err != nil {
			out = append(out, problem{"uid_range", "Invalid uid range", err.Error()})
		} else if used := append(accountsIn(first, last), subordinatesIn(first, last)...); len(used) > 0 {
			out = append(out, problem{"uid_range", "Uid range in use",
				fmt.Sprintf("%q includes %s: runs would share their ids and files. Choose ids that no user or group has, such as %q.",
					r.UIDRange, strings.Join(used, ", "), ExampleUIDRange)})
		}
	}
	if r.User != "" {
		if _, _, err := LookupUser(r.User); err != nil {
			out = append(out, problem{"user", "Invalid run user", err.Error()})
		}
	}
	return out
}

// ParseUIDRange parses a uid_range, "FIRST-LAST" with both ends included.
func ParseUIDRange(s string) (first, last uint32, err error) {
	a, b, ok := strings.Cut(s, "-")
	lo, errA := strconv.ParseUint(strings.TrimSpace(a), 10, 32)
	hi, errB := strconv.ParseUint(strings.TrimSpace(b), 10, 32)
	switch {
	case !ok || errA != nil || errB != nil:
		return 0, 0, fmt.Errorf("%q must be FIRST-LAST, two uids such as %q", s, ExampleUIDRange)
	case lo == 0:
		return 0, 0, fmt.Errorf("%q includes uid 0, which is root: start the range above the ids of real accounts, such as %q", s, ExampleUIDRange)
	case lo > hi:
		return 0, 0, fmt.Errorf("%q starts after it ends: write the lower uid first", s)
	case hi > MaxUID:
		return 0, 0, fmt.Errorf("%q goes past the highest uid, %d", s, uint64(MaxUID))
	}
	return uint32(lo), uint32(hi), nil
}

// LookupUser finds the account a user setting names, and refuses root's
// uid or group, which would give runs the host.
func LookupUser(name string) (uid, gid uint32, err error) {
	u, err := user.Lookup(name)
	var unknown user.UnknownUserError
	if errors.As(err, &unknown) {
		return 0, 0, fmt.Errorf("there is no user %q on this host: create one (useradd --system --no-create-home %s) or use uid_range", name, name)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("look up user %q: %w", name, err)
	}
	id, err1 := strconv.ParseUint(u.Uid, 10, 32)
	g, err2 := strconv.ParseUint(u.Gid, 10, 32)
	switch {
	case err1 != nil || err2 != nil:
		return 0, 0, fmt.Errorf("user %q has uid %q and gid %q, which are not numbers", name, u.Uid, u.Gid)
	case id == 0 || g == 0:
		return 0, 0, fmt.Errorf("user %q has uid %d and gid %d: runs as root or its group are not isolated from the host; name an unprivileged account", name, id, g)
	}
	return uint32(id), uint32(g), nil
}

// accountsIn lists the users and groups of the local account files whose
// ids fall in [first, last], at most three of them.
func accountsIn(first, last uint32) []string {
	var out []string
	for _, db := range []struct{ path, kind string }{{passwdFile, "user"}, {groupFile, "group"}} {
		eachEntry(db.path, func(fields []string) bool {
			// name:password:id:...
			if len(fields) < 3 {
				return true
			}
			id, err := strconv.ParseUint(fields[2], 10, 32)
			if err == nil && uint32(id) >= first && uint32(id) <= last {
				out = append(out, fmt.Sprintf("%s %s (%d)", db.kind, fields[0], id))
			}
			return len(out) < 3
		})
	}
	return out
}

// subordinatesIn lists the subordinate id ranges of /etc/subuid and
// /etc/subgid ("name:first:count") that overlap [first, last], at most
// three of them.
func subordinatesIn(first, last uint32) []string {
	var out []string
	for _, db := range []struct{ path, kind string }{{subuidFile, "subordinate uids"}, {subgidFile, "subordinate gids"}} {
		eachEntry(db.path, func(fields []string) bool {
			if len(fields) != 3 {
				return true
			}
			start, err1 := strconv.ParseUint(fields[1], 10, 32)
			count, err2 := strconv.ParseUint(fields[2], 10, 32)
			if err1 == nil && err2 == nil && count > 0 {
				if end := start + count - 1; start <= uint64(last) && end >= uint64(first) {
					out = append(out, fmt.Sprintf("the %s of %s (%d-%d)", db.kind, fields[0], start, end))
				}
			}
			return len(out) < 3
		})
	}
	return out
}

// eachEntry calls fn with the colon-separated fields of each line of the
// file at path, until fn returns false. A file that cannot be read has no
// entries.
func eachEntry(path string, fn func(fields []string) bool) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() && fn(strings.Split(sc.Text(), ":")) {
	}
}

// RunsAsOtherUsers reports whether the exec block sets uid_range or user.
func (r *RuntimeConfig) RunsAsOtherUsers() bool { return r.UIDRange != "" || r.User != "" }
