package server

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hush-sh/hush/sdk/api"
)

// recordingImporter keeps what it was given to import.
type recordingImporter struct{ got [][]byte }

func (r *recordingImporter) Import(_ context.Context, archive io.Reader) ([]string, error) {
	b, err := io.ReadAll(archive)
	if err != nil {
		return nil, err
	}
	r.got = append(r.got, b)
	return []string{"docker.io/library/hello:latest"}, nil
}

// TestImportChecksArchive is issue 17 item 7: an upload that is not a tar
// is refused with what it is, before the importer sees it (which would say
// only "unexpected EOF"); a tar reaches the importer whole.
func TestImportChecksArchive(t *testing.T) {
	st, s := newHandler(t, t.TempDir())
	imp := &recordingImporter{}
	s.images = imp
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	root := client(t, st, srv, "root")

	var archive bytes.Buffer
	tw := tar.NewWriter(&archive)
	tw.WriteHeader(&tar.Header{Name: "index.json", Mode: 0o644, Size: 2})
	tw.Write([]byte("{}"))
	tw.Close()

	tests := map[string]struct {
		body []byte
		want string // "" when the import goes through
	}{
		"yaml":  {[]byte(strings.Repeat("name: hello\nimage: busybox\n", 30)), "does not start with a tar header"},
		"short": {[]byte("name: hello\n"), "shorter than one tar header"},
		"empty": {nil, "it is empty"},
		"tar":   {archive.Bytes(), ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			imp.got = nil
			names, err := root.ImportImage(context.Background(), bytes.NewReader(tc.body))
			if tc.want == "" {
				if err != nil || len(names) != 1 || len(imp.got) != 1 || !bytes.Equal(imp.got[0], tc.body) {
					t.Errorf("got %v, %v and %d imports, want the whole archive imported once", names, err, len(imp.got))
				}
				return
			}
			if !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), "the upload is not an image archive") ||
				!strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an invalid request saying %q", err, tc.want)
			}
			if len(imp.got) != 0 {
				t.Errorf("the importer got %d uploads, want none", len(imp.got))
			}
		})
	}
}
