// Package agent is the hush daemon: it opens the store, serves the HTTP API
// and runs until its context ends.
package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/audit"
	"github.com/hush-sh/hush/agent/config"
	"github.com/hush-sh/hush/agent/nodes"
	"github.com/hush-sh/hush/agent/plugins"
	"github.com/hush-sh/hush/agent/runs"
	"github.com/hush-sh/hush/agent/runtime"
	"github.com/hush-sh/hush/agent/seal"
	"github.com/hush-sh/hush/agent/server"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

// RootTokenFile is where a non-dev agent writes the management token it
// creates on first start, in its data dir.
const RootTokenFile = store.RootTokenFile

// shutdownTimeout bounds how long in-flight requests may finish at exit.
const shutdownTimeout = 10 * time.Second

// Options configure one agent.
type Options struct {
	// Config is the validated configuration.
	Config *config.Config
	// Dev runs with a throwaway data dir (unless Config.DataDir is set) and
	// prints a fresh root token to Stdout.
	Dev bool
	// Version is reported on /v1/agent/self.
	Version string
	// Stdout receives the dev-mode banner; Stderr receives logs.
	Stdout, Stderr io.Writer
	// Reload, when set, reads the configuration again, as SIGHUP asks:
	// the agent then reloads its plugin blocks.
	Reload func() (*config.Config, error)
}

