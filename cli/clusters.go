package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hush-sh/hush/sdk/api"
	"github.com/hush-sh/hush/sdk/userfile"
	"github.com/urfave/cli/v2"
)

// maxCACertSize bounds a CA certificate file: a few PEM blocks.
const maxCACertSize = 1 << 20

// maxFanOut bounds how many clusters the CLI talks to at once.
const maxFanOut = 16

// cluster is one cluster the CLI talks to, through one of its agents.
type cluster struct {
	Name    string
	Address string
	Client  *api.Client
	// broken says why the cluster's config entry cannot be used, such as a
	// missing token file; commands report it as that cluster's failure, and
	// go on with the others.
	broken error
}

// fleet is every cluster a command works on.
type fleet struct {
	Clusters []*cluster
	// Default is the cluster runs go to when none is chosen; nil when the
	// config names none and there are several.
	Default *cluster
	// Timeout bounds each request to a cluster.
	Timeout time.Duration
	// Direct is set when HUSH_ADDR or HUSH_TOKEN address one agent
	// directly, instead of the clusters of the config file.
	Direct bool
	// ConfigPath is the config file the clusters come from.
	ConfigPath string
}

// loadFleet returns the clusters commands work on: the one agent that
// HUSH_ADDR and HUSH_TOKEN name when either is set, or else the clusters
// of the config file.
func loadFleet() (*fleet, error) {
	if os.Getenv(api.EnvAddr) != "" || os.Getenv(api.EnvToken) != "" || os.Getenv(api.EnvTokenFile) != "" {
		client, err := newClient()
		if err != nil {
			return nil, err
		}
		c := &cluster{Name: hostOf(client.Address()), Address: client.Address(), Client: client}
		return &fleet{Clusters: []*cluster{c}, Default: c, Timeout: api.DefaultTimeout, Direct: true}, nil
	}
	cfg, err := loadConfig()
	if err != nil {
		return nil, err
	}
	if len(cfg.Clusters) == 0 {
		return nil, fmt.Errorf("no clusters: add one with `hush cluster add NAME --address URL --token-file FILE`, or set %s and %s to talk to one agent (`hush agent -dev` prints them)",
			api.EnvAddr, api.EnvToken)
	}
	timeout, _ := cfg.timeout() // validated on load
	f := &fleet{Timeout: timeout, ConfigPath: cfg.path}
	for _, cc := range cfg.Clusters {
		c, err := cc.connect(timeout)
		if err != nil {
			c = &cluster{Name: cc.Name, Address: cc.Address, broken: fmt.Errorf("%w; fix it in %s", err, cfg.path)}
		}
		f.Clusters = append(f.Clusters, c)
		if cc.Name == cfg.Default || len(cfg.Clusters) == 1 {
			f.Default = c
		}
	}
	return f, nil
}

