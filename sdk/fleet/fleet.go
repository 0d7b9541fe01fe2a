package fleet

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hush-sh/hush/sdk/api"
	"github.com/hush-sh/hush/sdk/userfile"
)

// MaxFanOut bounds how many clusters FanOut talks to at once.
const MaxFanOut = 16

// Cluster is one cluster, reached through one of its agents.
type Cluster struct {
	Name    string
	Address string
	Client  *api.Client
	// Broken says why the cluster's config entry cannot be used, such as a
	// missing token file; FanOut gives it as that cluster's failure, and
	// goes on with the others.
	Broken error
}

// Fleet is every cluster a command works on.
type Fleet struct {
	Clusters []*Cluster
	// Default is the cluster runs go to when none is chosen; nil when the
	// config names none and there are several.
	Default *Cluster
	// Timeout bounds each request to a cluster.
	Timeout time.Duration
	// Direct is set when HUSH_ADDR or HUSH_TOKEN address one agent
	// directly, instead of the clusters of the config file.
	Direct bool
	// ConfigPath is the config file the clusters come from.
	ConfigPath string
}

// Load returns the clusters to work on: the one agent that HUSH_ADDR and
// HUSH_TOKEN (or HUSH_TOKEN_FILE) name when any is set in env, or else the
// clusters of the config file (see LoadConfig). A cluster whose entry
// cannot be used is kept, with Broken saying why.
func Load(env Env) (*Fleet, error) {
	if env.Get(api.EnvAddr) != "" || env.Get(api.EnvToken) != "" || env.Get(api.EnvTokenFile) != "" {
		client, err := directClient(env)
		if err != nil {
			return nil, err
		}
		c := &Cluster{Name: hostOf(client.Address()), Address: client.Address(), Client: client}
		return &Fleet{Clusters: []*Cluster{c}, Default: c, Timeout: api.DefaultTimeout, Direct: true}, nil
	}
	cfg, err := LoadConfig(env)
	if err != nil {
		return nil, err
	}
	if len(cfg.Clusters) == 0 {
		return nil, fmt.Errorf("no clusters: add one with `hush cluster add NAME --address URL --token-file FILE`, or set %s and %s to talk to one agent (`hush agent -dev` prints them)",
			api.EnvAddr, api.EnvToken)
	}
	timeout, _ := cfg.RequestTimeout() // validated on load
	f := &Fleet{Timeout: timeout, ConfigPath: cfg.path}
	for _, cc := range cfg.Clusters {
		c, err := cc.Connect(env, timeout)
		if err != nil {
			c = &Cluster{Name: cc.Name, Address: cc.Address, Broken: fmt.Errorf("%w; fix it in %s", err, cfg.path)}
		}
		f.Clusters = append(f.Clusters, c)
		if cc.Name == cfg.Default || len(cfg.Clusters) == 1 {
			f.Default = c
		}
	}
	return f, nil
}

// directClient returns a client for the agent that HUSH_ADDR and
// HUSH_TOKEN (or HUSH_TOKEN_FILE) name.
func directClient(env Env) (*api.Client, error) {
	cfg := &api.Config{Address: env.Get(api.EnvAddr), Token: env.Get(api.EnvToken), TLS: api.TLSFiles{
		CACert: env.Get(api.EnvCACert), ClientCert: env.Get(api.EnvClientCert), ClientKey: env.Get(api.EnvClientKey)},
		Stale: staleReads(env)}
	if cfg.Address == "" {
		cfg.Address = api.DefaultAddress
	}
	if f := env.Get(api.EnvTokenFile); cfg.Token == "" && f != "" {
		b, err := userfile.ReadFile(f, api.MaxTokenFileSize)
		if err != nil {
			return nil, fmt.Errorf("read token file from %s: %w", api.EnvTokenFile, err)
		}
		cfg.Token = strings.TrimSpace(string(b))
	}
	if cfg.Token == "" {
		return nil, fmt.Errorf("no token: set %s (or %s) to your token; `hush agent -dev` prints one", api.EnvToken, api.EnvTokenFile)
	}
	return api.NewClient(cfg)
}