// Run runs the agent until ctx is done, then shuts it down cleanly.
func Run(ctx context.Context, opts *Options) error {
	cfg := opts.Config
	logger := hclog.New(&hclog.LoggerOptions{
		Name:       "agent",
		Level:      hclog.LevelFromString(cfg.LogLevel),
		JSONFormat: cfg.LogJSON,
		Output:     opts.Stderr,
	})

	dataDir := cfg.DataDir
	if dataDir == "" && !opts.Dev {
		return errors.New("no data dir: set -data-dir or data_dir in a config file, or use -dev for a throwaway agent")
	}
	if err := cfg.CheckServer(opts.Dev); err != nil {
		return err
	}
	if err := cfg.CheckClient(opts.Dev); err != nil {
		return err
	}

	tlsSrv, err := setupTLS(cfg, logger)
	if err != nil {
		return err
	}
	// From here on SIGHUP reloads, and no longer ends the agent.
	hup := &reloads{}
	if tlsSrv != nil {
		hup.add(func() {
			logger.Info("SIGHUP received; reloading TLS files")
			tlsSrv.Reload() // logs its outcome
		})
	}
	defer reloadOnSIGHUP(hup, logger)()

	// Bind before anything is created, so that a taken port leaves no
	// half-made data dir behind.
	ln, err := net.Listen("tcp", cfg.Bind)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another agent running? choose another address with -bind)", cfg.Bind, err)
	}
	defer ln.Close()
	scheme := "http"
	if tlsSrv != nil {
		scheme = "https"
	}
	addr := scheme + "://" + ln.Addr().String()

	if dataDir == "" {
		dir, err := os.MkdirTemp("", "hush-dev-")
		if err != nil {
			return fmt.Errorf("create dev data dir: %w", err)
		}
		defer os.RemoveAll(dir)
		dataDir = dir
		// A throwaway agent keeps its runs' state apart as well, so that
		// dev agents side by side never take each other's runs for
		// leftovers of their own.
		if cfg.StateDir == config.DefaultConfig().StateDir {
			state, err := os.MkdirTemp("", "hush-dev-state-")
			if err != nil {
				return fmt.Errorf("create dev state dir: %w", err)
			}
			defer os.RemoveAll(state)
			cfg.StateDir = state
		}
	}

	unlock, err := lockStateDir(cfg.StateDir, dataDir)
	if err != nil {
		return err
	}
	defer unlock()

	var storeOpts []store.Option
	if sc := cfg.SealFor(opts.Dev); sc != nil {
		sl, err := seal.New(sc, dataDir, logger.Named("seal"))
		if err != nil {
			return err
		}
		storeOpts = append(storeOpts, store.WithSeal(sl))
	}
	st, err := store.Open(dataDir, logger.Named("store"), storeOpts...)
	if err != nil {
		return err
	}
	defer st.Close()

	// The API serves from now on: servers form their cluster through it
	// before the agent is ready, and the rest answers 503 until then.
	front := &frontHandler{}
	httpSrv := server.NewHTTPServer(front, cfg.HTTPLimits(), logger.Named("http").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}))
	// The cap counts raw connections; TLS wraps them outside it, so that
	// the HTTP server sees TLS connections (their handshakes, client
	// certificates, and its answer to plain HTTP).
	serveLn := server.LimitListener(ln, cfg.HTTPLimits().MaxConnections, logger.Named("http"))
	if tlsSrv != nil {
		serveLn = tls.NewListener(serveLn, tlsSrv.Config())
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(serveLn) }()
	defer httpSrv.Close()

	node, err := startCluster(cfg, dataDir, st, tlsSrv, ln.Addr().String(), logger)
	if err != nil {
		return err
	}
	defer node.Shutdown()
	front.setCluster(node.Handler())
	if err := waitClusterKeyring(ctx, node, st, logger.Named("cluster")); err != nil {
		return err
	}

	// A client agent's users and tokens are the servers'.
	rootToken := ""
	if !cfg.ClientOnly() {
		if rootToken, err = makeRootToken(st, opts.Dev, logger); err != nil {
			return err
		}
	}
	var auditLog *audit.Log
	if cfg.Audit != nil {
		if auditLog, err = audit.Open(cfg.Audit.Path, st.Keyring().AuditKey(), cfg.Cluster, cfg.NodeName); err != nil {
			return err
		}
		defer auditLog.Close()
		hup.add(func() {
			if err := auditLog.Reopen(); err != nil {
				logger.Error("SIGHUP received; could not reopen the audit log", "error", err)
				return
			}
			logger.Info("SIGHUP received; reopened the audit log", "path", cfg.Audit.Path)
		})
		logger.Info("writing the audit log", "path", cfg.Audit.Path)
	}

	host, err := plugins.New(cfg, opts.Dev, logger.Named("plugins"))
	if err != nil {
		return err
	}
	host.Start(ctx)
	defer host.Shutdown()
	if opts.Reload != nil {
		hup.add(func() { reloadPlugins(ctx, opts.Reload, host, logger.Named("plugins")) })
	}

	rt, images, err := openRuntime(ctx, cfg, opts.Dev, logger.Named("runtime"))
	if err != nil {
		return err
	}
	defer rt.Close()
	if c, ok := rt.(*runtime.Containerd); ok {
		// Its containers carry this agent's data dir: another agent in
		// the same namespace leaves them alone.
		owner, err := filepath.Abs(dataDir)
		if err == nil {
			// The same dir by whatever path it is named.
			owner, err = filepath.EvalSymlinks(owner)
		}
		if err != nil {
			return fmt.Errorf("find the data dir: %w", err)
		}
		c.SetOwner(owner)
	}
	runCA, runCert, err := runCertIssuer(cfg, st)
	if err != nil {
		return err
	}
	hushBin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the hush binary: %w", err)
	}
	nodeID, err := nodes.LoadID(dataDir)
	if err != nil {
		return err
	}
	if cfg.ServerEnabled() {
		// The runs manager takes over this node's runs as the store says
		// they are: as the cluster has them, not as this server left them,
		// since the leader may have placed them elsewhere meanwhile.
		bctx, cancel := context.WithTimeout(ctx, clusterCatchUpWait)
		if err := node.Barrier(bctx); err != nil {
			logger.Warn("could not catch up with the cluster before taking over this node's runs; a run placed elsewhere meanwhile is stopped at its first write", "error", err)
		}
		cancel()
	}
	var remote runs.Remote
	if cfg.ServerEnabled() {
		remote = nodes.NewRemote(st, tlsSrv.PeerConfig())
	}
	// A client agent's runs get their secrets and tokens from the
	// servers, which it reaches as an agent of the cluster.
	var servers *nodes.RemoteConn
	var grants runs.Grants
	if cfg.ClientOnly() {
		secret, err := nodes.LoadSecret(dataDir)
		if err != nil {
			return err
		}
		servers = nodes.NewRemoteConn(cfg.ClientServers(), tlsSrv.PeerConfig(), secret)
		grants = servers.Grants(nodeID)
	}
	manager, err := runs.NewManager(ctx, runs.Config{
		Store:      st,
		Runtime:    rt,
		LogDir:     filepath.Join(dataDir, "logs"),
		MaxLogSize: cfg.MaxLogBytes(),
		StateDir:   runsDir(cfg),
		KeyDir:     filepath.Join(cfg.StateDir, "logkeys"),
		HushBinary: hushBin,
		AgentAddr:  loopbackURL(scheme, ln.Addr()),
		AgentCA:    tlsSrv.CAPEM,
		RunCert:    runCert,
		StopGrace:  cfg.Runtime(rt.Name()).StopGraceDuration(),
		// A throwaway dev agent's data dir goes with it: nothing could
		// adopt its runs.
		LeaveRunsOnShutdown: cfg.LeaveRunsOnShutdown && cfg.DataDir != "",
		MaskSecrets:         cfg.MaskSecrets,
		Audit:               auditWriter(auditLog),
		Resolver:            host,
		Capacity:            runs.Capacity{CPUs: cfg.NodeCPUs, MemoryBytes: cfg.NodeMemoryBytes()},
		Scheduled:           cfg.ServerEnabled(),
		NodeID:              nodeID,
		Feasible:            func(req *api.CreateRunRequest) error { return nodes.Feasible(st, req) },
		Remote:              remote,
		Grants:              grants,
		Logger:              logger.Named("runs"),
	})
	if err != nil {
		return err
	}

	st.StartRotation(store.Rotation{Files: manager, Rate: cfg.KeyringResealRate,
		Leader: func() bool { return node.State() == "leader" }, ServerID: node.Status().ID})

	if runCA != nil {
		tlsSrv.TrustRuns(runCA, manager.Live)
	}

	srv := server.New(st, manager, images, host, server.Info{
		Version: opts.Version, Cluster: cfg.Cluster, Node: cfg.NodeName, Runtime: rt.Name(), Plugins: host.Status,
	}, logger.Named("http"))
	sources := []metricSource{st, manager, host}
	if auditLog != nil {
		srv.SetAudit(auditLog)
		sources = append(sources, auditLog)
	}
	metrics, err := serveMetrics(cfg, srv, logger.Named("metrics"), sources...)
	if err != nil {
		return err
	}
	defer metrics.Close()
	srv.SetLimits(cfg.HTTPLimits())
	srv.SetCluster(node)
	srv.SetNode(selfNode(cfg, nodeID, scheme, ln.Addr(), rt.Name(), opts.Version), cfg.ServerEnabled())
	if servers != nil {
		// A client agent's API is the servers': its runs reach them
		// through it.
		front.setAPI(clientAPI(srv, servers, logger.Named("http")))
	} else {
		front.setAPI(srv)
	}

	stopNode, err := startNode(ctx, nodeSetup{
		id: nodeID, cfg: cfg, st: st, cluster: node, manager: manager, runtime: rt.Name(), servers: servers, tlsSrv: tlsSrv,
		scheme: scheme, apiAddr: ln.Addr(), version: opts.Version, front: front, logger: logger.Named("nodes"),
	})
	if err != nil {
		return err
	}
	defer stopNode()

	if opts.Dev {
		rtName := rt.Name()
		if ex, ok := rt.(*runtime.Exec); ok && !ex.RunsAsOtherUsers() {
			rtName += " (runs are not isolated from each other)"
		}
		printDevBanner(opts.Stdout, addr, rootToken, rtName, cfg.DataDir == "")
	}
	logger.Info("agent started", "addr", addr, "cluster", cfg.Cluster, "node", cfg.NodeName,
		"data_dir", dataDir, "version", opts.Version, "dev", opts.Dev,
		"leave_runs_on_shutdown", cfg.LeaveRunsOnShutdown && cfg.DataDir != "", "tls", tlsSrv != nil)

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve HTTP: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	if err := node.TransferLeadership(); err != nil {
		logger.Warn("could not hand leadership over; the other servers elect a leader after their election timeout", "error", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout+cfg.Runtime(rt.Name()).StopGraceDuration())
	defer cancel()
	// Runs first: their log followers end when the agent lets go of
	// them, and then the HTTP server has nothing left in flight.
	st.StopRotation()
	if err := manager.Shutdown(sctx); err != nil {
		logger.Warn("runs still active at shutdown", "error", err)
	}
	if err := httpSrv.Shutdown(sctx); err != nil {
		logger.Warn("requests still running at shutdown", "error", err)
	}
	logger.Info("agent stopped")
	return nil
}

