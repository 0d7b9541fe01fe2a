package api

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Refresh asks for a run's secrets to be fetched again while it runs, as
// Nomad's templates and Vault Agent's do: a provider-backed value (or a
// stored one) that changed reaches the run's files, and OnChange says what
// the run is told.
type Refresh struct {
	// Every is how often the secrets are fetched again. For a run, 0
	// means never; for one secret, 0 means the run's.
	Every Duration `json:"every,omitempty"`
	// OnChange is what a changed value does to the run: OnChangeRestart,
	// OnChangeNone, or OnChangeSignal followed by a signal's name, such as
	// "signal:SIGHUP". Empty means the run's own, and for the run,
	// OnChangeRestart.
	OnChange string `json:"on_change,omitempty"`
}

// The values of Refresh.OnChange.
const (
	// OnChangeRestart restarts the workload, which then sees every new
	// value, env secrets included.
	OnChangeRestart = "restart"
	// OnChangeNone only rewrites the secret's files.
	OnChangeNone = "none"
	// OnChangeSignal rewrites the secret's files and then sends the
	// workload the signal named after it.
	OnChangeSignal = "signal:"
)

// MinRefresh is the shortest refresh interval a run may ask for: each one
// is a call to the secret's provider.
const MinRefresh = time.Second

// refreshSignals are the signals on_change may send: those a workload
// would take as "read your configuration again", and the ones it may
// handle as it likes.
var refreshSignals = []string{"SIGHUP", "SIGUSR1", "SIGUSR2", "SIGINT", "SIGQUIT", "SIGTERM", "SIGWINCH"}

// RefreshSignals returns the signals on_change may send.
func RefreshSignals() []string { return append([]string(nil), refreshSignals...) }

// Signal returns the signal that OnChange sends, such as "SIGHUP", or ""
// when it sends none.
func (r Refresh) Signal() string {
	sig, ok := strings.CutPrefix(r.OnChange, OnChangeSignal)
	if !ok {
		return ""
	}
	return sig
}

// NormalizeOnChange checks an on_change value as people write it and
// returns it as the agent keeps it: "signal:hup" and "signal:HUP" become
// "signal:SIGHUP".
func NormalizeOnChange(s string) (string, error) {
	switch s {
	case "", OnChangeRestart, OnChangeNone:
		return s, nil
	}
	if sig, ok := strings.CutPrefix(s, OnChangeSignal); ok {
		name := strings.ToUpper(strings.TrimSpace(sig))
		if !strings.HasPrefix(name, "SIG") {
			name = "SIG" + name
		}
		if slices.Contains(refreshSignals, name) {
			return OnChangeSignal + name, nil
		}
		return "", fmt.Errorf("on_change %q names a signal the agent does not send: give one of %s", s, strings.Join(refreshSignals, ", "))
	}
	return "", fmt.Errorf("on_change %q is not valid: give %q (the default), %q, or %q followed by a signal such as SIGHUP", s, OnChangeRestart, OnChangeNone, OnChangeSignal)
}

// ValidateRefresh checks a refresh setting: a run's (secret is "") or one
// secret's.
func ValidateRefresh(secret string, r Refresh) error {
	where := "refresh"
	if secret != "" {
		where = "the refresh of secret " + secret
	}
	if d := time.Duration(r.Every); d != 0 && d < MinRefresh {
		return fmt.Errorf("%s of %s is shorter than the %s the agent allows: each refresh calls the secret's provider", where, d, MinRefresh)
	}
	if _, err := NormalizeOnChange(r.OnChange); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	return nil
}

// RefreshFor returns the refresh setting of one secret of a run: its own,
// with what it leaves unset taken from the run's, and OnChangeRestart when
// neither says.
func RefreshFor(run Refresh, secret map[string]Refresh, name string) Refresh {
	r := secret[name]
	if r.Every == 0 {
		r.Every = run.Every
	}
	if r.OnChange == "" {
		r.OnChange = run.OnChange
	}
	if r.OnChange == "" {
		r.OnChange = OnChangeRestart
	}
	return r
}