// Connect builds the client for one cluster of the config, each of whose
// requests may take timeout. Its token_file, ca_cert, client_cert and
// client_key may start with ~/, which is HOME in env.
func (cc *ClusterConfig) Connect(env Env, timeout time.Duration) (*Cluster, error) {
	token := cc.Token
	if cc.TokenFile != "" {
		b, err := userfile.ReadFile(env.expandHome(cc.TokenFile), api.MaxTokenFileSize)
		if err != nil {
			return nil, fmt.Errorf("read token_file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" {
		return nil, fmt.Errorf("no token: give token or token_file (`hush cluster add %s --token-file FILE`)", cc.Name)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	files := api.TLSFiles{CACert: env.expandHome(cc.CACert), ClientCert: env.expandHome(cc.ClientCert), ClientKey: env.expandHome(cc.ClientKey)}
	tlsCfg, err := files.ClientConfig()
	if err != nil {
		return nil, err
	}
	if tlsCfg != nil {
		tr.TLSClientConfig = tlsCfg
	}
	client, err := api.NewClient(&api.Config{Address: cc.Address, Token: token,
		HTTPClient: &http.Client{Transport: tr, Timeout: timeout}, Stale: staleReads(env)})
	if err != nil {
		return nil, err
	}
	return &Cluster{Name: cc.Name, Address: cc.Address, Client: client}, nil
}

// Names returns the names of the clusters, in config order.
func (f *Fleet) Names() []string {
	names := make([]string, len(f.Clusters))
	for i, c := range f.Clusters {
		names[i] = c.Name
	}
	return names
}

// Lookup returns the named cluster.
func (f *Fleet) Lookup(name string) (*Cluster, error) {
	for _, c := range f.Clusters {
		if c.Name == name {
			return c, nil
		}
	}
	return nil, fmt.Errorf("no cluster named %s: yours are %s (`hush get clusters` lists them)", name, strings.Join(f.Names(), ", "))
}

// Target returns the client of the one cluster a command such as `hush run`
// works on: the one named, or else the default. With HUSH_ADDR the one
// agent is the target, and a run checks the name against the agent's own.
func (f *Fleet) Target(name string) (*api.Client, error) {
	switch {
	case f.Direct:
		return f.Clusters[0].Client, nil
	case name != "":
		c, err := f.Lookup(name)
		if err != nil {
			return nil, err
		}
		return c.Usable()
	case f.Default != nil:
		return f.Default.Usable()
	}
	return nil, fmt.Errorf("you have %d clusters and chose none: %s. Choose with `--cluster NAME` or `cluster:` under compute in the run spec, or set a default with `hush cluster add NAME ... --default`",
		len(f.Clusters), strings.Join(f.Names(), ", "))
}

// Usable returns the cluster's client, or why its config entry is broken.
func (c *Cluster) Usable() (*api.Client, error) {
	if c.Broken != nil {
		return nil, fmt.Errorf("cluster %s: %w", c.Name, c.Broken)
	}
	return c.Client, nil
}

// Narrow returns the named cluster alone, or every cluster when name is
// empty or HUSH_ADDR names the one agent.
func (f *Fleet) Narrow(name string) ([]*Cluster, error) {
	if name == "" || f.Direct {
		return f.Clusters, nil
	}
	c, err := f.Lookup(name)
	if err != nil {
		return nil, err
	}
	return []*Cluster{c}, nil
}

// Result is what one cluster answered in a fan-out.
type Result[T any] struct {
	Cluster *Cluster
	Value   T
	Err     error
}

// FanOut calls do for every cluster at once, at most MaxFanOut at a time,
// and returns the results in cluster order. Each request do makes is bounded
// by the fleet's timeout. Errors are explained for the person: a timeout
// says so, and a rejected token names where it comes from.
func FanOut[T any](ctx context.Context, f *Fleet, clusters []*Cluster, do func(context.Context, *Cluster) (T, error)) []Result[T] {
	out := make([]Result[T], len(clusters))
	sem := make(chan struct{}, MaxFanOut)
	var wg sync.WaitGroup
	for i, c := range clusters {
		out[i].Cluster = c
		if c.Broken != nil {
			out[i].Err = c.Broken
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i].Value, out[i].Err = do(ctx, c)
			out[i].Err = f.Explain(c, out[i].Err)
		}()
	}
	wg.Wait()
	return out
}

// Explain adds to the errors whose fix lies in the cluster config where to
// make it.
func (f *Fleet) Explain(c *Cluster, err error) error {
	var uerr *url.Error
	switch {
	case err == nil || f.Direct:
		return err
	case errors.As(err, &uerr) && uerr.Timeout():
		return fmt.Errorf("%w (no answer within %s; the timeout is set in %s)", err, f.Timeout, f.ConfigPath)
	case errors.Is(err, api.ErrUnauthorized):
		return fmt.Errorf("%w (check the token or token_file of cluster %s in %s; `hush acl token create` on the cluster makes one)", err, c.Name, f.ConfigPath)
	}
	return err
}

// Named returns the result's error, naming the cluster when the error is
// about its config entry and would not say which.
func (r Result[T]) Named() error {
	if r.Err != nil && r.Cluster.Broken != nil {
		return fmt.Errorf("cluster %s: %w", r.Cluster.Name, r.Err)
	}
	return r.Err
}

// hostOf returns the host:port of an address, to name the one agent that
// HUSH_ADDR addresses.
func hostOf(addr string) string {
	if u, err := url.Parse(addr); err == nil && u.Host != "" {
		return u.Host
	}
	return addr
}

// staleReads reports whether HUSH_STALE asks for stale reads.
func staleReads(env Env) bool {
	v, _ := strconv.ParseBool(env.Get(api.EnvStale))
	return v
}
