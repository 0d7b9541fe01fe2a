// Command bench measures a hush agent for `make bench`, against the hush
// binaries it is given, each started as `hush agent` on loopback in a data
// dir of its own:
//
//	bench list    -hush HUSH [-config FILE] [-small N] [-big N] [-lists N] [-rounds N]
//	bench creates [-config FILE] [-n N] [-clients 1,32] HUSH...
//	bench getrun  [-config FILE] [-n N] [-runs 10,10000] HUSH...
//	bench servers [-n N] [-clients 1,32] [-kills 10] HUSH
//
// list reports the agent's RSS while it answers concurrent listings of
// many secrets (.ci/bench-list); creates, secret creates per second and
// their latency with one client and with many (.ci/bench-creates); getrun,
// the latency of getting a run by name among few and among many stored
// runs (.ci/bench-getrun); servers, creates per second on a cluster of
// three servers against a one-node agent, and the time a leader failover
// takes (.ci/bench-servers).
package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// errUsage marks a mistake on the command line.
var errUsage = errors.New("usage")

func main() {
	commands := map[string]func([]string) error{"list": listMain, "creates": createsMain, "getrun": getrunMain, "servers": serversMain}
	var err error
	if len(os.Args) < 2 || commands[os.Args[1]] == nil {
		err = fmt.Errorf("%w: bench list|creates|getrun|servers [flags]", errUsage)
	} else {
		err = commands[os.Args[1]](os.Args[2:])
	}
	switch {
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// counts parses a comma-separated list of positive numbers, such as the
// -clients or -runs flag.
func counts(flag, list string) ([]int, error) {
	var out []int
	for _, c := range strings.Split(list, ",") {
		k, err := strconv.Atoi(c)
		if err != nil || k < 1 {
			return nil, fmt.Errorf("%w: -%s: %q is not a positive number", errUsage, flag, c)
		}
		out = append(out, k)
	}
	return out, nil
}