// makeRootToken makes sure a management token exists. In dev mode it issues a
// fresh one each start and returns it for the banner. Otherwise it issues
// one on first start and writes it to the data dir, so it never reaches a
// log.
func makeRootToken(st *store.Store, dev bool, logger hclog.Logger) (string, error) {
	if dev {
		secret, _, err := st.IssueToken("root", true, "dev root token")
		if err != nil {
			return "", fmt.Errorf("create root token: %w", err)
		}
		return secret, nil
	}
	path, err := st.EnsureRootToken()
	if err != nil {
		return "", fmt.Errorf("create root token: %w", err)
	}
	if path != "" {
		logger.Info("created the root token; keep it safe and delete the file once stored elsewhere", "path", path)
	}
	return "", nil
}

// openRuntime picks the runtime: the one a runtime block names, or, with
// none, containerd when its standard socket answers and exec otherwise.
// It also returns the image importer, when the runtime has images.
func openRuntime(ctx context.Context, cfg *config.Config, dev bool, logger hclog.Logger) (runtime.Runtime, server.ImageImporter, error) {
	_, hasContainerd := findRuntime(cfg, config.RuntimeContainerd)
	_, hasExec := findRuntime(cfg, config.RuntimeExec)
	rc := cfg.Runtime(config.RuntimeContainerd)
	switch {
	case hasContainerd:
		c, err := openContainerd(ctx, rc, logger.Named("containerd"))
		if err != nil {
			return nil, nil, err
		}
		return c, c, nil
	case hasExec:
		logger.Info("using the exec runtime: runs execute on the host and ignore their image")
		ex, err := openExec(cfg, dev, "", logger.Named("exec"))
		if err != nil {
			return nil, nil, err
		}
		return ex, nil, nil
	}
	c, err := openContainerd(ctx, rc, logger.Named("containerd"))
	if err == nil {
		return c, c, nil
	}
	logger.Info("containerd is not available; using the exec runtime: runs execute on the host and ignore their image",
		"reason", err)
	ex, err := openExec(cfg, dev, "containerd is not available (the log says why), and ", logger.Named("exec"))
	if err != nil {
		return nil, nil, err
	}
	return ex, nil, nil
}

