package providertest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hush-sh/hush/sdk/api"
	"github.com/hush-sh/hush/sdk/provider"
)

// The checks in this file hold a provider to what the agent needs of it
// when things go wrong: errors that never carry a value, no value over the
// limit of a secret, no panic on a reference it did not expect, and results
// that stay in request order whatever the mix of good and bad references.

// minSearchedValue is the shortest value that the suite looks for in
// errors: a shorter one may appear in any message by chance.
const minSearchedValue = 4

// oddReferences are references that a provider may not expect: the
// provider must answer each with a value or an error, never a panic. The
// agent refuses an empty reference and one with a newline when a secret is
// created, but anything else after "PROVIDER:" reaches the provider, and a
// provider should not rely on its caller's checks. They are valid UTF-8,
// as gRPC requires of a string.
var oddReferences = []string{
	"", " ", "\x00", "#", "#field", "?", "%", "%zz", ":", "/", "//", "../../../etc/passwd",
	"a\nb", "\u202e", strings.Repeat("a", 64<<10),
}

// resolveCatching calls Resolve, and turns a panic into the error the SDK's
// gRPC server makes of it, so that a provider called directly fails the
// same way as one called over gRPC and the test process survives it.
func resolveCatching(ctx context.Context, p provider.Provider, refs []string) (resp *provider.ResolveResponse, err error) {
	defer func() {
		if v := recover(); v != nil {
			resp, err = nil, fmt.Errorf("provider panicked in Resolve: %v", v)
		}
	}()
	return p.Resolve(ctx, &provider.ResolveRequest{References: refs})
}

// shortRef abbreviates a reference for a message.
func shortRef(ref string) string {
	if len(ref) > 40 {
		return strconv.Quote(ref[:40]) + fmt.Sprintf("... (%d bytes)", len(ref))
	}
	return strconv.Quote(ref)
}

// oversized says what is wrong with a result whose value is over the limit
// of a secret, or returns "".
func oversized(r provider.Result) string {
	if r.Err != nil || len(r.Value) <= api.MaxSecretSize {
		return ""
	}
	return fmt.Sprintf("Resolve %s: got a value of %d bytes, over the %d-byte limit of a secret; want an error saying how big the value is instead (the agent refuses it anyway)",
		shortRef(r.Reference), len(r.Value), api.MaxSecretSize)
}

// resolveOdd resolves each odd reference alone and then all together
// between the existing ones, and then checks that the provider still
// answers.
func (c *conformance) resolveOdd(t *testing.T) {
	p := c.configured(t)
	known := func(ref string) bool {
		_, ok := c.suite.Existing[ref]
		return ok || slices.Contains(c.suite.Missing, ref) || slices.Contains(c.suite.Denied, ref)
	}
	check := func(refs []string) {
		t.Helper()
		resp, err := resolveCatching(callCtx(t), p, refs)
		switch {
		case err != nil:
			t.Errorf("Resolve(%s): got error %v, want a value or an error for each reference (a provider must not panic or fail the whole call on a reference it does not expect)", shortRefs(refs), err)
			return
		case resp == nil || len(resp.Results) != len(refs):
			t.Errorf("Resolve(%s): got %d results, want %d (one per reference)", shortRefs(refs), lenResults(resp), len(refs))
			return
		}
		for i, r := range resp.Results {
			if r.Reference != refs[i] {
				t.Errorf("Resolve(%s): result %d: got reference %s, want %s (results in request order)", shortRefs(refs), i, shortRef(r.Reference), shortRef(refs[i]))
			}
			if msg := oversized(r); msg != "" {
				t.Error(msg)
			}
			if known(refs[i]) {
				c.checkResult(t, provider.Result{Reference: refs[i], Value: r.Value, Err: r.Err})
			}
		}
	}
	for _, ref := range oddReferences {
		check([]string{ref})
	}
	batch := append(c.existing(), oddReferences...)
	batch = append(batch, c.existing()...)
	check(batch)

	// The provider must still answer, whatever happened above: the agent
	// keeps sending it the references of other runs.
	resp, err := resolveCatching(callCtx(t), p, c.mixed())
	if err != nil {
		t.Fatalf("Resolve(%s) after the odd references: got error %v, want the provider to answer as before", shortRefs(c.mixed()), err)
	}
	for _, r := range resp.Results {
		c.checkResult(t, r)
	}
}

// resolveOrder resolves the suite's references in several orders, with
// repeats, and checks each result against the reference at its position.
func (c *conformance) resolveOrder(t *testing.T) {
	bad := append(slices.Clone(c.suite.Missing), c.suite.Denied...)
	if len(c.suite.Existing) == 0 || len(bad) == 0 {
		t.Skip("Suite.Existing, or both Missing and Denied, are empty: there is no mix of values and errors to order")
	}
	p := c.configured(t)
	good := c.existing()
	mixed := c.mixed()
	reversed := slices.Clone(mixed)
	slices.Reverse(reversed)
	var doubled []string
	for _, ref := range mixed {
		doubled = append(doubled, ref, ref)
	}
	batches := map[string][]string{
		"errors first":     append(slices.Clone(bad), good...),
		"errors last":      append(slices.Clone(good), bad...),
		"interleaved":      mixed,
		"reversed":         reversed,
		"each twice":       doubled,
		"an error between": {good[0], bad[0], good[0]},
	}
	for name, refs := range batches {
		resp, err := p.Resolve(callCtx(t), &provider.ResolveRequest{References: refs})
		if err != nil {
			t.Errorf("batch %s: Resolve(%s): got error %v, want none", name, shortRefs(refs), err)
			continue
		}
		if got := lenResults(resp); got != len(refs) {
			t.Errorf("batch %s: Resolve(%s): got %d results, want %d (one per reference, in request order, repeats included)", name, shortRefs(refs), got, len(refs))
			continue
		}
		for i, r := range resp.Results {
			if r.Reference != refs[i] {
				t.Errorf("batch %s: result %d: got reference %q, want %q (results in request order)", name, i, r.Reference, refs[i])
			}
			// Judged by position, not by the reference the provider
			// wrote: the agent reads results by position.
			if msg := c.mismatch(provider.Result{Reference: refs[i], Value: r.Value, Err: r.Err}); msg != "" {
				t.Errorf("batch %s: result %d: %s", name, i, msg)
			}
		}
	}
}

