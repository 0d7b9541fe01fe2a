package runs

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hush-sh/hush/sdk/api"
	"github.com/hush-sh/hush/sdk/provider"
)

// valueResolver answers every reference with the same value, and lets
// every user name any reference.
type valueResolver struct{ value string }

func (valueResolver) CheckReference(string, string, string) error { return nil }

func (r valueResolver) Resolve(_ context.Context, _ string, refs []string) ([]provider.Result, error) {
	out := make([]provider.Result, len(refs))
	for i := range refs {
		out[i] = provider.Result{Value: []byte(r.value)}
	}
	return out, nil
}

// A NUL byte in an environment value would end the variable there, and
// the entrypoint's env file would turn what follows into a variable of its
// own: no such value reaches a run, wherever it comes from.
func TestNULNeverInjectsVariables(t *testing.T) {
	tests := map[string]struct {
		setup func(h *harness)
		want  string
	}{
		"stored env value": {
			// Written straight to the store, as a secret stored before
			// the API refused NUL bytes would be.
			setup: func(h *harness) { h.secret(envSecret("nul", "NULVAL", "a\x00INJECTED=1")) },
			want:  "secret nul: value contains a NUL byte",
		},
		"provider value": {
			setup: func(h *harness) {
				h.m.cfg.Resolver = valueResolver{"a\x00INJECTED=1"}
				sec := envSecret("nul", "NULVAL", "")
				sec.Data, sec.From = nil, "file:nul"
				h.secret(sec)
			},
			want: "resolve secret nul from file:nul: provider file returned a value that contains a NUL byte",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			tc.setup(h)
			run, out := h.finish(h.submit("nul", `echo "injected=[${INJECTED:-}]"`))
			if run.Status != api.RunFailed || !strings.Contains(run.Error, tc.want) {
				t.Errorf("got %s %q, want FAILED with %q", run.Status, run.Error, tc.want)
			}
			if strings.Contains(out, "injected=[1]") {
				t.Errorf("the NUL byte injected a variable: %q", out)
			}
		})
	}
}

func TestRunEnvWithNULRefused(t *testing.T) {
	h := newHarness(t)
	_, err := h.m.Submit("alice", Submitter{}, &api.CreateRunRequest{Name: "nul", Command: "true",
		Env: map[string]string{"A": "x\x00INJECTED=1"}})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "env_variables A contains a NUL byte") {
		t.Errorf("got %v, want the NUL byte in A refused", err)
	}
}