// openContainerd connects to containerd and finds the node's GPUs.
func openContainerd(ctx context.Context, rc *config.RuntimeConfig, logger hclog.Logger) (*runtime.Containerd, error) {
	c, err := runtime.NewContainerd(ctx, rc.Address, rc.Namespace, logger)
	if err != nil {
		return nil, err
	}
	if err := c.UseDevices(runtime.DeviceConfig{SpecDirs: rc.CDISpecDirs, Kinds: rc.GPUKinds, Paths: rc.GPUDevices}); err != nil {
		c.Close()
		return nil, fmt.Errorf("find GPUs: %w", err)
	}
	return c, nil
}

// openExec returns the exec runtime, sandboxed when the exec block says
// which users runs execute as. A root agent outside dev mode refuses to
// run every run as root, where runs could read each other's secrets; why
// says how the agent came to use the exec runtime.
func openExec(cfg *config.Config, dev bool, why string, logger hclog.Logger) (*runtime.Exec, error) {
	rc := cfg.Runtime(config.RuntimeExec)
	root := os.Geteuid() == 0
	switch {
	case rc.RunsAsOtherUsers() && !root:
		return nil, errors.New(`runtime "exec" sets uid_range or user, but the agent does not run as root and so cannot switch runs to other users: run the agent as root, or remove the setting`)
	case !rc.RunsAsOtherUsers() && root && !dev:
		return nil, fmt.Errorf(`%sthe exec runtime would run every run as root, where one user's run can read another's secrets and run token. `+
			`Add runtime "exec" { uid_range = %q } to the agent config to run each run as a uid of its own (or user = "NAME" for one unprivileged account), `+
			`or run containerd, which isolates runs in containers`, why, config.ExampleUIDRange)
	case !rc.RunsAsOtherUsers():
		logger.Warn(`runs are not isolated: they run as the agent's user and can read whatever it can, each other's secrets and run tokens and the agent's data dir included; `+
			`as root, set uid_range in a runtime "exec" block, or use containerd`, "uid", os.Geteuid())
		return runtime.NewExecIn(logger, supervisorsDir(cfg))
	}

	sb := runtime.ExecSandbox{StateDir: cfg.StateDir}
	if rc.User != "" {
		uid, gid, err := config.LookupUser(rc.User)
		if err != nil {
			return nil, err
		}
		sb.User = &runtime.User{UID: uid, GID: gid}
		logger.Warn("every run executes as one user, so runs can read each other's files, environment and run tokens; uid_range gives each run its own", "user", rc.User)
	} else {
		var err error
		if sb.FirstUID, sb.LastUID, err = config.ParseUIDRange(rc.UIDRange); err != nil {
			return nil, err
		}
	}
	// Run dirs are reachable only by root outside each run's sandbox.
	dir := runsDir(cfg)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("restrict %s: %w", dir, err)
	}
	if err := runtime.CheckSandboxPath(cfg.StateDir); err != nil {
		return nil, err
	}
	return runtime.NewSandboxedExec(logger, supervisorsDir(cfg), sb)
}

