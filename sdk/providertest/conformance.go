package providertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hush-sh/hush/sdk/provider"
)

// Suite describes what a provider under test holds. The provider that
// factory makes must serve Existing and lack Missing once configured with
// Config.
type Suite struct {
	// Config is the provider's config block; nil means none.
	Config map[string]any
	// BadConfig, if set, is a config the provider must reject with an
	// error diagnostic (not a Go error).
	BadConfig map[string]any
	// Existing maps references to the values they must resolve to.
	Existing map[string][]byte
	// Missing are references that must resolve to ErrNotFound. If the
	// provider can store, the first one is written and deleted again.
	Missing []string
	// Denied, if set, are references that must resolve to
	// ErrPermissionDenied.
	Denied []string
	// Oversize, if set, are references whose values are over
	// api.MaxSecretSize, which the provider must answer with an error
	// rather than the value. Existing values must be within the limit.
	//
	// Values of Existing of 4 bytes or more are looked for, and must not
	// be found, in every error and diagnostic the suite provokes.
	Oversize []string
}

// callTimeout bounds every call the suite makes, so that a provider that
// hangs fails the test instead of stalling it.
const callTimeout = 30 * time.Second

var nameRE = regexp.MustCompile(`^[a-z0-9-]+$`)

// RunConformance checks the provider that factory makes against s, both
// called directly and served over gRPC as the agent calls it. Every subtest
// gets a new provider, configured with s.Config. Run it with -race.
//
// Beyond the values themselves, it checks what the agent relies on when
// things go wrong: results in request order in any mix of values and
// errors, repeats included; no panic on references the provider does not
// expect; no value over the limit of a secret; and no resolved value in any
// error or diagnostic.
func RunConformance(t *testing.T, factory func() provider.Provider, s Suite) {
	t.Helper()
	modes := []struct {
		name string
		open func(t *testing.T) provider.Provider
	}{
		{"direct", func(*testing.T) provider.Provider { return factory() }},
		{"grpc", func(t *testing.T) provider.Provider { return Serve(t, factory()) }},
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) { run(t, mode.open, s) })
	}
}

// RunProcessConformance checks a plugin executable in any language against
// s: every subtest launches a process of its own from the command that
// newCmd returns, as the agent launches plugins (see LaunchProcess), and
// kills it when the subtest ends.
func RunProcessConformance(t *testing.T, newCmd func() *exec.Cmd, s Suite) {
	t.Helper()
	run(t, func(t *testing.T) provider.Provider { return LaunchProcess(t, newCmd()) }, s)
}

// run runs the subtests against the providers that open gives.
func run(t *testing.T, open func(t *testing.T) provider.Provider, s Suite) {
	c := &conformance{suite: s, open: open}
	t.Run("GetInfo", c.getInfo)
	t.Run("Configure", c.configure)
	t.Run("BadConfig", c.badConfig)
	t.Run("ResolveExisting", c.resolveExisting)
	t.Run("ResolveMixed", c.resolveMixed)
	t.Run("ResolveEmpty", c.resolveEmpty)
	t.Run("ResolveCanceled", c.resolveCanceled)
	t.Run("Store", c.store)
	t.Run("ResolveConcurrent", c.resolveConcurrent)
	t.Run("ResolveOrder", c.resolveOrder)
	t.Run("ResolveOddReferences", c.resolveOdd)
	t.Run("ResolveOversize", c.resolveOversize)
	t.Run("NoValueInErrors", c.noValueInErrors)
}

// conformance runs the subtests of one mode.
type conformance struct {
	suite Suite
	open  func(t *testing.T) provider.Provider
}

// callCtx is a context for calls made by one subtest.
func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
	t.Cleanup(cancel)
	return ctx
}

// configJSON encodes a config block as the agent sends it.
func configJSON(t *testing.T, cfg map[string]any) []byte {
	t.Helper()
	if cfg == nil {
		return nil
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatalf("encode config: %v", err)
	}
	return raw
}

// info calls GetInfo, failing the test if it fails.
func info(t *testing.T, p provider.Provider) *provider.GetInfoResponse {
	t.Helper()
	resp, err := p.GetInfo(callCtx(t), &provider.GetInfoRequest{})
	if err != nil {
		t.Fatalf("GetInfo: got error %v, want none", err)
	}
	if resp == nil {
		t.Fatal("GetInfo: got a nil response, want one")
	}
	return resp
}

