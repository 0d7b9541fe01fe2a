package api

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"strings"
	"testing"
)

// Image references follow the distribution grammar: what a registry and
// containerd accept passes, anything else fails at once with an example.
func TestValidateImageRef(t *testing.T) {
	tests := map[string]struct {
		ref  string
		want string // "" when valid; else a part of the message
	}{
		"short name":         {"busybox", ""},
		"tag":                {"busybox:1.36", ""},
		"full":               {"docker.io/library/busybox:latest", ""},
		"registry with port": {"localhost:5000/team/app:v1", ""},
		"digest":             {"ghcr.io/org/app@sha256:" + strings.Repeat("a", 64), ""},
		"issue 17":           {"UPPER/Case::x", "must be lowercase"},
		"uppercase":          {"Busybox", "must be lowercase"},
		"double colon":       {"busybox::1", "invalid reference format"},
		"space":              {"busy box", "invalid reference format"},
		"url":                {"https://ghcr.io/org/app", "drop the scheme"},
		"bad digest":         {"busybox@sha256:nothex", "invalid"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := ValidateImageRef(tc.ref)
			if tc.want == "" {
				if err != nil {
					t.Errorf("got %v, want valid", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), ImageRefExample) ||
				!strings.Contains(err.Error(), tc.ref) {
				t.Errorf("got %v, want an error naming %q, saying %q and showing %s", err, tc.ref, tc.want, ImageRefExample)
			}
		})
	}
}

// Only a tar passes the archive check; other files are refused with what
// they look like.
func TestCheckImageArchive(t *testing.T) {
	tarOf := func(format tar.Format) []byte {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		if err := tw.WriteHeader(&tar.Header{Name: "index.json", Mode: 0o644, Size: 2, Format: format}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte("{}"))
		tw.Close()
		return b.Bytes()
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tarOf(tar.FormatPAX))
	zw.Close()

	tests := map[string]struct {
		head []byte
		want string // "" when it passes
	}{
		"ustar":  {tarOf(tar.FormatUSTAR), ""},
		"pax":    {tarOf(tar.FormatPAX), ""},
		"gnu":    {tarOf(tar.FormatGNU), ""},
		"yaml":   {[]byte(strings.Repeat("name: hello\nimage: busybox\ncommand: echo hi\n", 20)), "does not start with a tar header"},
		"short":  {[]byte("name: hello\n"), "12 bytes, shorter than one tar header"},
		"empty":  {nil, "it is empty"},
		"gzip":   {gz.Bytes(), "gzip-compressed"},
		"zstd":   {append([]byte{0x28, 0xb5, 0x2f, 0xfd}, make([]byte, 600)...), "zstd-compressed"},
		"zeroes": {make([]byte, 1024), "does not start with a tar header"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			head := tc.head[:min(len(tc.head), ImageArchiveHeadSize)]
			err := CheckImageArchive(head)
			if tc.want == "" {
				if err != nil {
					t.Errorf("got %v, want it to pass", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "not an image archive (a tar made by `docker save`") {
				t.Errorf("got %v, want a refusal saying %q", err, tc.want)
			}
		})
	}
}
