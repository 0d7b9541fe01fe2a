// Package fleet is the engine behind the hush CLI's work across clusters,
// with no terminal in it: the CLI's config file of clusters, a client per
// cluster, fan-out of requests to every cluster at once, the collation of
// what each cluster holds, and the plans of `hush sync secrets` and `hush
// apply`. It returns results and plans; the caller prints them.
package fleet

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/hush-sh/hush/sdk/userfile"
	"go.yaml.in/yaml/v3"
)

// maxConfigSize bounds the config file, a list of clusters.
const maxConfigSize = 4 << 20

// EnvConfig names the CLI's config file instead of ~/.hush/config.yaml.
const EnvConfig = "HUSH_CONFIG"

// DefaultTimeout bounds each request to a cluster, so that a
// cluster that does not answer cannot hold up a command for long.
const DefaultTimeout = 10 * time.Second

// Env looks up an environment variable, as os.LookupEnv does. Everything
// this package reads from the environment (HUSH_ADDR, HUSH_TOKEN,
// HUSH_TOKEN_FILE, HUSH_CONFIG, HOME) goes through one, so that a program
// or a test can give its own; a nil Env holds no variables.
type Env func(key string) (string, bool)

// Get returns the variable's value, or "" when it is not set.
func (e Env) Get(key string) string {
	if e == nil {
		return ""
	}
	v, _ := e(key)
	return v
}

// home returns $HOME, as os.UserHomeDir does on Unix.
func (e Env) home() (string, error) {
	if h := e.Get("HOME"); h != "" {
		return h, nil
	}
	return "", errors.New("$HOME is not defined")
}

// Config is the CLI's config file: the clusters it talks to.
//
//	default: prod
//	timeout: 10s
//	clusters:
//	  - name: prod
//	    address: https://hush.prod.example.com:4747
//	    token_file: ~/.hush/prod.token
//	    ca_cert: ~/.hush/prod-ca.pem
//	    client_cert: ~/.hush/prod-client.pem
//	    client_key: ~/.hush/prod-client-key.pem
type Config struct {
	// Default is the cluster runs go to when none is chosen.
	Default string `yaml:"default,omitempty"`
	// Timeout bounds each request to a cluster, as a Go duration; empty
	// means 10s.
	Timeout string `yaml:"timeout,omitempty"`
	// Clusters are every cluster the CLI works on, in the order it lists
	// them.
	Clusters []*ClusterConfig `yaml:"clusters"`

	path string
}

// ClusterConfig is how to reach one cluster's agent.
type ClusterConfig struct {
	// Name is how commands and messages name the cluster; it need not be
	// the name its agents were given.
	Name string `yaml:"name"`
	// Address is an agent of the cluster, as http(s)://HOST:PORT.
	Address string `yaml:"address"`
	// Token is the user's token for the cluster; TokenFile names a file
	// holding it instead.
	Token     string `yaml:"token,omitempty"`
	TokenFile string `yaml:"token_file,omitempty"`
	// CACert is a PEM file of the CA that signed the agent's certificate,
	// for https addresses.
	CACert string `yaml:"ca_cert,omitempty"`
	// ClientCert and ClientKey are PEM files of the client certificate
	// and key that an agent with verify_incoming (mutual TLS) requires;
	// both or neither.
	ClientCert string `yaml:"client_cert,omitempty"`
	ClientKey  string `yaml:"client_key,omitempty"`
}

var clusterNameRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$`)

// ConfigPath returns HUSH_CONFIG, or ~/.hush/config.yaml.
func ConfigPath(env Env) (string, error) {
	if p := env.Get(EnvConfig); p != "" {
		return p, nil
	}
	home, err := env.home()
	if err != nil {
		return "", fmt.Errorf("find the config file: %w; set %s to its path", err, EnvConfig)
	}
	return filepath.Join(home, ".hush", "config.yaml"), nil
}

// LoadConfig reads the config file that env names (see ConfigPath). A
// missing file is an empty config. Its errors name the file, and the line
// of a YAML mistake.
func LoadConfig(env Env) (*Config, error) {
	path, err := ConfigPath(env)
	if err != nil {
		return nil, err
	}
	cfg := &Config{path: path}
	b, err := userfile.ReadFile(path, maxConfigSize)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// validate reports every problem in the config at once.
func (c *Config) validate() error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{c.path}, args...)...))
	}
	if _, err := c.RequestTimeout(); err != nil {
		add("%v", err)
	}
	seen := map[string]bool{}
	for i, cl := range c.Clusters {
		where := fmt.Sprintf("clusters[%d]", i)
		if cl == nil {
			add("%s is empty: give name, address and token", where)
			continue
		}
		if err := CheckClusterName(cl.Name); err != nil {
			add("%s: %v", where, err)
		} else if seen[cl.Name] {
			add("%s: cluster %s is listed twice: remove one", where, cl.Name)
		}
		seen[cl.Name] = true
		if err := CheckAddress(cl.Address); err != nil {
			add("cluster %s: %v", cl.Name, err)
		}
		if cl.Token != "" && cl.TokenFile != "" {
			add("cluster %s has both token and token_file: keep one", cl.Name)
		}
		if (cl.ClientCert == "") != (cl.ClientKey == "") {
			add("cluster %s has only one of client_cert and client_key: give both", cl.Name)
		}
	}
	if c.Default != "" && !seen[c.Default] {
		add("default cluster %s is not in clusters: add it, or change default", c.Default)
	}
	return errors.Join(errs...)
}

// Path returns the file the config was loaded from, and is saved to.
func (c *Config) Path() string { return c.path }

// RequestTimeout returns how long each request to a cluster may take.
func (c *Config) RequestTimeout() (time.Duration, error) {
	if c.Timeout == "" {
		return DefaultTimeout, nil
	}
	d, err := time.ParseDuration(c.Timeout)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("timeout %q is not a positive duration: write it as 10s or 1m", c.Timeout)
	}
	return d, nil
}

// Cluster returns the named cluster's entry, or nil.
func (c *Config) Cluster(name string) *ClusterConfig {
	for _, cl := range c.Clusters {
		if cl.Name == name {
			return cl
		}
	}
	return nil
}

// Save writes the config back to its file through a temporary file and a
// rename, mode 0600 in a 0700 directory: it holds tokens.
func (c *Config) Save() error {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return err
	}
	b := buf.Bytes()
	dir := filepath.Dir(c.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create config dir: %w", err)
	}
	f, err := os.CreateTemp(dir, ".config-*.yaml")
	if err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("write config: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write config: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	if err := os.Rename(f.Name(), c.path); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// CheckClusterName fails unless name is a valid cluster name.
func CheckClusterName(name string) error {
	if !clusterNameRe.MatchString(name) {
		return fmt.Errorf("cluster name %q is not valid: use up to 63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit", name)
	}
	return nil
}

// CheckAddress fails unless addr is an http(s)://HOST:PORT URL.
func CheckAddress(addr string) error {
	for one := range strings.SplitSeq(addr, ",") {
		u, err := url.Parse(strings.TrimSpace(one))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("address %q is not a URL: give it as http://HOST:PORT or https://HOST:PORT (several servers' separated by commas)", one)
		}
	}
	return nil
}

// expandHome turns a leading ~/ into the home directory, as people write
// paths in config files.
func (e Env) expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := e.home(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return p
}
