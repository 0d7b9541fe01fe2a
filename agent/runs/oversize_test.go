package runs

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

// A provider's value gets no more room than a stored secret: over the
// limit, the run fails naming the secret, the size and the limit, and says
// nothing of the value.
func TestOversizeProviderValue(t *testing.T) {
	if api.MaxSecretSize != 1<<20 {
		t.Fatalf("api.MaxSecretSize is %d: got a limit that maxSecretSizeText (%q) does not describe, want them to agree", api.MaxSecretSize, maxSecretSizeText)
	}
	tests := map[string]struct {
		size       int
		wantStatus api.RunStatus
		wantErr    string
		wantOut    string
	}{
		"at the limit": {
			size:       api.MaxSecretSize,
			wantStatus: api.RunCompleted,
			wantOut:    fmt.Sprintf("size=%d\n", api.MaxSecretSize),
		},
		"one byte over": {
			size:       api.MaxSecretSize + 1,
			wantStatus: api.RunFailed,
			wantErr:    "resolve secret big from file:big: its provider file returned a value of 1048577 bytes, over the 1 MiB limit of a secret",
		},
		"far over": {
			size:       8 << 20,
			wantStatus: api.RunFailed,
			wantErr:    "returned a value of 8388608 bytes, over the 1 MiB limit of a secret",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			value := strings.Repeat("v", tc.size)
			h.m.cfg.Resolver = valueResolver{value}
			h.secret(&store.Secret{Name: "big", Type: api.TypeMounted, From: "file:big"})
			run, out := h.finish(h.submit("big", `echo "size=$(stat -c %s $SECRET_PATH_BIG)"`))
			if run.Status != tc.wantStatus || !strings.Contains(run.Error, tc.wantErr) {
				t.Errorf("got %s %q, want %s with %q", run.Status, run.Error, tc.wantStatus, tc.wantErr)
			}
			if tc.wantOut != "" && out != tc.wantOut {
				t.Errorf("got output %q, want %q", out, tc.wantOut)
			}
			if strings.Contains(run.Error, value[:64]) {
				t.Errorf("got an error of %d bytes with the value in it, want none of the value", len(run.Error))
			}
		})
	}
}
