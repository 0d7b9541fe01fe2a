package provider

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	providerv1 "github.com/hush-sh/hush/sdk/internal/proto/provider/v1"
)

// Handshake is the go-plugin handshake between the hush agent and a provider
// plugin. ProtocolVersion changes only when the wire protocol breaks; the
// API versions that GetInfo lists evolve the protocol compatibly.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "HUSH_PROVIDER_PLUGIN",
	MagicCookieValue: "927fc1c02d45b6f890d84e541910fe38ea203574551c6f548db4e8933c476e27",
}

// PluginName is the name a host dispenses the provider under.
const PluginName = "provider"

// GRPCPlugin is the go-plugin plugin for providers, over gRPC only. The
// plugin side serves the Provider that Factory returns; the host side needs
// no Factory and gets a Provider that is also a Storer.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	// Factory makes the provider a plugin serves. It is called once.
	Factory func() Provider
	// Logger receives the panics that the plugin side recovers from the
	// provider's methods, with their stacks. Serve sets it to its JSON
	// logger on the process's stderr, which the host reads. If nil, the
	// plugin side makes one on os.Stderr as it is when GRPCServer runs.
	Logger hclog.Logger
}

var _ plugin.GRPCPlugin = (*GRPCPlugin)(nil)

// GRPCServer registers the provider that Factory returns with s.
func (p *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.Factory == nil {
		return errors.New("serve provider: no factory")
	}
	impl := p.Factory()
	if impl == nil {
		return errors.New("serve provider: the factory returned nil")
	}
	logger := p.Logger
	if logger == nil {
		logger = hclog.New(&hclog.LoggerOptions{Name: "provider", Output: os.Stderr, JSONFormat: true})
	}
	providerv1.RegisterProviderServer(s, &grpcServer{impl: impl, logger: logger})
	return nil
}

// GRPCClient returns a Provider, which is also a Storer, that calls the
// plugin over conn.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return &grpcClient{client: providerv1.NewProviderClient(conn)}, nil
}

// PluginSet is the plugin set for go-plugin's ServeConfig and ClientConfig.
// A host passes a nil factory.
func PluginSet(factory func() Provider) plugin.PluginSet {
	return plugin.PluginSet{PluginName: &GRPCPlugin{Factory: factory}}
}

// ServeOption configures Serve.
type ServeOption func(*serveOptions)

type serveOptions struct {
	debug    context.Context
	reattach chan<- *plugin.ReattachConfig
	maxMsg   int
}

// WithReattach serves in go-plugin's test and debug mode: the plugin runs
// on its own (in a debugger, say) instead of being launched by the agent,
// sends the ReattachConfig the agent needs to reach it on reattach, and
// serves until ctx ends.
func WithReattach(ctx context.Context, reattach chan<- *plugin.ReattachConfig) ServeOption {
	return func(o *serveOptions) { o.debug, o.reattach = ctx, reattach }
}

// WithMaxMessageSize bounds the gRPC messages the plugin receives and
// sends, in bytes; default 4 MiB, gRPC's. A batch of values near the
// 1 MiB limit of a secret may need more.
func WithMaxMessageSize(n int) ServeOption {
	return func(o *serveOptions) { o.maxMsg = n }
}

// ErrNotLaunched is returned by Serve in a process that the agent did not
// launch as a plugin.
var ErrNotLaunched = errors.New("this program is a hush provider plugin: the hush agent launches it (see its plugin block); it is not run by hand")

// Serve runs the provider that factory makes as a plugin, and returns when
// the host is done with it. It is all a plugin's main needs to call:
//
//	func main() {
//		if err := provider.Serve(func(log hclog.Logger) provider.Provider { return &myProvider{log: log} }); err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			os.Exit(1)
//		}
//	}
//
// The host may call the provider's methods concurrently. factory is given
// a logger whose lines reach the agent's log at their level, under the
// plugin's name. Nothing may write to stdout, which carries go-plugin's
// handshake; what the provider writes to stderr otherwise reaches the
// agent's log as INFO lines.
//
// Serve exits the process if its parent dies, so that a plugin never
// outlives a host that was killed without the chance to stop it.
func Serve(factory func(hclog.Logger) Provider, opts ...ServeOption) error {
	var o serveOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.debug == nil && os.Getenv(Handshake.MagicCookieKey) != Handshake.MagicCookieValue {
		return ErrNotLaunched
	}
	if o.debug == nil {
		go exitWithParent(os.Getppid(), 500*time.Millisecond)
	}
	// Made before go-plugin redirects os.Stderr, so that its lines reach the
	// host as log lines rather than as the plugin's raw output.
	logger := hclog.New(&hclog.LoggerOptions{
		Level:      hclog.Trace, // the host's logger filters
		Output:     os.Stderr,
		JSONFormat: true,
	})
	server := plugin.DefaultGRPCServer
	if o.maxMsg > 0 {
		server = func(opts []grpc.ServerOption) *grpc.Server {
			return plugin.DefaultGRPCServer(append(opts, grpc.MaxRecvMsgSize(o.maxMsg), grpc.MaxSendMsgSize(o.maxMsg)))
		}
	}
	provLogger := logger.Named("provider")
	cfg := &plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins: plugin.PluginSet{PluginName: &GRPCPlugin{
			Factory: func() Provider { return factory(provLogger) },
			Logger:  provLogger,
		}},
		GRPCServer: server,
		Logger:     logger,
	}
	var closed chan struct{}
	if o.debug != nil {
		closed = make(chan struct{})
		cfg.Test = &plugin.ServeTestConfig{Context: o.debug, ReattachConfigCh: o.reattach, CloseCh: closed}
	}
	plugin.Serve(cfg)
	if closed != nil {
		<-closed
	}
	return nil
}

// exitWithParent exits the process once its parent is gone. The host kills
// its plugins when it stops, but it cannot when it is killed with SIGKILL,
// and an orphaned plugin holds credentials for no one.
func exitWithParent(ppid int, every time.Duration) {
	for range time.Tick(every) {
		if os.Getppid() != ppid {
			os.Exit(1)
		}
	}
}
