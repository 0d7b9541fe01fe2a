// Package api is the Go client for the hush agent's HTTP API, and the types
// that travel over it. The hush CLI talks to agents only through it.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hush-sh/hush/sdk/userfile"
)

// Environment variables the client reads in DefaultConfig.
const (
	EnvAddr      = "HUSH_ADDR"
	EnvToken     = "HUSH_TOKEN"
	EnvTokenFile = "HUSH_TOKEN_FILE"
)

// MaxTokenFileSize is the most bytes a token file may hold; a token is a
// line of text.
const MaxTokenFileSize = 64 << 10

// DefaultAddress is where an agent listens unless told otherwise.
const DefaultAddress = "http://127.0.0.1:4747"

// DefaultTimeout bounds each ordinary request of a client made without an
// HTTPClient. Streams, such as followed logs, are bounded only by their
// context.
const DefaultTimeout = 30 * time.Second

// Config says how to reach one agent.
type Config struct {
	// Address is the agent's base URL, such as http://127.0.0.1:4747, or
	// the base URLs of a cluster's servers, separated by commas: the
	// client goes on to the next one that answers when one cannot be
	// reached.
	Address string
	// Token is sent as a bearer token with every request.
	Token string
	// HTTPClient is used for requests; nil means a client with
	// DefaultTimeout that uses TLS. Its timeout bounds ordinary requests,
	// not streams or requests that last as long as a run's stop.
	HTTPClient *http.Client
	// TLS names the files for https agents; ignored with an HTTPClient.
	TLS TLSFiles
	// Stale makes GETs read what the server asked has, without first
	// catching up with its cluster's leader: faster on a follower, and
	// possibly behind the latest writes.
	Stale bool
}

// EnvStale, set to 1 or true, makes clients read stale (Config.Stale).
const EnvStale = "HUSH_STALE"

// DefaultConfig reads the address from HUSH_ADDR (default DefaultAddress)
// and the token from HUSH_TOKEN or, when that is unset, the file named by
// HUSH_TOKEN_FILE, and the TLS files from HUSH_CACERT, HUSH_CLIENT_CERT
// and HUSH_CLIENT_KEY.
func DefaultConfig() (*Config, error) {
	cfg := &Config{Address: os.Getenv(EnvAddr), Token: os.Getenv(EnvToken),
		TLS: TLSFiles{CACert: os.Getenv(EnvCACert), ClientCert: os.Getenv(EnvClientCert), ClientKey: os.Getenv(EnvClientKey)}}
	if cfg.Address == "" {
		cfg.Address = DefaultAddress
	}
	if cfg.Token == "" {
		if f := os.Getenv(EnvTokenFile); f != "" {
			b, err := userfile.ReadFile(f, MaxTokenFileSize)
			if err != nil {
				return nil, fmt.Errorf("read token file from %s: %w", EnvTokenFile, err)
			}
			cfg.Token = strings.TrimSpace(string(b))
		}
	}
	return cfg, nil
}

// Client calls one agent's HTTP API, or one of several servers'.
type Client struct {
	// bases are the agents' base URLs; at is the one that last answered.
	bases []*url.URL
	at    atomic.Int32
	token string
	stale bool
	http  *http.Client
	// stream is http without its timeout, for responses that last as long
	// as a run, such as followed logs.
	stream *http.Client
}

// NewClient returns a client for the agent that cfg names.
func NewClient(cfg *Config) (*Client, error) {
	var bases []*url.URL
	for addr := range strings.SplitSeq(cfg.Address, ",") {
		u, err := parseAddress(strings.TrimSpace(addr))
		if err != nil {
			return nil, err
		}
		bases = append(bases, u)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		tlsCfg, err := cfg.TLS.ClientConfig()
		if err != nil {
			return nil, err
		}
		hc = &http.Client{Timeout: DefaultTimeout}
		if tlsCfg != nil {
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.TLSClientConfig = tlsCfg
			hc.Transport = tr
		}
	}
	stream := *hc
	stream.Timeout = 0
	return &Client{bases: bases, stale: cfg.Stale, token: cfg.Token, http: hc, stream: &stream}, nil
}

func parseAddress(addr string) (*url.URL, error) {
	in := addr
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("agent address %q is not a URL: give it as http://HOST:PORT", in)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("agent address %q: scheme must be http or https", in)
	}
	return u, nil
}

// Address returns the base URL of the agent in use.
func (c *Client) Address() string { return c.bases[c.at.Load()].String() }

// Health reports whether the agent is up. It needs no token.
func (c *Client) Health(ctx context.Context) (*Health, error) {
	var out Health
	return &out, c.do(ctx, http.MethodGet, "/v1/health", nil, nil, &out)
}

