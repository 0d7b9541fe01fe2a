package server

import (
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/config"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
	"golang.org/x/net/netutil"
	"golang.org/x/sys/unix"
	"golang.org/x/time/rate"
)

const (
	// maxHeaderBytes bounds a request's headers: a token and a few
	// short fields need far less than net/http's 1 MiB.
	maxHeaderBytes = 64 << 10
	// maxImageSize bounds an image archive a management token imports.
	maxImageSize = 64 << 30
	// importTimeout is how long an image import may take to arrive and
	// load, in place of the read and write timeouts.
	importTimeout = time.Hour
	// importPath is the one endpoint whose body may exceed maxBodySize.
	importPath = "/v1/images/import"
)

// SetLimits sets the timeouts and the per-token rate limit the server
// applies; New starts with the defaults. Call it before serving.
func (s *Server) SetLimits(l config.HTTPLimits) {
	s.limits = l
	s.rates = newRateLimiter(l.RateLimit, l.RateBurst)
}

// HTTPServer returns an http.Server that serves s with its limits. Its
// ReadTimeout bounds a request's headers and body together (net/http
// lifts it once the body is in, so a long request keeps its context); its
// WriteTimeout bounds the answer, which a blocking query or a streamed log
// extends for itself (see streamWriter).
func (s *Server) HTTPServer(errorLog *log.Logger) *http.Server {
	return NewHTTPServer(s, s.limits, errorLog)
}

// NewHTTPServer returns the HTTP server of handler h with the timeouts of
// limits.
func NewHTTPServer(h http.Handler, limits config.HTTPLimits, errorLog *log.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: limits.ReadHeaderTimeout,
		ReadTimeout:       limits.ReadTimeout,
		WriteTimeout:      limits.WriteTimeout,
		IdleTimeout:       limits.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          errorLog,
	}
}

// capBody caps the request's body before any handler reads it: image
// archives at maxImageSize, everything else at maxBodySize.
func capBody(w http.ResponseWriter, r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	limit := int64(maxBodySize)
	switch r.URL.Path {
	case importPath:
		limit = maxImageSize
	case snapshotPath:
		limit = maxSnapshotSize
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
}

// extendDeadlines gives a request d more to read its body and write its
// answer, from now.
func extendDeadlines(w http.ResponseWriter, d time.Duration) {
	rc := http.NewResponseController(w)
	t := time.Now().Add(d)
	_ = rc.SetReadDeadline(t)
	_ = rc.SetWriteDeadline(t)
}

// streamWriter writes a streamed answer, giving each write and flush its
// own write deadline: a follower that stops reading is cut after the
// write timeout, one that waits on a quiet run never is.
type streamWriter struct {
	w       io.Writer
	rc      *http.ResponseController
	timeout time.Duration
}

func newStreamWriter(w http.ResponseWriter, timeout time.Duration) *streamWriter {
	return &streamWriter{w: w, rc: http.NewResponseController(w), timeout: timeout}
}

func (s *streamWriter) extend() { _ = s.rc.SetWriteDeadline(time.Now().Add(s.timeout)) }

func (s *streamWriter) Write(p []byte) (int, error) {
	s.extend()
	return s.w.Write(p)
}

func (s *streamWriter) Flush() {
	s.extend()
	_ = s.rc.Flush()
}

// allow answers 429 and returns false when tok has sent more requests
// than the rate limit allows.
func (s *Server) allow(w http.ResponseWriter, tok *store.Token) bool {
	wait, warn := s.rates.take(tok.Accessor, time.Now())
	if wait <= 0 {
		return true
	}
	secs := int(math.Ceil(wait.Seconds()))
	if warn {
		s.logger.Warn("token over its rate limit; answering 429", "accessor", tok.Accessor, "user", tok.User,
			"rate_limit", s.limits.RateLimit, "rate_burst", s.limits.RateBurst)
	}
	w.Header().Set("Retry-After", fmt.Sprint(secs))
	writeError(w, api.CodeRateLimited, fmt.Sprintf(
		"too many requests with this token: the agent allows %v a second, in bursts of up to %d; retry in %ds, or ask the operator to raise rate_limit in the agent's http block",
		s.limits.RateLimit, s.limits.RateBurst, secs))
	return false
}

// rateLimiter keeps a token bucket per token accessor. A bucket left
// alone long enough to fill up is dropped: a new one is the same.
type rateLimiter struct {
	limit rate.Limit
	burst int
	idle  time.Duration // how long a bucket takes to fill up

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	lim    *rate.Limiter
	seen   time.Time
	warned time.Time
}

// newRateLimiter returns a limiter, or nil, which allows everything, when
// perSecond is 0.
func newRateLimiter(perSecond float64, burst int) *rateLimiter {
	if perSecond <= 0 {
		return nil
	}
	burst = max(burst, 1)
	fill := time.Duration(float64(burst) / perSecond * float64(time.Second))
	return &rateLimiter{limit: rate.Limit(perSecond), burst: burst, idle: max(fill, time.Minute), buckets: map[string]*bucket{}}
}

// take spends one request of key's bucket at now. It returns how long to
// wait when the bucket is empty (0 when the request may go ahead), and
// whether to log that, which it says at most once a minute per key.
func (l *rateLimiter) take(key string, now time.Time) (wait time.Duration, warn bool) {
	if l == nil {
		return 0, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > l.idle {
		for k, b := range l.buckets {
			if now.Sub(b.seen) > l.idle {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b := l.buckets[key]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[key] = b
	}
	b.seen = now
	r := b.lim.ReserveN(now, 1)
	if wait = r.DelayFrom(now); wait <= 0 {
		return 0, false
	}
	r.CancelAt(now) // a refused request costs nothing
	if now.Sub(b.warned) > time.Minute {
		b.warned, warn = now, true
	}
	return wait, warn
}

// LimitListener caps the connections ln serves at once at n, lowered to
// fit the process's open-file limit with room left for the store, run
// logs and plugins. Connections past the cap wait in the kernel's accept
// queue, holding none of the agent's descriptors. Go raises the soft
// open-file limit to the hard limit at start; the log says what it is.
func LimitListener(ln net.Listener, n int, logger hclog.Logger) net.Listener {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		logger.Warn("cannot read the open-file limit", "error", err)
	} else {
		if fit := fitConnections(rl.Cur); n > fit {
			logger.Warn("serving fewer connections than max_connections, to fit the open-file limit; raise LimitNOFILE (systemd) or ulimit -Hn to serve more",
				"max_connections", n, "serving", fit, "open_file_limit", rl.Cur)
			n = fit
		}
		logger.Info("connection limit", "max_connections", n, "open_file_limit", rl.Cur, "open_file_hard_limit", rl.Max)
	}
	return netutil.LimitListener(ln, n)
}

// fitConnections is how many connections fit in nofile descriptors,
// keeping a quarter (at least 64) for everything else.
func fitConnections(nofile uint64) int {
	reserve := max(64, nofile/4)
	if nofile < 2*reserve {
		return int(max(nofile/2, 1))
	}
	return int(min(nofile-reserve, math.MaxInt32))
}
