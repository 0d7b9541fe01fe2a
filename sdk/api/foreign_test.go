package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// nginxPage is the body nginx answers a path it does not serve with.
const nginxPage = "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n"

// TestForeignAnswers is issue 17 item 7: an address that is not a hush
// agent (here a web server, answering as nginx does) gets an error that
// names the address, the request and the answer and asks whether it is an
// agent, and that matches no kind; the agent's own answers are read as
// before.
func TestForeignAnswers(t *testing.T) {
	type answer struct {
		status      int
		contentType string
		body        string
	}
	tests := map[string]struct {
		answer
		call func(*Client) error
		// want is in the message; foreign says it is the hint's.
		want    string
		foreign bool
		kind    error // the kind it matches, for the agent's own answers
	}{
		"nginx 404": {
			answer: answer{404, "text/html", nginxPage},
			call:   func(c *Client) error { _, err := c.ListSecrets(context.Background(), ""); return err },
			want:   "answered 404 Not Found (text/html) to GET /v1/secrets: is it a hush agent?", foreign: true,
		},
		"nginx 404 to a secret": {
			answer: answer{404, "text/html", nginxPage},
			call:   func(c *Client) error { _, err := c.GetSecret(context.Background(), "db"); return err },
			want:   "answered 404 Not Found (text/html) to GET /v1/secrets/db", foreign: true,
		},
		"bad gateway": {
			answer: answer{502, "text/html", "<html><body>502 Bad Gateway</body></html>"},
			call:   func(c *Client) error { _, err := c.Self(context.Background()); return err },
			want:   "answered 502 Bad Gateway (text/html) to GET /v1/agent/self", foreign: true,
		},
		"empty 404": {
			answer: answer{404, "", ""},
			call:   func(c *Client) error { return c.DeleteSecret(context.Background(), "db") },
			want:   "answered 404 Not Found to DELETE /v1/secrets/db", foreign: true,
		},
		"a page for every path": {
			answer: answer{200, "text/html; charset=utf-8", "<!doctype html><title>Welcome to nginx!</title>"},
			call:   func(c *Client) error { return c.DeleteSecret(context.Background(), "db") },
			want:   "answered 200 OK (text/html) to DELETE /v1/secrets/db: is it a hush agent?", foreign: true,
		},
		"plain text": {
			answer: answer{200, "text/plain", "hello"},
			call:   func(c *Client) error { _, err := c.ListSecrets(context.Background(), ""); return err },
			want:   "answered 200 OK (text/plain) to GET /v1/secrets", foreign: true,
		},
		"the agent's not found": {
			answer: answer{404, "application/json", `{"error":"secret db not found","code":"not_found"}`},
			call:   func(c *Client) error { _, err := c.GetSecret(context.Background(), "db"); return err },
			want:   "secret db not found", kind: ErrNotFound,
		},
		"a plain request to the agent's TLS": {
			answer: answer{400, "text/plain", "Client sent an HTTP request to an HTTPS server.\n"},
			call:   func(c *Client) error { _, err := c.ListSecrets(context.Background(), ""); return err },
			want:   "use an https:// address", kind: ErrInvalid,
		},
		"a rate limiter": {
			answer: answer{429, "", ""},
			call:   func(c *Client) error { _, err := c.ListSecrets(context.Background(), ""); return err },
			want:   "retry in", kind: ErrRateLimited,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Server", "nginx/1.22.1")
				if tc.contentType != "" {
					w.Header().Set("Content-Type", tc.contentType)
				}
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			c, err := NewClient(&Config{Address: srv.URL, Token: "t"})
			if err != nil {
				t.Fatal(err)
			}
			err = tc.call(c)
			var ae *Error
			if !errors.As(err, &ae) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an *Error saying %q", err, tc.want)
			}
			if ae.Foreign != tc.foreign {
				t.Errorf("got Foreign %v, want %v", ae.Foreign, tc.foreign)
			}
			if tc.foreign {
				if !strings.HasPrefix(err.Error(), srv.URL+" answered ") || !strings.Contains(err.Error(), "check HUSH_ADDR or your cluster's address (`hush cluster list`)") {
					t.Errorf("got %q, want it to start with the address %s and say where to check it", err, srv.URL)
				}
				for _, kind := range []error{ErrNotFound, ErrInvalid, ErrUnavailable, ErrInternal} {
					if errors.Is(err, kind) {
						t.Errorf("a foreign answer matches %v, want no kind", kind)
					}
				}
			}
			if tc.kind != nil && !errors.Is(err, tc.kind) {
				t.Errorf("got %v, want it to match %v", err, tc.kind)
			}
		})
	}
}