// Self describes the agent and the caller's user.
func (c *Client) Self(ctx context.Context) (*AgentSelf, error) {
	var out AgentSelf
	return &out, c.do(ctx, http.MethodGet, "/v1/agent/self", nil, nil, &out)
}

// ListPlugins describes the agent's provider plugins.
func (c *Client) ListPlugins(ctx context.Context) ([]PluginStatus, error) {
	var out ListPluginsResponse
	return out.Plugins, c.do(ctx, http.MethodGet, "/v1/plugins", nil, nil, &out)
}

// AuditHash returns the agent's audit log hash of input, as the log
// writes tokens (management tokens only).
func (c *Client) AuditHash(ctx context.Context, input string) (string, error) {
	var out AuditHash
	return out.Hash, c.do(ctx, http.MethodPost, "/v1/audit/hash", nil, &AuditHashRequest{Input: input}, &out)
}

// CreateSecret creates a secret owned by the caller's user.
func (c *Client) CreateSecret(ctx context.Context, req *CreateSecretRequest) (*Secret, error) {
	var out Secret
	return &out, c.do(ctx, http.MethodPost, "/v1/secrets", nil, req, &out)
}

// ListSecrets lists the metadata of the caller's secrets, of one type when
// typ is not empty.
func (c *Client) ListSecrets(ctx context.Context, typ SecretType) ([]*Secret, error) {
	out, err := c.ListSecretsReport(ctx, typ)
	if err != nil {
		return nil, err
	}
	return out.Secrets, nil
}

// ListSecretsReport lists the metadata of the caller's secrets, of one type
// when typ is not empty, and the secrets the agent holds but cannot read.
func (c *Client) ListSecretsReport(ctx context.Context, typ SecretType) (*ListSecretsResponse, error) {
	q := url.Values{}
	if typ != "" {
		q.Set("type", string(typ))
	}
	var out ListSecretsResponse
	return &out, c.do(ctx, http.MethodGet, "/v1/secrets", q, nil, &out)
}

// GetSecret reads one secret's metadata.
func (c *Client) GetSecret(ctx context.Context, name string) (*Secret, error) {
	var out Secret
	return &out, c.do(ctx, http.MethodGet, "/v1/secrets/"+url.PathEscape(name), nil, nil, &out)
}

// DeleteSecret deletes one of the caller's secrets.
func (c *Client) DeleteSecret(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/secrets/"+url.PathEscape(name), nil, nil, nil)
}

// DeleteUserSecret deletes a secret of another user. It needs a management
// token.
func (c *Client) DeleteUserSecret(ctx context.Context, user, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/secrets/"+url.PathEscape(name), url.Values{"user": {user}}, nil, nil)
}

// DeleteSecretID deletes the caller's secret name only when it holds id,
// and fails with ErrExists (409) when it holds another. Sync uses it so that
// repairing one replica never deletes a different secret of the same name.
func (c *Client) DeleteSecretID(ctx context.Context, name, id string) error {
	return c.do(ctx, http.MethodDelete, "/v1/secrets/"+url.PathEscape(name), url.Values{"id": {id}}, nil, nil)
}

// ListTombstones lists the records of the caller's deleted secrets.
func (c *Client) ListTombstones(ctx context.Context) ([]*Tombstone, error) {
	var out ListTombstonesResponse
	return out.Tombstones, c.do(ctx, http.MethodGet, "/v1/tombstones", nil, nil, &out)
}

// ExportSecret returns one of the caller's secrets with its values, to
// create it on another cluster. Handle the answer as a secret: never print
// or log it.
func (c *Client) ExportSecret(ctx context.Context, name string) (*SecretExport, error) {
	var out SecretExport
	return &out, c.do(ctx, http.MethodGet, "/v1/secrets/"+url.PathEscape(name)+"/export", nil, nil, &out)
}

// DigestSecret returns the agent's digest of the content req declares, to
// compare with the Digest of a stored secret on the same agent. The agent
// stores nothing.
func (c *Client) DigestSecret(ctx context.Context, req *CreateSecretRequest) (string, error) {
	var out SecretDigest
	return out.Digest, c.do(ctx, http.MethodPost, "/v1/secrets/digest", nil, req, &out)
}

func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	resp, err := c.send(ctx, c.http, method, path, query, body, "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	return decodeJSONBody(resp, out)
}

func decodeJSONBody(resp *http.Response, out any) error {
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		if mediaType(resp) != "application/json" {
			return &Error{StatusCode: resp.StatusCode, Message: notAgent(resp), Foreign: true}
		}
		return fmt.Errorf("decode answer from %s: %w", resp.Request.URL.Host, err)
	}
	return nil
}

