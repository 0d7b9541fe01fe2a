package cli

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImageImportRefusesNonArchive is issue 17 item 7: a file that is not
// an image archive is refused before any upload (HUSH_ADDR points nowhere
// here), naming the file and what an archive is, with exit 1.
func TestImageImportRefusesNonArchive(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "some.yaml")
	if err := os.WriteFile(spec, []byte("name: hello\nimage: busybox\ncommand: echo hi\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HUSH_ADDR": "http://127.0.0.1:1", "HUSH_TOKEN": "t", "HOME": dir}
	code, out, errw := hush(t, env, "image", "import", spec)
	want := spec + " is not an image archive (a tar made by `docker save`, `ctr images export` or similar)"
	if code != 1 || !strings.Contains(errw, want) || strings.Contains(errw, "cannot reach") || out != "" {
		t.Errorf("got exit %d, stdout %q, stderr %q; want 1 and %q, before any request", code, out, errw, want)
	}
}

// TestNotAnAgent is issue 17 item 7: an address where a web server answers
// (here as nginx does) is named in the error, with a hint to check it.
func TestNotAnAgent(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "nginx/1.22.1")
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte("<html><head><title>404 Not Found</title></head><body><center><h1>404 Not Found</h1></center></body></html>"))
	}))
	t.Cleanup(srv.Close)
	env := map[string]string{"HUSH_ADDR": srv.URL, "HUSH_TOKEN": "t", "HOME": t.TempDir()}
	code, out, errw := hush(t, env, "get", "secrets")
	want := srv.URL + " answered 404 Not Found (text/html) to GET /v1/secrets: is it a hush agent? check HUSH_ADDR or your cluster's address (`hush cluster list`)"
	if code != 1 || !strings.Contains(out+errw, want) {
		t.Errorf("got exit %d, stdout %q, stderr %q; want 1 and %q", code, out, errw, want)
	}
}