// configured opens a provider and configures it as the agent does: GetInfo
// first, then Configure with s.Config.
func (c *conformance) configured(t *testing.T) provider.Provider {
	t.Helper()
	p := c.open(t)
	info(t, p)
	resp, err := p.Configure(callCtx(t), &provider.ConfigureRequest{
		APIVersion: provider.APIVersion,
		Config:     configJSON(t, c.suite.Config),
	})
	if err != nil {
		t.Fatalf("Configure: got error %v, want none", err)
	}
	if resp != nil && resp.HasErrors() {
		t.Fatalf("Configure: got error diagnostics %s, want none", formatDiags(resp.Diagnostics))
	}
	return p
}

// resolve resolves refs, failing the test on a whole-call error or on
// results that do not match refs one to one.
func resolve(t *testing.T, p provider.Provider, refs []string) []provider.Result {
	t.Helper()
	resp, err := p.Resolve(callCtx(t), &provider.ResolveRequest{References: refs})
	if err != nil {
		t.Fatalf("Resolve(%q): got error %v, want none", refs, err)
	}
	if resp == nil {
		t.Fatalf("Resolve(%q): got a nil response, want one", refs)
	}
	if got, want := len(resp.Results), len(refs); got != want {
		t.Fatalf("Resolve(%q): got %d results, want %d (one per reference)", refs, got, want)
	}
	for i, r := range resp.Results {
		if r.Reference != refs[i] {
			t.Errorf("Resolve: result %d: got reference %q, want %q (results in request order)", i, r.Reference, refs[i])
		}
	}
	return resp.Results
}

// checkResult checks one result against what the suite says about its
// reference.
func (c *conformance) checkResult(t *testing.T, r provider.Result) {
	t.Helper()
	if msg := c.mismatch(r); msg != "" {
		t.Error(msg)
	}
}

// mismatch says how r differs from what the suite expects, or returns "".
func (c *conformance) mismatch(r provider.Result) string {
	if msg := oversized(r); msg != "" {
		return msg
	}
	if want, ok := c.suite.Existing[r.Reference]; ok {
		switch {
		case r.Err != nil:
			return fmt.Sprintf("Resolve %q: got error %v, want value %q", r.Reference, r.Err, want)
		case !bytes.Equal(r.Value, want):
			return fmt.Sprintf("Resolve %q: got value %q, want %q", r.Reference, r.Value, want)
		}
		return ""
	}
	want, name := provider.ErrNotFound, "provider.ErrNotFound"
	if slices.Contains(c.suite.Denied, r.Reference) {
		want, name = provider.ErrPermissionDenied, "provider.ErrPermissionDenied"
	}
	if !errors.Is(r.Err, want) {
		return fmt.Sprintf("Resolve %q: got error %v, want one matching %s (wrap it with %%w)", r.Reference, r.Err, name)
	}
	return ""
}

func (c *conformance) getInfo(t *testing.T) {
	resp := info(t, c.open(t))
	if !nameRE.MatchString(resp.Name) {
		t.Errorf("GetInfo: got name %q, want one matching %s", resp.Name, nameRE)
	}
	if resp.Version == "" {
		t.Error("GetInfo: got an empty version, want the plugin's version")
	}
	if !slices.Contains(resp.APIVersions, provider.APIVersion) {
		t.Errorf("GetInfo: got API versions %v, want a list with %d", resp.APIVersions, provider.APIVersion)
	}
}

func (c *conformance) configure(t *testing.T) {
	c.configured(t)
}

func (c *conformance) badConfig(t *testing.T) {
	if c.suite.BadConfig == nil {
		t.Skip("Suite.BadConfig is not set")
	}
	p := c.open(t)
	info(t, p)
	resp, err := p.Configure(callCtx(t), &provider.ConfigureRequest{
		APIVersion: provider.APIVersion,
		Config:     configJSON(t, c.suite.BadConfig),
	})
	if err != nil {
		t.Fatalf("Configure(BadConfig): got error %v, want an error diagnostic instead", err)
	}
	if resp == nil || !resp.HasErrors() {
		var diags []provider.Diagnostic
		if resp != nil {
			diags = resp.Diagnostics
		}
		t.Errorf("Configure(BadConfig): got diagnostics %s, want an error diagnostic", formatDiags(diags))
	}
}

func (c *conformance) resolveExisting(t *testing.T) {
	if len(c.suite.Existing) == 0 {
		t.Skip("Suite.Existing is empty")
	}
	refs := c.existing()
	for _, r := range resolve(t, c.configured(t), refs) {
		c.checkResult(t, r)
	}
}

func (c *conformance) resolveMixed(t *testing.T) {
	refs := c.mixed()
	if len(refs) == 0 {
		t.Skip("Suite.Existing, Missing and Denied are empty")
	}
	for _, r := range resolve(t, c.configured(t), refs) {
		c.checkResult(t, r)
	}
}

