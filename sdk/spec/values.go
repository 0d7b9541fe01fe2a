package spec

import (
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"sync"
)

// memoryRe allows a "B" after a binary suffix ("64MiB") but not after a
// decimal one, where "4GB" leaves unclear which of 4G and 4Gi was meant.
var memoryRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)(?:([KMGT]i)B?|([KMGT]))?$`) })

var memoryUnits = map[string]int64{
	"":   1,
	"K":  1e3,
	"M":  1e6,
	"G":  1e9,
	"T":  1e12,
	"Ki": 1 << 10,
	"Mi": 1 << 20,
	"Gi": 1 << 30,
	"Ti": 1 << 40,
}

// ParseSize reads a size as run specs and the agent's config write them:
// "4Gi", "512Mi", "2G", "1.5Gi", "64MiB" or "1048576", in bytes, rounding
// a fraction of a byte down.
func ParseSize(s string) (int64, error) { return parseMemory(s) }

// parseMemory reads a size such as "4Gi", "512Mi", "2G", "1.5Gi" or
// "1048576" as bytes, rounding a fraction of a byte down; a binary suffix
// may end in "B" ("64MiB").
func parseMemory(s string) (int64, error) {
	m := memoryRe().FindStringSubmatch(s)
	if num, unit, ok := strings.Cut(s, "B"); m == nil && ok && unit == "" && len(num) > 1 && strings.ContainsAny(num[len(num)-1:], "KMGT") {
		return 0, fmt.Errorf(`it is ambiguous: write %q (powers of 1024) or %q (powers of 1000)`, num+"iB", num)
	}
	if m == nil {
		return 0, errors.New(`give a number of bytes, optionally with a suffix Ki, Mi, Gi, Ti (powers of 1024; "MiB" works too) or K, M, G, T (powers of 1000), such as "4Gi" or "512Mi"`)
	}
	// Exact arithmetic, so that "1.1Gi" is not off by float rounding.
	r, _ := new(big.Rat).SetString(m[1])
	r.Mul(r, new(big.Rat).SetInt64(memoryUnits[m[2]+m[3]]))
	n := new(big.Int).Quo(r.Num(), r.Denom())
	if !n.IsInt64() {
		return 0, errors.New("it does not fit in 64 bits: give a smaller size, such as \"64Gi\"")
	}
	return n.Int64(), nil
}

// suggest returns the known name closest to name when it is near enough to
// be a likely typo, or "".
func suggest(name string, known []string) string {
	best, bestDist := "", 3
	if len(name) < 4 {
		bestDist = 2
	}
	for _, k := range known {
		if d := EditDistance(name, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// EditDistance is the Levenshtein distance between a and b, in bytes.
func EditDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
