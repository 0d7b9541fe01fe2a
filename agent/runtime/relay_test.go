package runtime

import (
	"testing"

	"github.com/hush-sh/hush/sdk/api"
	"golang.org/x/sys/unix"
)

// Every signal a run's on_change may ask for is one the exec runtime's
// supervisor passes on.
func TestOnChangeSignalsAreRelayed(t *testing.T) {
	for _, name := range api.RefreshSignals() {
		sig := unix.SignalNum(name)
		if sig == 0 {
			t.Errorf("on_change signal %s: not a signal of this system", name)
			continue
		}
		if _, ok := relaySignal(sig); !ok {
			t.Errorf("on_change signal %s: the exec runtime does not relay it", name)
		}
	}
}
