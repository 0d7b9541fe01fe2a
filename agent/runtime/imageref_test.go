package runtime

import "testing"

func TestNormalizeRef(t *testing.T) {
	tests := map[string]struct{ ref, want, name string }{
		"short name":        {"busybox", "docker.io/library/busybox:latest", "busybox (docker.io/library/busybox:latest)"},
		"user repo and tag": {"alice/app:v1", "docker.io/alice/app:v1", "alice/app:v1 (docker.io/alice/app:v1)"},
		"registry port":     {"localhost:5000/app", "localhost:5000/app:latest", "localhost:5000/app (localhost:5000/app:latest)"},
		"full reference":    {"ghcr.io/org/app:v2", "ghcr.io/org/app:v2", "ghcr.io/org/app:v2"},
		"digest": {"busybox@sha256:" + "a3f1e5a9c3f6a0d0c2a5d3c1e8f9b7a6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0",
			"docker.io/library/busybox@sha256:a3f1e5a9c3f6a0d0c2a5d3c1e8f9b7a6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0", ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := normalizeRef(tc.ref)
			if got != tc.want {
				t.Errorf("normalizeRef(%q): got %q, want %q", tc.ref, got, tc.want)
			}
			if tc.name != "" {
				if n := imageName(tc.ref, got); n != tc.name {
					t.Errorf("imageName: got %q, want %q", n, tc.name)
				}
			}
		})
	}
}
