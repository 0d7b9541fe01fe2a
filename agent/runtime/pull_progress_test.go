package runtime

import (
	"context"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/errdefs"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestEventLimiter checks the pace of a pull's progress events: none
// sooner than pullEventEvery after the start or the last one, and few
// enough, however long the pull, that it cannot flood the run's record.
func TestEventLimiter(t *testing.T) {
	tests := map[string]struct {
		pull        time.Duration
		wantAtMost  int
		wantAtLeast int
	}{
		"one second":  {pull: time.Second, wantAtMost: 0, wantAtLeast: 0},
		"ten seconds": {pull: 10 * time.Second, wantAtMost: 5, wantAtLeast: 5},
		"one minute":  {pull: time.Minute, wantAtMost: 30, wantAtLeast: 29},
		// 30 at each of 2, 4, 8, 16 and 32 s (1860 s), then one a minute.
		"one hour": {pull: time.Hour, wantAtMost: 150 + 30, wantAtLeast: 150 + 28},
		"one day":  {pull: 24 * time.Hour, wantAtMost: 150 + 24*60, wantAtLeast: 150 + 24*60 - 32},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			start := time.Unix(0, 0)
			l := newEventLimiter(start)
			n := 0
			var last time.Time
			// Asked ten times a second, as often as anyone would.
			for now := start; now.Sub(start) <= tc.pull; now = now.Add(100 * time.Millisecond) {
				if !l.allow(now) {
					continue
				}
				since := now.Sub(start)
				if n > 0 {
					since = now.Sub(last)
				}
				if since < pullEventEvery {
					t.Fatalf("event %d came %s after the one before; want at least %s", n+1, since, pullEventEvery)
				}
				n++
				last = now
			}
			if n > tc.wantAtMost || n < tc.wantAtLeast {
				t.Errorf("got %d events in %s, want %d to %d", n, tc.pull, tc.wantAtLeast, tc.wantAtMost)
			}
		})
	}
}

// fakeContent is a content store that knows which blobs are there and
// which are being written; only Info and ListStatuses are used.
type fakeContent struct {
	content.Store
	done    map[digest.Digest]bool
	writing []content.Status
}

func (f *fakeContent) Info(_ context.Context, d digest.Digest) (content.Info, error) {
	if f.done[d] {
		return content.Info{Digest: d}, nil
	}
	return content.Info{}, errdefs.ErrNotFound
}

func (f *fakeContent) ListStatuses(context.Context, ...string) ([]content.Status, error) {
	return f.writing, nil
}

// TestPullProgress checks that a pull's progress counts the layers its
// handler saw, and the bytes of those done and being written.
func TestPullProgress(t *testing.T) {
	const mib = 1 << 20
	l1, l2, l3 := digest.FromString("l1"), digest.FromString("l2"), digest.FromString("l3")
	cs := &fakeContent{
		done: map[digest.Digest]bool{l1: true},
		writing: []content.Status{
			{Ref: "layer-" + l2.String(), Expected: l2, Offset: 40 * mib, Total: 100 * mib},
			// Another pull's: not counted.
			{Ref: "other", Expected: digest.FromString("other"), Offset: 500 * mib},
		},
	}
	p := newPullProgress("docker.io/library/python:3", cs)
	ctx := context.Background()
	if s, err := p.status(ctx); err != nil || s != (pullStatus{}) {
		t.Fatalf("before the manifest: got %+v, %v; want nothing", s, err)
	}
	h := p.handler()
	for _, desc := range []ocispec.Descriptor{
		{MediaType: images.MediaTypeDockerSchema2Manifest, Digest: digest.FromString("m"), Size: 900},
		{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromString("c"), Size: 700},
		{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: l1, Size: 2 * mib},
		{MediaType: images.MediaTypeDockerSchema2LayerGzip, Digest: l2, Size: 100 * mib},
		{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: l3, Size: 10 * mib},
	} {
		if children, err := h.Handle(ctx, desc); err != nil || len(children) != 0 {
			t.Fatalf("handle %s: got %v, %v; want no children, no error", desc.MediaType, children, err)
		}
	}
	s, err := p.status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := pullStatus{Layers: 3, LayersDone: 1, Bytes: 112 * mib, BytesDone: 42 * mib}
	if s != want {
		t.Errorf("got %+v, want %+v", s, want)
	}
	if got, want := p.message(s), "pulling image docker.io/library/python:3: 1 of 3 layers, 42 MiB of 112 MiB"; got != want {
		t.Errorf("got message %q, want %q", got, want)
	}
}

func TestFormatSize(t *testing.T) {
	tests := map[string]struct {
		n    int64
		want string
	}{
		"nothing":    {0, "0 KiB"},
		"a byte":     {1, "1 KiB"},
		"under MiB":  {1<<20 - 1, "1024 KiB"},
		"one MiB":    {1 << 20, "1 MiB"},
		"41.9 MiB":   {41<<20 + 900<<10, "41 MiB"},
		"twelve GiB": {12 << 30, "12.0 GiB"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := formatSize(tc.n); got != tc.want {
				t.Errorf("formatSize(%d): got %q, want %q", tc.n, got, tc.want)
			}
		})
	}
}

// TestPullProgressReport checks that a pull's progress is recorded as
// image events no sooner than pullEventEvery apart, and only when it
// changed.
func TestPullProgressReport(t *testing.T) {
	l1 := digest.FromString("l1")
	cs := &fakeContent{writing: []content.Status{{Expected: l1, Offset: 3 << 20}}}
	p := newPullProgress("example.com/app:1", cs)
	if _, err := p.handler().Handle(context.Background(), ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: l1, Size: 8 << 20}); err != nil {
		t.Fatal(err)
	}
	type event struct {
		at       time.Duration
		typ, msg string
	}
	events := make(chan event, 10)
	start := time.Now()
	// Two and a half gaps: one event at the first gap, none at the second,
	// since nothing moved.
	ctx, cancel := context.WithTimeout(context.Background(), pullEventEvery*5/2)
	defer cancel()
	p.report(ctx, func(typ, msg string) { events <- event{time.Since(start), typ, msg} })
	close(events)
	var got []event
	for e := range events {
		got = append(got, e)
	}
	want := "pulling image example.com/app:1: 0 of 1 layer, 3 MiB of 8 MiB"
	if len(got) != 1 || got[0].typ != "image" || got[0].msg != want {
		t.Fatalf("got events %+v, want one image event %q", got, want)
	}
	if got[0].at < pullEventEvery {
		t.Errorf("got the event %s after the start, want at least %s", got[0].at, pullEventEvery)
	}
}
