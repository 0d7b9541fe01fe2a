package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/config"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

// serveLimited serves a new Server with limits as the agent does: its
// http.Server over a capped listener on 127.0.0.1. It returns the store
// and the server's address.
func serveLimited(t *testing.T, limits config.HTTPLimits) (*store.Store, string) {
	t.Helper()
	st, s := newHandler(t, t.TempDir())
	s.SetLimits(limits)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := s.HTTPServer(nil)
	go hs.Serve(LimitListener(ln, limits.MaxConnections, hclog.NewNullLogger()))
	t.Cleanup(func() { hs.Close() })
	return st, ln.Addr().String()
}

// testLimits are the defaults with shorter timeouts, so tests end soon.
func testLimits(read, write time.Duration) config.HTTPLimits {
	l := (&config.Config{}).HTTPLimits()
	l.ReadTimeout, l.WriteTimeout = read, write
	return l
}

func newClient(t *testing.T, st *store.Store, addr, user string) *api.Client {
	t.Helper()
	secret, _, err := st.IssueToken(user, user == "root", "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := api.NewClient(&api.Config{Address: "http://" + addr, Token: secret})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSlowBodies: 200 connections that post a body at a byte every 2s
// with a valid token neither lock out a normal request nor outlive the
// read timeout.
func TestSlowBodies(t *testing.T) {
	const conns, readTimeout = 200, 4 * time.Second
	st, addr := serveLimited(t, testLimits(readTimeout, 10*time.Second))
	slow, _, err := st.IssueToken("mallory", false, "")
	if err != nil {
		t.Fatal(err)
	}
	alice := newClient(t, st, addr, "alice")

	start := time.Now()
	cut := make(chan time.Duration, conns)
	var opened sync.WaitGroup
	for range conns {
		opened.Add(1)
		go func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				opened.Done()
				t.Error(err)
				return
			}
			defer c.Close()
			fmt.Fprintf(c, "POST /v1/secrets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n", slow)
			opened.Done()
			buf := make([]byte, 512)
			for {
				if _, err := c.Write([]byte("{")); err != nil {
					break
				}
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				_, err := c.Read(buf)
				var ne net.Error
				if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
					break // an answer, or the agent hung up
				}
			}
			cut <- time.Since(start)
		}()
	}
	opened.Wait()
	time.Sleep(500 * time.Millisecond) // the agent has them all now

	asked := time.Now()
	if _, err := alice.ListSecrets(context.Background(), ""); err != nil {
		t.Fatalf("a normal request among %d slow ones: %v", conns, err)
	}
	took := time.Since(asked)
	t.Logf("a normal request among %d slow bodies answered in %v", conns, took)
	if took > time.Second {
		t.Errorf("a normal request took %v among slow bodies, want under 1s", took)
	}

	var longest time.Duration
	for range conns {
		select {
		case d := <-cut:
			longest = max(longest, d)
		case <-time.After(readTimeout + 10*time.Second):
			t.Fatalf("slow bodies still open %v after they began, with read_timeout %v", time.Since(start), readTimeout)
		}
	}
	t.Logf("all %d slow bodies cut within %v (read_timeout %v)", conns, longest, readTimeout)
	// The last byte can take 2s more to notice the cut.
	if bound := readTimeout + 3*time.Second; longest > bound {
		t.Errorf("slow bodies cut after %v, want within %v", longest, bound)
	}
}

// serveFunc serves h behind s's limits, as the agent serves its API.
func serveFunc(t *testing.T, limits config.HTTPLimits, h func(s *Server, w http.ResponseWriter, r *http.Request)) string {
	t.Helper()
	_, s := newHandler(t, t.TempDir())
	s.SetLimits(limits)
	hs := s.HTTPServer(nil)
	hs.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		capBody(w, r)
		h(s, w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return "http://" + ln.Addr().String()
}

// TestStreamOutlivesWriteTimeout: a streamed answer that goes quiet for
// longer than the write timeout is not cut, where a plain answer is.
func TestStreamOutlivesWriteTimeout(t *testing.T) {
	const timeout = time.Second
	tests := map[string]struct {
		streamed bool
		wantLate bool
	}{
		"streamed writer": {true, true},
		"plain writer":    {false, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			url := serveFunc(t, testLimits(timeout, timeout), func(s *Server, w http.ResponseWriter, r *http.Request) {
				var out io.Writer = w
				flush := func() { http.NewResponseController(w).Flush() }
				if tc.streamed {
					sw := newStreamWriter(w, s.limits.WriteTimeout)
					out, flush = sw, sw.Flush
					defer sw.extend()
				}
				fmt.Fprintln(out, "early")
				flush()
				time.Sleep(2*timeout + timeout/2)
				fmt.Fprintln(out, "late")
				flush()
			})
			resp, err := http.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if got := strings.Contains(string(body), "late"); got != tc.wantLate {
				t.Errorf("got %q (read error %v), want late: %v", body, err, tc.wantLate)
			}
		})
	}
}

// TestLongRequestKeepsContext: a request that takes longer than the read
// timeout, a blocking query for one, keeps its context: the read timeout
// bounds the body only.
func TestLongRequestKeepsContext(t *testing.T) {
	const timeout = time.Second
	url := serveFunc(t, testLimits(timeout, 10*timeout), func(_ *Server, w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		select {
		case <-r.Context().Done():
			http.Error(w, "canceled", 500)
		case <-time.After(2*timeout + timeout/2):
			fmt.Fprint(w, "waited")
		}
	})
	for name, body := range map[string]string{"a body": `{"a":1}`} {
		t.Run(name, func(t *testing.T) {
			resp, err := http.Post(url, "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if string(got) != "waited" {
				t.Errorf("got %d %q, want waited", resp.StatusCode, got)
			}
		})
	}
}

