package runs

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hush-sh/hush/sdk/api"
)

// checkRefresh checks a run's refresh settings, and normalizes their
// on_change values in req.
func checkRefresh(req *api.CreateRunRequest) []error {
	var errs []error
	check := func(name string, r *api.Refresh) {
		if err := api.ValidateRefresh(name, *r); err != nil {
			errs = append(errs, err)
			return
		}
		r.OnChange, _ = api.NormalizeOnChange(r.OnChange)
	}
	check("", &req.Refresh)
	var outside []string
	for name, r := range req.SecretRefresh {
		check(name, &r)
		req.SecretRefresh[name] = r
		if !slices.Contains(req.Secrets, name) {
			outside = append(outside, name)
		}
	}
	if len(outside) > 0 {
		slices.Sort(outside)
		errs = append(errs, fmt.Errorf("the run sets a refresh for secret(s) %s, which its secrets list does not name: add them to it", strings.Join(outside, ", ")))
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errs
}
