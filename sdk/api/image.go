package api

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/distribution/reference"
)

// ImageRefExample is a valid image reference, for messages that show one.
const ImageRefExample = "docker.io/library/busybox:latest"

// ValidateImageRef checks that ref is an image reference as registries
// and containerd read them (the distribution reference grammar), such as
// busybox, busybox:1.36, ghcr.io/org/app:v1 or NAME@sha256:DIGEST. A
// reference that fails here would otherwise fail only when the runtime
// pulls it, with a registry's or DNS's error.
func ValidateImageRef(ref string) error {
	if strings.Contains(ref, "://") {
		return fmt.Errorf("image %q is not a valid image reference: it is a URL; drop the scheme, as in %s", ref, ImageRefExample)
	}
	if _, err := reference.ParseNormalizedNamed(ref); err != nil {
		return fmt.Errorf("image %q is not a valid image reference (%v): give one such as %s, busybox or ghcr.io/org/app:v1 (lowercase repository names; a tag after one ':', or a digest after '@')",
			ref, err, ImageRefExample)
	}
	return nil
}

// ImageArchiveHeadSize is how many bytes from the start of an image
// archive CheckImageArchive needs: one tar header block.
const ImageArchiveHeadSize = 512

// tarMagicOffset is where a ustar header keeps its magic, which both the
// POSIX ("ustar\x00") and the GNU ("ustar  \x00") formats begin with.
const tarMagicOffset = 257

// CheckImageArchive checks that head, the first ImageArchiveHeadSize bytes
// of an upload (fewer when it is shorter), starts a tar archive, the form
// `docker save` and `ctr images export` write and the only one the agent
// imports. Its error reads after the archive's name: "FILE is " + err.
// Checking first turns a wrong file into a clear refusal before a large
// upload, where the importer would say only "unexpected EOF".
func CheckImageArchive(head []byte) error {
	const what = "not an image archive (a tar made by `docker save`, `ctr images export` or similar)"
	switch {
	case len(head) == 0:
		return fmt.Errorf("%s: it is empty", what)
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return fmt.Errorf("%s: it is gzip-compressed; decompress it first (gunzip) and import the .tar", what)
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return fmt.Errorf("%s: it is zstd-compressed; decompress it first (unzstd) and import the .tar", what)
	case len(head) < tarMagicOffset+5:
		return fmt.Errorf("%s: it is %d bytes, shorter than one tar header", what, len(head))
	case !bytes.Equal(head[tarMagicOffset:tarMagicOffset+5], []byte("ustar")):
		return fmt.Errorf("%s: it does not start with a tar header", what)
	}
	return nil
}
