package server

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/runs"
	"github.com/hush-sh/hush/agent/runtime"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

func newTestServer(t *testing.T) (*store.Store, *httptest.Server) {
	t.Helper()
	return newTestServerAt(t, t.TempDir())
}

// newTestServerAt serves the store in dataDir.
func newTestServerAt(t *testing.T, dataDir string) (*store.Store, *httptest.Server) {
	t.Helper()
	st, s := newHandler(t, dataDir)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return st, srv
}

// newHandler returns a Server over a store in dataDir, with an exec
// runtime, not yet serving.
func newHandler(t *testing.T, dataDir string) (*store.Store, *Server) {
	t.Helper()
	st, err := store.Open(dataDir, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	dir := t.TempDir()
	rm, err := runs.NewManager(context.Background(), runs.Config{
		Store: st, Runtime: runtime.NewExec(hclog.NewNullLogger()),
		LogDir: filepath.Join(dir, "logs"), StateDir: filepath.Join(dir, "state"), KeyDir: filepath.Join(dir, "logkeys"),
		HushBinary: "/bin/false", AgentAddr: "http://127.0.0.1:1", StopGrace: time.Second,
		Logger: hclog.NewNullLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return st, New(st, rm, nil, nil, Info{Version: "test", Cluster: "c", Node: "n"}, hclog.NewNullLogger())
}

func client(t *testing.T, st *store.Store, srv *httptest.Server, user string) *api.Client {
	t.Helper()
	secret, _, err := st.IssueToken(user, user == "root", "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := api.NewClient(&api.Config{Address: srv.URL, Token: secret})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func envRequest(name string) *api.CreateSecretRequest {
	return &api.CreateSecretRequest{Name: name, Type: api.TypeEnv,
		Fields: map[string]string{api.FieldKey: "K"}, Data: map[string][]byte{api.FieldValue: []byte("v")}}
}

// TestConcurrentCreates races many clients: every distinct name is created
// once, and of many creates of one name exactly one wins.
func TestConcurrentCreates(t *testing.T) {
	st, srv := newTestServer(t)
	c := client(t, st, srv, "alice")
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, conflicts := 0, 0
	for i := range 40 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if _, err := c.CreateSecret(ctx, envRequest(fmt.Sprintf("s%d", i))); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			_, err := c.CreateSecret(ctx, envRequest("contested"))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, api.ErrExists):
				conflicts++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 || conflicts != 39 {
		t.Errorf("contested name: %d wins and %d conflicts, want 1 and 39", wins, conflicts)
	}
	list, err := c.ListSecrets(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 41 {
		t.Errorf("got %d secrets, want 41", len(list))
	}
}

func TestClientErrors(t *testing.T) {
	st, srv := newTestServer(t)
	alice := client(t, st, srv, "alice")
	ctx := context.Background()
	if _, err := alice.GetSecret(ctx, "nope"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("get missing: got %v, want ErrNotFound", err)
	}
	if _, err := alice.CreateToken(ctx, &api.CreateTokenRequest{User: "bob"}); !errors.Is(err, api.ErrForbidden) {
		t.Errorf("user creates token: got %v, want ErrForbidden", err)
	}
	root := client(t, st, srv, "root")
	tok, err := root.CreateToken(ctx, &api.CreateTokenRequest{User: "bob"})
	if err != nil || tok.Secret == "" || tok.User != "bob" {
		t.Fatalf("root creates token: got %+v, %v", tok, err)
	}
	self, err := alice.Self(ctx)
	if err != nil || self.User != "alice" || self.Cluster != "c" || self.Version != "test" {
		t.Errorf("self: got %+v, %v", self, err)
	}
	anon, _ := api.NewClient(&api.Config{Address: srv.URL})
	if _, err := anon.ListSecrets(ctx, ""); !errors.Is(err, api.ErrUnauthorized) {
		t.Errorf("no token: got %v, want ErrUnauthorized", err)
	}
	if _, err := anon.Health(ctx); err != nil {
		t.Errorf("health: %v", err)
	}
}

// TestExportDigestAndTombstones covers what sync and apply rely on: the
// owner's export returns the whole secret, a run's token cannot export,
// digests match content, and a deleted id is never created again.
func TestExportDigestAndTombstones(t *testing.T) {
	st, srv := newTestServer(t)
	alice, bob := client(t, st, srv, "alice"), client(t, st, srv, "bob")
	ctx := context.Background()
	req := envRequest("db")
	req.ID = "01KB4Z8Y3V6M2Q9T5R7W1X0C3D"
	req.CreatedAt = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	created, err := alice.CreateSecret(ctx, req)
	if err != nil {
		t.Fatal(err)
	}

	exp, err := alice.ExportSecret(ctx, "db")
	if err != nil {
		t.Fatal(err)
	}
	if exp.ID != req.ID || !exp.CreatedAt.Equal(req.CreatedAt) || string(exp.Data[api.FieldValue]) != "v" || exp.Fields[api.FieldKey] != "K" {
		t.Errorf("export: got %+v, want the secret as created", exp)
	}
	if _, err := bob.ExportSecret(ctx, "db"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("another user's export: got %v, want not found", err)
	}
	runSecret, _, err := st.IssueRunToken("alice", "01KB4Z8Y3V6M2Q9T5R7W1X0RUN", []string{"db"}, false)
	if err != nil {
		t.Fatal(err)
	}
	run, _ := api.NewClient(&api.Config{Address: srv.URL, Token: runSecret})
	if _, err := run.ExportSecret(ctx, "db"); !errors.Is(err, api.ErrForbidden) {
		t.Errorf("export with a run's token: got %v, want forbidden", err)
	}
	if _, err := run.DigestSecret(ctx, envRequest("db")); !errors.Is(err, api.ErrForbidden) {
		t.Errorf("digest with a run's token: got %v, want forbidden", err)
	}
	if listed, err := run.ListSecrets(ctx, ""); err != nil || len(listed) != 1 || listed[0].Digest != "" {
		t.Errorf("a run's listing: got %+v, %v; want the secret without its digest", listed, err)
	}

	same, err := alice.DigestSecret(ctx, envRequest("other-name"))
	if err != nil {
		t.Fatal(err)
	}
	changed := envRequest("db")
	changed.Data[api.FieldValue] = []byte("w")
	differs, err := alice.DigestSecret(ctx, changed)
	if err != nil {
		t.Fatal(err)
	}
	if same != created.Digest || differs == created.Digest {
		t.Errorf("digests: same content %s, other content %s, stored %s; want only the first equal", same, differs, created.Digest)
	}

	var apiErr *api.Error
	if err := alice.DeleteSecretID(ctx, "db", "01KB4Z8Y3V6M2Q9T5R7W1X0OTH"); !errors.As(err, &apiErr) || apiErr.Code != api.CodeIDMismatch {
		t.Errorf("delete with another id: got %v, want 409 %s", err, api.CodeIDMismatch)
	}
	if _, err := alice.CreateSecret(ctx, envRequest("db")); !errors.As(err, &apiErr) || apiErr.Code != api.CodeSecretExists {
		t.Errorf("create a second db: got %v, want 409 %s", err, api.CodeSecretExists)
	}
	if err := alice.DeleteSecretID(ctx, "db", req.ID); err != nil {
		t.Fatal(err)
	}
	graves, err := alice.ListTombstones(ctx)
	if err != nil || len(graves) != 1 || graves[0].ID != req.ID || graves[0].Name != "db" {
		t.Errorf("tombstones: got %v, %v; want one for %s", graves, err, req.ID)
	}
	if _, err := alice.CreateSecret(ctx, req); !errors.As(err, &apiErr) || apiErr.Code != api.CodeSecretDeleted || !strings.Contains(err.Error(), "was deleted") {
		t.Errorf("create a deleted id again: got %v, want 409 %s saying it was deleted", err, api.CodeSecretDeleted)
	}
	req.ID = ""
	if _, err := alice.CreateSecret(ctx, req); err != nil {
		t.Errorf("create the name again under a new id: %v", err)
	}
}

// TestRunTokenScope: a run's token sees only the secrets its run was given,
// and writes secrets only when its run spec grants it.
func TestRunTokenScope(t *testing.T) {
	st, srv := newTestServer(t)
	alice := client(t, st, srv, "alice")
	ctx := context.Background()
	for _, name := range []string{"given", "other"} {
		if _, err := alice.CreateSecret(ctx, envRequest(name)); err != nil {
			t.Fatal(err)
		}
	}
	runClient := func(write bool) *api.Client {
		secret, _, err := st.IssueRunToken("alice", "01KB4Z8Y3V6M2Q9T5R7W1X0RUN", []string{"given"}, write)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := api.NewClient(&api.Config{Address: srv.URL, Token: secret})
		return c
	}

	run := runClient(false)
	if listed, err := run.ListSecrets(ctx, ""); err != nil || len(listed) != 1 || listed[0].Name != "given" {
		t.Errorf("list: got %v, %v; want only the secret the run was given", listed, err)
	}
	if _, err := run.GetSecret(ctx, "other"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("get a secret the run was not given: got %v, want not found", err)
	}
	if _, err := run.CreateSecret(ctx, envRequest("planted")); !errors.Is(err, api.ErrForbidden) {
		t.Errorf("create: got %v, want forbidden", err)
	}
	if err := run.DeleteSecret(ctx, "given"); !errors.Is(err, api.ErrForbidden) {
		t.Errorf("delete: got %v, want forbidden", err)
	}
	if _, err := run.ListTombstones(ctx); !errors.Is(err, api.ErrForbidden) {
		t.Errorf("tombstones: got %v, want forbidden", err)
	}

	writer := runClient(true)
	if _, err := writer.CreateSecret(ctx, envRequest("planted")); err != nil {
		t.Errorf("create with the write grant: %v", err)
	}
	if err := writer.DeleteSecret(ctx, "planted"); err != nil {
		t.Errorf("delete with the write grant: %v", err)
	}
}

// TestRunTokenReach: a run's token reaches its run and the runs it
// launched, not its owner's other runs, and a run it launches gets no more
// than it has.
func TestRunTokenReach(t *testing.T) {
	st, srv := newTestServer(t)
	alice := client(t, st, srv, "alice")
	ctx := context.Background()
	req := func(name string) *api.CreateRunRequest {
		return &api.CreateRunRequest{Name: name, Image: "x", Command: "true"}
	}
	root, err := alice.CreateRun(ctx, req("root"))
	if err != nil {
		t.Fatal(err)
	}
	sibling, err := alice.CreateRun(ctx, req("sibling"))
	if err != nil {
		t.Fatal(err)
	}
	// The runs fail at once here (their entrypoint is /bin/false); a
	// token issued after root ended is not revoked with it.
	waitDone(t, alice, root.ID, sibling.ID)
	secret, _, err := st.IssueRunToken("alice", root.ID, []string{"given"}, false)
	if err != nil {
		t.Fatal(err)
	}
	run, _ := api.NewClient(&api.Config{Address: srv.URL, Token: secret})
	child, err := run.CreateRun(ctx, req("child"))
	if err != nil || child.Parent != root.ID {
		t.Fatalf("a child run: got %+v, %v; want one whose parent is root", child, err)
	}
	waitDone(t, alice, child.ID)
	greedy := req("greedy")
	greedy.Secrets = []string{"other"}
	if _, err := run.CreateRun(ctx, greedy); !errors.Is(err, api.ErrForbidden) {
		t.Errorf("a child that names a secret its parent was not given: got %v, want forbidden", err)
	}
	if _, err := run.GetRun(ctx, "sibling"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("get a sibling run: got %v, want not found", err)
	}
	if _, err := run.StopRun(ctx, "sibling"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("stop a sibling run: got %v, want not found", err)
	}
	if _, err := run.GetRun(ctx, "child"); err != nil {
		t.Errorf("get its child: %v", err)
	}
	list, err := run.ListRuns(ctx)
	var names []string
	for _, r := range list {
		names = append(names, r.Name)
	}
	if err != nil || strings.Join(names, ",") != "root,child" {
		t.Errorf("list: got %v, %v; want root and child", names, err)
	}
}

// waitDone waits until the runs have ended.
func waitDone(t *testing.T, c *api.Client, ids ...string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, id := range ids {
		for {
			r, err := c.GetRun(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status.Done() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("run %s is still %s", r.Name, r.Status)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
