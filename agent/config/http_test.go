package config

import (
	"strings"
	"testing"
	"time"
)

func TestHTTPBlock(t *testing.T) {
	defaults := HTTPLimits{
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: time.Minute,
		IdleTimeout: 2 * time.Minute, MaxConnections: 1024, RateLimit: 100, RateBurst: 1000,
	}
	tests := map[string]struct {
		src  string
		want HTTPLimits
	}{
		"no block": {``, defaults},
		"empty":    {`http {}`, defaults},
		"all set": {`http {
  read_header_timeout = "5s"
  read_timeout        = "1m"
  write_timeout       = "90s"
  idle_timeout        = "30s"
  max_connections     = 50
  rate_limit          = 2.5
  rate_burst          = 10
}`, HTTPLimits{5 * time.Second, time.Minute, 90 * time.Second, 30 * time.Second, 50, 2.5, 10}},
		"rate limit off": {`http { rate_limit = 0 }`, func() HTTPLimits { l := defaults; l.RateLimit = 0; return l }()},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, diags := LoadFiles(writeFile(t, "a.hcl", tc.src))
			if diags.HasErrors() {
				t.Fatal(FormatDiagnostics(diags))
			}
			if got := c.HTTPLimits(); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestHTTPBlockInvalid(t *testing.T) {
	tests := map[string]struct {
		src  string
		want string
	}{
		"bad duration":      {"http {\n  read_timeout = \"soon\"\n}", `a.hcl:2:3: Invalid timeout; http read_timeout "soon" must be a positive duration`},
		"zero timeout":      {"http {\n  write_timeout = \"0s\"\n}", `a.hcl:2:3: Invalid timeout; http write_timeout "0s"`},
		"negative conns":    {"http {\n  max_connections = -1\n}", `a.hcl:2:3: Invalid connection limit`},
		"negative rate":     {"http {\n  rate_limit = -1\n}", `a.hcl:2:3: Invalid rate limit`},
		"negative burst":    {"http {\n  rate_burst = -5\n}", `a.hcl:2:3: Invalid rate burst`},
		"unknown attribute": {"http {\n  write_timout = \"1s\"\n}", `Unsupported argument`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, diags := LoadFiles(writeFile(t, "a.hcl", tc.src))
			if got := FormatDiagnostics(diags); !strings.Contains(got, tc.want) {
				t.Errorf("got %q, want it to contain %q", got, tc.want)
			}
		})
	}
}