// runsDir holds the active runs' tmpfs mounts.
func runsDir(cfg *config.Config) string { return filepath.Join(cfg.StateDir, "runs") }

// supervisorsDir holds the state of exec runs' supervisors, which a
// restarted agent reads to adopt them.
func supervisorsDir(cfg *config.Config) string { return filepath.Join(cfg.StateDir, "exec") }

func findRuntime(cfg *config.Config, typ string) (*config.RuntimeConfig, bool) {
	for _, r := range cfg.Runtimes {
		if r.Type == typ {
			return r, true
		}
	}
	return nil, false
}

// loopbackURL is the agent's URL for runs on this node: a wildcard bind
// address is reached on loopback.
func loopbackURL(scheme string, addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return scheme + "://" + addr.String()
	}
	if tcp.IP.IsUnspecified() {
		return fmt.Sprintf("%s://127.0.0.1:%d", scheme, tcp.Port)
	}
	return scheme + "://" + tcp.String()
}

func printDevBanner(w io.Writer, addr, token, runtime string, throwaway bool) {
	fmt.Fprintf(w, "==> hush agent is running in dev mode.\n")
	if throwaway {
		fmt.Fprintf(w, "    Its data lives in a temporary directory that is removed when it stops.\n")
	}
	fmt.Fprintf(w, "\n    Address:    %s\n    Root token: %s\n    Runtime:    %s\n\n", addr, token, runtime)
	fmt.Fprintf(w, "Paste these lines into your shell to use the CLI with this agent:\n\n")
	fmt.Fprintf(w, "    export HUSH_ADDR=%s\n    export HUSH_TOKEN=%s\n\n", addr, token)
}

// auditWriter returns what the run manager calls to audit runs: nothing
// without an audit log.
func auditWriter(l *audit.Log) func(*audit.Entry) error {
	if l == nil {
		return nil
	}
	return l.Write
}

// reloadPlugins makes the plugins those of the configuration as it now
// reads. A configuration that does not load changes nothing.
func reloadPlugins(ctx context.Context, load func() (*config.Config, error), host *plugins.Host, logger hclog.Logger) {
	cfg, err := load()
	if err != nil {
		logger.Error("SIGHUP received; the configuration does not load, so the plugins stay as they are", "error", err)
		return
	}
	added, changed, removed, err := host.Reload(ctx, cfg)
	if err != nil {
		logger.Error("SIGHUP received; could not reload the plugins, which stay as they are", "error", err)
		return
	}
	logger.Info("SIGHUP received; reloaded the plugin blocks", "added", added, "changed", changed, "removed", removed)
}