// resolveOversize checks that the provider answers the references to
// values over the limit of a secret with errors.
func (c *conformance) resolveOversize(t *testing.T) {
	if len(c.suite.Oversize) == 0 {
		t.Skip("Suite.Oversize is empty")
	}
	p := c.configured(t)
	refs := append(c.existing(), c.suite.Oversize...)
	for i, r := range resolve(t, p, refs) {
		if !slices.Contains(c.suite.Oversize, refs[i]) {
			c.checkResult(t, r)
			continue
		}
		if r.Err == nil {
			t.Errorf("Resolve %s: got a value of %d bytes and no error, want an error: the value is over the %d-byte limit of a secret", shortRef(refs[i]), len(r.Value), api.MaxSecretSize)
		}
	}
}

// noValueInErrors resolves the existing references, so that the provider
// has read their values, then makes every call fail that the suite can make
// fail, and looks for the values in the errors and diagnostics. An error
// reaches the agent's logs and a run's status, where a value must never be.
func (c *conformance) noValueInErrors(t *testing.T) {
	values := map[string][]byte{}
	for ref, v := range c.suite.Existing {
		if len(v) >= minSearchedValue {
			values[ref] = v
		}
	}
	if len(values) == 0 {
		t.Skipf("Suite.Existing has no value of %d bytes or more to look for", minSearchedValue)
	}
	p := c.configured(t)
	type text struct{ where, text string }
	var texts []text
	add := func(where string, err error) {
		if err != nil {
			texts = append(texts, text{where, err.Error()})
		}
	}

	// The values and the errors in one batch, then the errors alone, as
	// a provider that keeps the last value it read would show.
	bad := slices.Concat(c.suite.Missing, c.suite.Denied, c.suite.Oversize)
	for _, batch := range [][]string{append(c.mixed(), c.suite.Oversize...), bad} {
		resp, err := resolveCatching(callCtx(t), p, batch)
		add(fmt.Sprintf("Resolve(%s)", shortRefs(batch)), err)
		if resp != nil {
			for _, r := range resp.Results {
				add(fmt.Sprintf("the error of reference %s", shortRef(r.Reference)), r.Err)
			}
		}
	}
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := resolveCatching(canceled, p, c.mixed())
	add("Resolve with a canceled context", err)
	if s, ok := p.(provider.Storer); ok && len(c.suite.Missing) > 0 {
		_, err := s.Delete(callCtx(t), &provider.DeleteRequest{Reference: c.suite.Missing[0]})
		add(fmt.Sprintf("Delete(%q)", c.suite.Missing[0]), err)
	}
	if c.suite.BadConfig != nil {
		// Last: a rejected config may leave the provider unconfigured.
		resp, err := p.Configure(callCtx(t), &provider.ConfigureRequest{APIVersion: provider.APIVersion, Config: configJSON(t, c.suite.BadConfig)})
		add("Configure(BadConfig)", err)
		if resp != nil {
			for i, d := range resp.Diagnostics {
				texts = append(texts, text{fmt.Sprintf("Configure(BadConfig): diagnostic %d", i), d.Summary + "\n" + d.Detail + "\n" + d.Attribute})
			}
		}
	}

	for _, tx := range texts {
		if redacted, leaked := redact(tx.text, values); len(leaked) > 0 {
			t.Errorf("%s: got %q, which holds the value of %s (shown here as <value of REF>); want no resolved value in any error or diagnostic: name the reference instead", tx.where, redacted, strings.Join(leaked, ", "))
		}
	}
}

// redact replaces the values in text, as they are and as %q writes them,
// and returns the references whose values it found, sorted.
func redact(text string, values map[string][]byte) (string, []string) {
	var leaked []string
	for ref, v := range values {
		forms := []string{string(v), strings.Trim(strconv.Quote(string(v)), `"`)}
		found := false
		for _, f := range forms {
			if strings.Contains(text, f) {
				text = strings.ReplaceAll(text, f, "<value of "+ref+">")
				found = true
			}
		}
		if found {
			leaked = append(leaked, strconv.Quote(ref))
		}
	}
	slices.Sort(leaked)
	return text, leaked
}

// shortRefs abbreviates a list of references for a message.
func shortRefs(refs []string) string {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, ref := range refs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(shortRef(ref))
	}
	b.WriteByte(']')
	return b.String()
}

func lenResults(resp *provider.ResolveResponse) int {
	if resp == nil {
		return 0
	}
	return len(resp.Results)
}