// TestRateLimit: a token past its burst gets 429 with Retry-After, which
// the client reads; other tokens are not slowed, and management tokens
// are limited too.
func TestRateLimit(t *testing.T) {
	limits := testLimits(time.Minute, time.Minute)
	limits.RateLimit, limits.RateBurst = 0.5, 3
	st, addr := serveLimited(t, limits)
	ctx := context.Background()
	for _, user := range []string{"alice", "root"} {
		c := newClient(t, st, addr, user)
		for i := range 3 {
			if _, err := c.ListSecrets(ctx, ""); err != nil {
				t.Fatalf("%s request %d of a burst of 3: %v", user, i+1, err)
			}
		}
		_, err := c.ListSecrets(ctx, "")
		var ae *api.Error
		if !errors.As(err, &ae) || !errors.Is(err, api.ErrRateLimited) {
			t.Fatalf("%s past the burst: got %v, want ErrRateLimited", user, err)
		}
		if ae.StatusCode != http.StatusTooManyRequests || ae.Code != api.CodeRateLimited {
			t.Errorf("%s: got %d %q, want 429 %q", user, ae.StatusCode, ae.Code, api.CodeRateLimited)
		}
		if ae.RetryAfter != 2*time.Second {
			t.Errorf("%s: got Retry-After %v, want 2s", user, ae.RetryAfter)
		}
		if !strings.Contains(ae.Message, "too many requests with this token") || !strings.Contains(ae.Message, "retry in 2s") {
			t.Errorf("%s: got message %q, want one that says what happened and when to retry", user, ae.Message)
		}
	}
	bob := newClient(t, st, addr, "bob")
	if _, err := bob.ListSecrets(ctx, ""); err != nil {
		t.Errorf("another token: %v", err)
	}
}

func TestRateLimiterBuckets(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tests := map[string]struct {
		perSecond float64
		burst     int
		at        []time.Duration // when requests of one key come, from t0
		wantWait  time.Duration   // what the last one is told
	}{
		"within the burst":        {1, 3, []time.Duration{0, 0, 0}, 0},
		"past the burst":          {1, 3, []time.Duration{0, 0, 0, 0}, time.Second},
		"refused ones cost none":  {1, 1, []time.Duration{0, 0, 0, 0, time.Second}, 0},
		"refilled after a wait":   {2, 2, []time.Duration{0, 0, time.Second}, 0},
		"slow rate, long wait":    {0.1, 1, []time.Duration{0, 0}, 10 * time.Second},
		"no limit":                {0, 0, []time.Duration{0, 0, 0, 0, 0}, 0},
		"dropped bucket is fresh": {1, 1, []time.Duration{0, 2 * time.Hour}, 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			l := newRateLimiter(tc.perSecond, tc.burst)
			var wait time.Duration
			for _, at := range tc.at {
				wait, _ = l.take("k", t0.Add(at))
			}
			if wait != tc.wantWait {
				t.Errorf("got wait %v, want %v", wait, tc.wantWait)
			}
		})
	}
}

// TestRateLimiterForgetsIdle: buckets of tokens gone quiet are dropped, so
// that many tokens do not grow the map for good.
func TestRateLimiterForgetsIdle(t *testing.T) {
	l := newRateLimiter(10, 10)
	t0 := time.Unix(1000, 0)
	for i := range 1000 {
		l.take(fmt.Sprint(i), t0)
	}
	l.take("late", t0.Add(time.Hour))
	if got := len(l.buckets); got != 1 {
		t.Errorf("got %d buckets after an hour, want 1", got)
	}
}

func TestFitConnections(t *testing.T) {
	tests := map[string]struct {
		nofile uint64
		want   int
	}{
		"tiny":          {20, 10},
		"300":           {300, 225},
		"1024":          {1024, 768},
		"a million":     {1 << 20, 1<<20 - 1<<18},
		"just 64 spare": {200, 136},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := fitConnections(tc.nofile); got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

// emfileListener fails its first accepts as a process out of descriptors
// does, counting them.
type emfileListener struct {
	net.Listener
	fails, calls atomic.Int32
}

func (l *emfileListener) Accept() (net.Conn, error) {
	l.calls.Add(1)
	if l.fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	return l.Listener.Accept()
}

// TestAcceptEMFILE: running out of descriptors neither crashes the server
// nor spins it: it backs off, then serves once accepts work again.
func TestAcceptEMFILE(t *testing.T) {
	st, s := newHandler(t, t.TempDir())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	el := &emfileListener{Listener: ln}
	el.fails.Store(8)
	var logged syncBuffer
	hs := s.HTTPServer(hclog.New(&hclog.LoggerOptions{Output: &logged}).StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}))
	served := make(chan error, 1)
	go func() { served <- hs.Serve(LimitListener(el, 10, hclog.NewNullLogger())) }()
	t.Cleanup(func() { hs.Close() })

	time.Sleep(300 * time.Millisecond)
	if calls := el.calls.Load(); calls > 8 {
		t.Errorf("%d accepts in 300ms of EMFILE, want a backoff (at most 8)", calls)
	}
	select {
	case err := <-served:
		t.Fatalf("server gave up on EMFILE: %v", err)
	default:
	}
	c := newClient(t, st, ln.Addr().String(), "alice")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.ListSecrets(ctx, ""); err != nil {
		t.Fatalf("after EMFILE passed: %v", err)
	}
	if !strings.Contains(logged.String(), "too many open files") {
		t.Errorf("log: got %q, want the accept error", logged.String())
	}
}

// syncBuffer is a buffer for a logger that goroutines share.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
