package runtime

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The pace of a pull's progress events: one per pullEventEvery at first,
// the gap doubling after every pullEventsPerStep events up to
// pullEventMaxGap, so that a pull of any length adds a bounded number of
// events to its run's record (about 150 in the first half hour, then one a
// minute), and a short pull shows its progress often.
const (
	pullEventEvery    = 2 * time.Second
	pullEventsPerStep = 30
	pullEventMaxGap   = time.Minute
)

// eventLimiter paces events: allow says whether one may be recorded now.
type eventLimiter struct {
	gap  time.Duration // the current least gap between two events
	last time.Time     // when the last one was allowed
	n    int           // events allowed at the current gap
}

// newEventLimiter returns a limiter whose first event comes pullEventEvery
// after start (the pull's start has an event of its own).
func newEventLimiter(start time.Time) *eventLimiter {
	return &eventLimiter{gap: pullEventEvery, last: start}
}

// allow reports whether an event may be recorded at now, and counts it if so.
func (l *eventLimiter) allow(now time.Time) bool {
	if now.Sub(l.last) < l.gap {
		return false
	}
	l.last = now
	l.n++
	if l.n >= pullEventsPerStep && l.gap < pullEventMaxGap {
		l.gap = min(2*l.gap, pullEventMaxGap)
		l.n = 0
	}
	return true
}

// pullProgress tracks an image pull's layers: which there are (from the
// pull's handler, as the manifest is read) and how much of each is in the
// content store (done, or being written).
type pullProgress struct {
	ref string
	cs  content.Store

	mu     sync.Mutex
	layers map[digest.Digest]int64 // size of each layer of the image
}

func newPullProgress(ref string, cs content.Store) *pullProgress {
	return &pullProgress{ref: ref, cs: cs, layers: map[digest.Digest]int64{}}
}

// handler notes the layers of the image being pulled; containerd calls it
// for each descriptor it dispatches, only those of the platform pulled.
func (p *pullProgress) handler() images.Handler {
	return images.HandlerFunc(func(_ context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		if images.IsLayerType(desc.MediaType) {
			p.mu.Lock()
			p.layers[desc.Digest] = desc.Size
			p.mu.Unlock()
		}
		return nil, nil
	})
}

// pullStatus is how far a pull has come.
type pullStatus struct {
	Layers, LayersDone int
	Bytes, BytesDone   int64
}

// status reads from the content store how much of each layer is there.
func (p *pullProgress) status(ctx context.Context) (pullStatus, error) {
	p.mu.Lock()
	layers := make(map[digest.Digest]int64, len(p.layers))
	for d, size := range p.layers {
		layers[d] = size
	}
	p.mu.Unlock()
	var s pullStatus
	if len(layers) == 0 {
		return s, nil
	}
	// What is being written, by the digest it is written for.
	active, err := p.cs.ListStatuses(ctx)
	if err != nil {
		return s, fmt.Errorf("list content being written: %w", err)
	}
	writing := map[digest.Digest]int64{}
	for _, a := range active {
		writing[a.Expected] = max(writing[a.Expected], a.Offset)
	}
	for d, size := range layers {
		s.Layers++
		s.Bytes += size
		if _, err := p.cs.Info(ctx, d); err == nil {
			s.LayersDone++
			s.BytesDone += size
		} else {
			s.BytesDone += min(writing[d], size)
		}
	}
	return s, nil
}

// message says how far the pull has come, as an event of its run.
func (p *pullProgress) message(s pullStatus) string {
	return fmt.Sprintf("pulling image %s: %d of %s, %s of %s", p.ref, s.LayersDone, layers(s.Layers), formatSize(s.BytesDone), formatSize(s.Bytes))
}

// report records the pull's progress through event, paced by an
// eventLimiter and only when it changed, until ctx is done.
func (p *pullProgress) report(ctx context.Context, event func(typ, msg string)) {
	limiter := newEventLimiter(time.Now())
	tick := time.NewTicker(pullEventEvery / 4)
	defer tick.Stop()
	last := ""
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if now.Sub(limiter.last) < limiter.gap {
				continue
			}
			s, err := p.status(ctx)
			if err != nil || s.Layers == 0 {
				continue
			}
			msg := p.message(s)
			if msg != last && limiter.allow(now) {
				event("image", msg)
				last = msg
			}
		}
	}
}

// formatSize gives a size in bytes in KiB below a MiB, else in MiB (or GiB).
func formatSize(n int64) string {
	const kib, mib, gib = 1 << 10, 1 << 20, 1 << 30
	switch {
	case n < mib:
		return fmt.Sprintf("%d KiB", (n+kib-1)/kib)
	case n < 10*gib:
		return fmt.Sprintf("%d MiB", n/mib)
	default:
		return fmt.Sprintf("%.1f GiB", float64(n)/gib)
	}
}

// layers counts layers as people write it: "1 layer", "3 layers".
func layers(n int) string {
	if n == 1 {
		return "1 layer"
	}
	return fmt.Sprintf("%d layers", n)
}
