package config

import (
	"fmt"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// Defaults of the http block.
const (
	DefaultReadHeaderTimeout = "10s"
	DefaultReadTimeout       = "30s"
	DefaultWriteTimeout      = "60s"
	DefaultIdleTimeout       = "2m"
	DefaultMaxConnections    = 1024
	DefaultRateLimit         = 100
	DefaultRateBurst         = 1000
)

// HTTPConfig is the http block: how long the API waits on a client, how
// many clients it serves at once, and how fast one token may ask.
type HTTPConfig struct {
	// ReadHeaderTimeout bounds the time a client has to send a request's
	// headers, as a Go duration. Default "10s".
	ReadHeaderTimeout string `hcl:"read_header_timeout,optional"`
	// ReadTimeout bounds the time a client has to send a whole request,
	// headers and body, as a Go duration. Image imports, which a
	// management token sends, get an hour. Default "30s".
	ReadTimeout string `hcl:"read_timeout,optional"`
	// WriteTimeout bounds the time the agent takes to answer a request,
	// as a Go duration; a streamed answer (`hush logs -f`) is bounded per
	// write instead, and a blocking query gets its wait on top, so that
	// neither is cut while it has something to wait for. Default "60s".
	WriteTimeout string `hcl:"write_timeout,optional"`
	// IdleTimeout bounds how long a kept-alive connection waits for its
	// next request, as a Go duration. Default "2m".
	IdleTimeout string `hcl:"idle_timeout,optional"`
	// MaxConnections caps the connections served at once; more wait to be
	// accepted. It is lowered to fit the agent's open-file limit, which the
	// agent raises to its hard limit at start. Default 1024.
	MaxConnections int `hcl:"max_connections,optional"`
	// RateLimit is how many requests per second one token may send, on
	// average; past it the agent answers 429 with Retry-After. Every
	// token counts, management and run tokens included. 0 turns the limit
	// off. Default 100.
	RateLimit *float64 `hcl:"rate_limit,optional"`
	// RateBurst is how many requests one token may send at once above
	// RateLimit, such as a script creating hundreds of secrets in
	// parallel. Default 1000.
	RateBurst int `hcl:"rate_burst,optional"`
}

// HTTPLimits are the http block's settings, parsed and with defaults in.
type HTTPLimits struct {
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	MaxConnections                                            int
	RateLimit                                                 float64
	RateBurst                                                 int
}

// HTTPLimits returns the http block's settings with defaults filled in.
// Call it only on a validated config.
func (c *Config) HTTPLimits() HTTPLimits {
	h := c.HTTP
	if h == nil {
		h = &HTTPConfig{}
	}
	dur := func(v, def string) time.Duration {
		if v == "" {
			v = def
		}
		d, _ := time.ParseDuration(v)
		return d
	}
	l := HTTPLimits{
		ReadHeaderTimeout: dur(h.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       dur(h.ReadTimeout, DefaultReadTimeout),
		WriteTimeout:      dur(h.WriteTimeout, DefaultWriteTimeout),
		IdleTimeout:       dur(h.IdleTimeout, DefaultIdleTimeout),
		MaxConnections:    orDefault(h.MaxConnections, DefaultMaxConnections),
		RateLimit:         DefaultRateLimit,
		RateBurst:         orDefault(h.RateBurst, DefaultRateBurst),
	}
	if h.RateLimit != nil {
		l.RateLimit = *h.RateLimit
	}
	return l
}

// orDefault returns v, or def when v is not set.
func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// validate checks the http block; bad reports a problem with one of
// its attributes.
func (h *HTTPConfig) validate(bad func(key, summary, detail string, fallback *hcl.Range)) {
	if h == nil {
		return
	}
	for attr, v := range map[string]string{
		"read_header_timeout": h.ReadHeaderTimeout, "read_timeout": h.ReadTimeout,
		"write_timeout": h.WriteTimeout, "idle_timeout": h.IdleTimeout,
	} {
		if v == "" {
			continue
		}
		if d, err := time.ParseDuration(v); err != nil || d <= 0 {
			bad("http."+attr, "Invalid timeout", fmt.Sprintf("http %s %q must be a positive duration such as \"30s\" or \"2m\".", attr, v), nil)
		}
	}
	if h.MaxConnections < 0 {
		bad("http.max_connections", "Invalid connection limit",
			fmt.Sprintf("http max_connections %d must be a number of connections, such as %d.", h.MaxConnections, DefaultMaxConnections), nil)
	}
	if h.RateLimit != nil && *h.RateLimit < 0 {
		bad("http.rate_limit", "Invalid rate limit",
			fmt.Sprintf("http rate_limit %v must be requests per second per token, such as %d, or 0 for no limit.", *h.RateLimit, DefaultRateLimit), nil)
	}
	if h.RateBurst < 0 {
		bad("http.rate_burst", "Invalid rate burst",
			fmt.Sprintf("http rate_burst %d must be a number of requests, such as %d.", h.RateBurst, DefaultRateBurst), nil)
	}
}
