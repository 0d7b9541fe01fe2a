package api

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A client given several servers goes on to the next when one cannot be
// reached, and stays with the one that answered.
func TestClientFailsOver(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String()
	l.Close()
	calls := 0
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.Write([]byte(`{"status":"ok"}`))
	}))
	defer up.Close()

	c, err := NewClient(&Config{Address: down + ", " + up.URL})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := c.Health(context.Background()); err != nil {
			t.Fatalf("health through the second server: %v", err)
		}
	}
	if c.Address() != up.URL || calls != 2 {
		t.Errorf("got address %s after %d calls, want %s after 2", c.Address(), calls, up.URL)
	}

	c, err = NewClient(&Config{Address: down})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Health(context.Background()); err == nil || !strings.Contains(err.Error(), "cannot reach the agent at "+down) {
		t.Errorf("one server down: got %v, want an error naming it", err)
	}
	if _, err := NewClient(&Config{Address: up.URL + ",ftp://x"}); err == nil || !strings.Contains(err.Error(), "scheme must be http or https") {
		t.Errorf("a bad second address: got %v", err)
	}
}

// A client made to read stale asks for it on GETs, and only on GETs.
func TestClientStale(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.RawQuery)
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	for _, stale := range []bool{false, true} {
		got = nil
		c, err := NewClient(&Config{Address: srv.URL, Stale: stale})
		if err != nil {
			t.Fatal(err)
		}
		c.ListSecrets(context.Background(), TypeEnv)
		c.RevokeToken(context.Background(), "x")
		want := []string{"GET type=env", "DELETE "}
		if stale {
			want[0] = "GET stale=&type=env"
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("stale %v: got requests %q, want %q", stale, got, want)
		}
	}
}