// send sends a request and returns the response when its status is a
// success, and the agent's error otherwise.
func (c *Client) send(ctx context.Context, hc *http.Client, method, path string, query url.Values, body io.Reader, contentType string) (*http.Response, error) {
	// Another server is tried when one cannot be reached, as long as the
	// body can be sent again.
	seeker, rewindable := body.(io.Seeker)
	rewindable = rewindable || body == nil
	if rewindable && body != nil {
		// The transport closes a body it could not send; the next server
		// needs it open.
		body = io.NopCloser(body)
	}
	first := int(c.at.Load())
	for i := 0; ; i++ {
		at := (first + i) % len(c.bases)
		resp, err := c.sendTo(ctx, c.bases[at], hc, method, path, query, body, contentType)
		var reach *unreachableError
		if !errors.As(err, &reach) || !rewindable || i == len(c.bases)-1 || ctx.Err() != nil {
			if err == nil {
				c.at.Store(int32(at))
			}
			return resp, err
		}
		if seeker != nil {
			if _, err := seeker.Seek(0, io.SeekStart); err != nil {
				return nil, reach
			}
		}
	}
}

// unreachableError is a request that did not reach the agent.
type unreachableError struct{ err error }

func (e *unreachableError) Error() string { return e.err.Error() }
func (e *unreachableError) Unwrap() error { return e.err }

func (c *Client) sendTo(ctx context.Context, base *url.URL, hc *http.Client, method, path string, query url.Values, body io.Reader, contentType string) (*http.Response, error) {
	u := base.JoinPath(path)
	if c.stale && method == http.MethodGet {
		query = maps.Clone(query)
		if query == nil {
			query = url.Values{}
		}
		query.Set("stale", "")
	}
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, transportError(base, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		return nil, decodeError(resp)
	}
	// The agent never serves HTML; a web server's page for any path
	// would otherwise pass for a success that says nothing.
	if isHTML(resp) {
		resp.Body.Close()
		return nil, &Error{StatusCode: resp.StatusCode, Message: notAgent(resp), Foreign: true}
	}
	return resp, nil
}

// mediaType is the media type of resp's body, without its parameters; ""
// when it has none or it cannot be read.
func mediaType(resp *http.Response) string {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return mt
}

// isHTML reports whether resp's body is a web page.
func isHTML(resp *http.Response) bool {
	mt := mediaType(resp)
	return mt == "text/html" || mt == "application/xhtml+xml"
}

// notAgent says that what answered resp is likely not a hush agent, with
// its address, its answer and the request, and where the address is set.
func notAgent(resp *http.Response) string {
	u := resp.Request.URL
	addr := (&url.URL{Scheme: u.Scheme, Host: u.Host}).String()
	status := strings.TrimSpace(strconv.Itoa(resp.StatusCode) + " " + http.StatusText(resp.StatusCode))
	if mt := mediaType(resp); mt != "" {
		status += " (" + mt + ")"
	}
	return fmt.Sprintf("%s answered %s to %s %s: is it a hush agent? check %s or your cluster's address (`hush cluster list`)",
		addr, status, resp.Request.Method, u.Path, EnvAddr)
}

func transportError(base *url.URL, err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) && !uerr.Timeout() && errors.Is(uerr.Err, context.Canceled) {
		return err
	}
	if hint := tlsHint(err); hint != "" {
		return fmt.Errorf("cannot talk to the agent at %s: %w (%s)", base, err, hint)
	}
	err = fmt.Errorf("cannot reach the agent at %s: %w (is `hush agent` running there, and is the address right?)", base, err)
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return &unreachableError{err}
	}
	return err
}

func decodeError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &Error{StatusCode: resp.StatusCode}
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
		e.RetryAfter = time.Duration(secs) * time.Second
	}
	var er ErrorResponse
	switch {
	case json.Unmarshal(b, &er) == nil && er.Error != "":
		e.Message, e.Code, e.Field = er.Error, er.Code, er.Field
	case resp.StatusCode == http.StatusBadRequest && bytes.Contains(b, []byte("HTTP request to an HTTPS server")):
		// Go's TLS server answers a plain request so.
		e.Message = "the agent serves HTTPS: use an https:// address"
	case resp.StatusCode == http.StatusTooManyRequests:
		// A rate limiter in front of the agent may answer so: Error says
		// how long to wait.
	default:
		// Every error of the agent's is JSON with a message: this one
		// came from something else at that address, such as a web server.
		e.Message, e.Foreign = notAgent(resp), true
	}
	return e
}
