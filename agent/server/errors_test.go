package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hush-sh/hush/sdk/api"
)

// TestErrorCodes: every error answer carries a code, its status follows
// from the code's kind, and the client rebuilds the kind for errors.Is.
func TestErrorCodes(t *testing.T) {
	st, srv := newTestServer(t)
	alice := client(t, st, srv, "alice")
	ctx := context.Background()
	run, err := alice.CreateRun(ctx, &api.CreateRunRequest{Name: "ends", Image: "x", Command: "true"})
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, alice, run.ID)
	secret, _, _ := st.IssueToken("alice", false, "")
	root, rootTok, _ := st.IssueToken("root", true, "")
	rootAccessor := rootTok.Accessor
	expired, _, _ := st.IssueTokenTTL("alice", "", time.Nanosecond)

	tests := map[string]struct {
		method, path, token, body string
		status                    int
		code, field               string
		kind                      error
	}{
		"no token":        {"GET", "/v1/secrets", "", "", 401, api.CodeUnauthenticated, "", api.ErrUnauthorized},
		"token expired":   {"GET", "/v1/secrets", expired, "", 401, api.CodeTokenExpired, "", api.ErrUnauthorized},
		"last management": {"DELETE", "/v1/acl/tokens/" + rootAccessor, root, "", 409, api.CodeLastManagementToken, "", api.ErrConflict},
		"no such secret":  {"GET", "/v1/secrets/nope", secret, "", 404, api.CodeNotFound, "", api.ErrNotFound},
		"not management":  {"POST", "/v1/acl/tokens", secret, `{"user":"bob"}`, 403, api.CodeForbidden, "", api.ErrForbidden},
		"wrong JSON type": {"POST", "/v1/secrets", secret, `{"name":5}`, 400, api.CodeInvalid, "name", api.ErrInvalid},
		"immutable":       {"PUT", "/v1/secrets/x", secret, `{}`, 405, api.CodeImmutable, "", api.ErrInvalid},
		"run has ended":   {"POST", "/v1/runs/ends/stop", secret, "", 409, api.CodeRunEnded, "", api.ErrConflict},
		"no images":       {"POST", "/v1/images/import", root, "", 409, api.CodeNoImages, "", api.ErrConflict},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var er api.ErrorResponse
			if err := json.Unmarshal(b, &er); err != nil {
				t.Fatalf("body %q: %v", b, err)
			}
			if resp.StatusCode != tc.status || er.Code != tc.code || er.Field != tc.field || er.Error == "" {
				t.Errorf("got %d %+v, want %d code %q field %q and a message", resp.StatusCode, er, tc.status, tc.code, tc.field)
			}
			e := &api.Error{StatusCode: resp.StatusCode, Message: er.Error, Code: er.Code}
			if !errors.Is(e, tc.kind) {
				t.Errorf("the client's error does not match %v", tc.kind)
			}
		})
	}
	// "Run has ended" is no longer read as "already exists".
	if _, err := alice.StopRun(ctx, "ends"); !errors.Is(err, api.ErrConflict) || errors.Is(err, api.ErrExists) {
		t.Errorf("stop an ended run: got %v, want a conflict that is not ErrExists", err)
	}
}