// connect builds the client for one cluster of the config, each of whose
// requests may take timeout.
func (cc *clusterConfig) connect(timeout time.Duration) (*cluster, error) {
	token := cc.Token
	if cc.TokenFile != "" {
		b, err := userfile.ReadFile(expandHome(cc.TokenFile), api.MaxTokenFileSize)
		if err != nil {
			return nil, fmt.Errorf("read token_file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" {
		return nil, fmt.Errorf("no token: give token or token_file (`hush cluster add %s --token-file FILE`)", cc.Name)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cc.CACert != "" {
		pem, err := userfile.ReadFile(expandHome(cc.CACert), maxCACertSize)
		if err != nil {
			return nil, fmt.Errorf("read ca_cert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_cert %s holds no PEM certificate", cc.CACert)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	client, err := api.NewClient(&api.Config{Address: cc.Address, Token: token,
		HTTPClient: &http.Client{Transport: tr, Timeout: timeout}})
	if err != nil {
		return nil, err
	}
	return &cluster{Name: cc.Name, Address: cc.Address, Client: client}, nil
}

// Names returns the names of the clusters, in config order.
func (f *fleet) Names() []string {
	names := make([]string, len(f.Clusters))
	for i, c := range f.Clusters {
		names[i] = c.Name
	}
	return names
}

// Lookup returns the named cluster.
func (f *fleet) Lookup(name string) (*cluster, error) {
	for _, c := range f.Clusters {
		if c.Name == name {
			return c, nil
		}
	}
	return nil, fmt.Errorf("no cluster named %s: yours are %s (`hush get clusters` lists them)", name, strings.Join(f.Names(), ", "))
}

// target returns the client of the one cluster a command such as `hush run`
// works on: the one named, or else the default. With HUSH_ADDR the one
// agent is the target, and a run checks the name against the agent's own.
func (f *fleet) target(name string) (*api.Client, error) {
	switch {
	case f.Direct:
		return f.Clusters[0].Client, nil
	case name != "":
		c, err := f.Lookup(name)
		if err != nil {
			return nil, err
		}
		return c.usable()
	case f.Default != nil:
		return f.Default.usable()
	}
	return nil, fmt.Errorf("you have %d clusters and chose none: %s. Choose with `--cluster NAME` or `cluster:` under compute in the run spec, or set a default with `hush cluster add NAME ... --default`",
		len(f.Clusters), strings.Join(f.Names(), ", "))
}

// usable returns the cluster's client, or why its config entry is broken.
func (c *cluster) usable() (*api.Client, error) {
	if c.broken != nil {
		return nil, fmt.Errorf("cluster %s: %w", c.Name, c.broken)
	}
	return c.Client, nil
}

// clusterFlag chooses the one cluster a command works on; usage says what
// happens without it.
func clusterFlag(usage string) cli.Flag {
	return &cli.StringFlag{Name: "cluster", Usage: "the `CLUSTER` to work on (default: " + usage + ")"}
}

// narrow returns the named cluster alone, or every cluster when name is
// empty or HUSH_ADDR names the one agent.
func (f *fleet) narrow(name string) ([]*cluster, error) {
	if name == "" || f.Direct {
		return f.Clusters, nil
	}
	c, err := f.Lookup(name)
	if err != nil {
		return nil, err
	}
	return []*cluster{c}, nil
}

// targetClient loads the clusters and returns the client of the one that
// the command's --cluster flag names, or the default.
func targetClient(c *cli.Context) (*api.Client, error) {
	f, err := loadFleet()
	if err != nil {
		return nil, err
	}
	return f.target(c.String("cluster"))
}

// result is what one cluster answered in a fan-out.
type result[T any] struct {
	Cluster *cluster
	Value   T
	Err     error
}

// fanOut calls do for every cluster at once, at most maxFanOut at a time,
// and returns the results in cluster order. Each request do makes is bounded
// by the fleet's timeout. Errors are explained for the person: a timeout
// says so, and a rejected token names where it comes from.
func fanOut[T any](ctx context.Context, f *fleet, clusters []*cluster, do func(context.Context, *cluster) (T, error)) []result[T] {
	out := make([]result[T], len(clusters))
	sem := make(chan struct{}, maxFanOut)
	var wg sync.WaitGroup
	for i, c := range clusters {
		out[i].Cluster = c
		if c.broken != nil {
			out[i].Err = c.broken
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i].Value, out[i].Err = do(ctx, c)
			out[i].Err = f.explain(c, out[i].Err)
		}()
	}
	wg.Wait()
	return out
}

// explain adds to the errors whose fix lies in the cluster config where to
// make it.
func (f *fleet) explain(c *cluster, err error) error {
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

// named returns the result's error, naming the cluster when the error is
// about its config entry and would not say which.
func (r result[T]) named() error {
	if r.Err != nil && r.Cluster.broken != nil {
		return fmt.Errorf("cluster %s: %w", r.Cluster.Name, r.Err)
	}
	return r.Err
}

// answered prints the failure of each cluster that did not answer, and
// returns an error when none did: a listing from no cluster is not empty,
// it is unknown. With one cluster its error is returned as it is.
func answered[T any](ui *UI, results []result[T]) error {
	failed := 0
	for _, r := range results {
		if r.Err != nil {
			failed++
		}
	}
	switch {
	case failed == 0:
		return nil
	case len(results) == 1:
		return results[0].named()
	}
	for _, r := range results {
		if r.Err != nil {
			ui.Warn("cluster %s: %v", r.Cluster.Name, r.Err)
		}
	}
	if failed == len(results) {
		ui.Fail("No cluster answered")
		return errReported
	}
	return nil
}

// reportFanOut says how a write to every cluster went. When every cluster
// took it: "Synced to all clusters". Otherwise one failure line per cluster,
// a summary pointing at `hush sync secrets` when some took it, and
// errReported for exit code 1. A single cluster that failed gives its error
// as it is.
func reportFanOut[T any](ui *UI, results []result[T]) error {
	var failed []result[T]
	for _, r := range results {
		if r.Err != nil {
			failed = append(failed, r)
		}
	}
	switch {
	case len(failed) == 0:
		ui.Success("Synced to all clusters")
		return nil
	case len(results) == 1:
		return failed[0].named()
	}
	for _, r := range failed {
		ui.Fail("cluster %s: %v", r.Cluster.Name, r.Err)
	}
	if len(failed) == len(results) {
		ui.Warn("No cluster took the change")
	} else {
		ui.Warn("Synced to %d of %d clusters; run `hush sync secrets` to repair", len(results)-len(failed), len(results))
	}
	return errReported
}

// hostOf returns the host:port of an address, to name the one agent that
// HUSH_ADDR addresses.
func hostOf(addr string) string {
	if u, err := url.Parse(addr); err == nil && u.Host != "" {
		return u.Host
	}
	return addr
}