func (c *conformance) resolveEmpty(t *testing.T) {
	if got := resolve(t, c.configured(t), []string{}); len(got) != 0 {
		t.Errorf("Resolve of no references: got %d results, want 0", len(got))
	}
}

func (c *conformance) resolveCanceled(t *testing.T) {
	p := c.configured(t)
	cctx, cancel := context.WithCancel(t.Context())
	cancel()
	done := make(chan error, 1)
	go func() {
		_, err := p.Resolve(cctx, &provider.ResolveRequest{References: c.mixed()})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Resolve with a canceled context: got error %v, want one matching context.Canceled (return ctx.Err() before slow work)", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("Resolve with a canceled context: still running after 5s, want it to return at once")
	}
}

func (c *conformance) store(t *testing.T) {
	p := c.configured(t)
	if !slices.Contains(info(t, p).Capabilities, provider.CapabilityStore) {
		t.Skipf("the provider does not list the %q capability", provider.CapabilityStore)
	}
	if len(c.suite.Missing) == 0 {
		t.Skip("Suite.Missing is empty: the store test writes to the first missing reference")
	}
	s, ok := p.(provider.Storer)
	if !ok {
		t.Fatalf("the provider lists the %q capability: got %T, want a provider.Storer", provider.CapabilityStore, p)
	}
	ref, value := c.suite.Missing[0], []byte("hush conformance value")
	if _, err := s.Put(callCtx(t), &provider.PutRequest{Reference: ref, Value: value}); err != nil {
		t.Fatalf("Put %q: got error %v, want none", ref, err)
	}
	deleted := false
	t.Cleanup(func() {
		if !deleted { // leave the store as the suite found it
			_, _ = s.Delete(context.Background(), &provider.DeleteRequest{Reference: ref})
		}
	})
	if r := resolve(t, p, []string{ref})[0]; r.Err != nil || !bytes.Equal(r.Value, value) {
		t.Errorf("Resolve %q after Put: got value %q and error %v, want value %q", ref, r.Value, r.Err, value)
	}
	if _, err := s.Delete(callCtx(t), &provider.DeleteRequest{Reference: ref}); err != nil {
		t.Fatalf("Delete %q: got error %v, want none", ref, err)
	}
	deleted = true
	if r := resolve(t, p, []string{ref})[0]; !errors.Is(r.Err, provider.ErrNotFound) {
		t.Errorf("Resolve %q after Delete: got value %q and error %v, want an error matching provider.ErrNotFound", ref, r.Value, r.Err)
	}
}

func (c *conformance) resolveConcurrent(t *testing.T) {
	refs := c.mixed()
	if len(refs) == 0 {
		t.Skip("Suite.Existing, Missing and Denied are empty")
	}
	p := c.configured(t)
	ctx := callCtx(t)
	const goroutines, rounds = 8, 10
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range rounds {
				resp, err := p.Resolve(ctx, &provider.ResolveRequest{References: refs})
				if err != nil {
					t.Errorf("goroutine %d round %d: Resolve: got error %v, want none", g, i, err)
					return
				}
				if got, want := len(resp.Results), len(refs); got != want {
					t.Errorf("goroutine %d round %d: Resolve: got %d results, want %d", g, i, got, want)
					return
				}
				for _, r := range resp.Results {
					if msg := c.mismatch(r); msg != "" {
						t.Errorf("goroutine %d round %d: %s", g, i, msg)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

// existing lists the existing references in a fixed order.
func (c *conformance) existing() []string {
	refs := make([]string, 0, len(c.suite.Existing))
	for ref := range c.suite.Existing {
		refs = append(refs, ref)
	}
	slices.Sort(refs)
	return refs
}

// mixed interleaves existing, missing and denied references, so that a
// provider that answers them grouped by kind shows up.
func (c *conformance) mixed() []string {
	lists := [][]string{c.existing(), c.suite.Missing, c.suite.Denied}
	var refs []string
	for i := 0; ; i++ {
		added := false
		for _, l := range lists {
			if i < len(l) {
				refs = append(refs, l[i])
				added = true
			}
		}
		if !added {
			return refs
		}
	}
}

func formatDiags(diags []provider.Diagnostic) string {
	if len(diags) == 0 {
		return "none"
	}
	var b bytes.Buffer
	for i, d := range diags {
		if i > 0 {
			b.WriteString("; ")
		}
		sev := "error"
		if d.Severity == provider.SeverityWarning {
			sev = "warning"
		}
		fmt.Fprintf(&b, "%s: %s", sev, d.Summary)
		if d.Attribute != "" {
			fmt.Fprintf(&b, " (attribute %s)", d.Attribute)
		}
		if d.Detail != "" {
			fmt.Fprintf(&b, ": %s", d.Detail)
		}
	}
	return b.String()
}
