package provider_test

import (
	"context"
	"errors"
	"maps"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hush-sh/hush/sdk/provider"
	"github.com/hush-sh/hush/sdk/providertest"
)

// panicker panics with value in every method while armed, and answers
// plainly once disarmed.
type panicker struct {
	value any
	armed atomic.Bool
}

var (
	_ provider.Provider = (*panicker)(nil)
	_ provider.Storer   = (*panicker)(nil)
)

func (p *panicker) maybePanic() {
	if p.armed.Load() {
		panic(p.value)
	}
}

func (p *panicker) GetInfo(context.Context, *provider.GetInfoRequest) (*provider.GetInfoResponse, error) {
	p.maybePanic()
	return &provider.GetInfoResponse{Name: "panicker"}, nil
}

func (p *panicker) Configure(context.Context, *provider.ConfigureRequest) (*provider.ConfigureResponse, error) {
	p.maybePanic()
	return &provider.ConfigureResponse{}, nil
}

func (p *panicker) Resolve(_ context.Context, req *provider.ResolveRequest) (*provider.ResolveResponse, error) {
	p.maybePanic()
	results := make([]provider.Result, len(req.References))
	for i, ref := range req.References {
		results[i] = provider.Result{Reference: ref, Value: []byte("v-" + ref)}
	}
	return &provider.ResolveResponse{Results: results}, nil
}

func (p *panicker) Put(context.Context, *provider.PutRequest) (*provider.PutResponse, error) {
	p.maybePanic()
	return &provider.PutResponse{}, nil
}

func (p *panicker) Delete(context.Context, *provider.DeleteRequest) (*provider.DeleteResponse, error) {
	p.maybePanic()
	return &provider.DeleteResponse{}, nil
}

// runtimeError returns the runtime.Error of an index out of range.
func runtimeError() error { return indexPast(5) }

func indexPast(i int) (err error) {
	defer func() { err, _ = recover().(error) }()
	var s []int
	_ = s[i]
	return nil
}

// serveLogged serves p over real gRPC in this process, as providertest.Serve
// does, with the plugin side's panics logged to the returned sink.
func serveLogged(t *testing.T, p provider.Provider) (provider.Provider, *providertest.Log) {
	t.Helper()
	logs := &providertest.Log{}
	logger := hclog.New(&hclog.LoggerOptions{Name: "provider", Output: logs, JSONFormat: true})
	set := plugin.PluginSet{provider.PluginName: &provider.GRPCPlugin{Factory: func() provider.Provider { return p }, Logger: logger}}
	client, server := plugin.TestPluginGRPCConn(t, false, set)
	t.Cleanup(func() {
		server.Stop()
		_ = client.Close()
	})
	raw, err := client.Dispense(provider.PluginName)
	if err != nil {
		t.Fatalf("dispense provider: %v", err)
	}
	return raw.(provider.Provider), logs
}

func TestPanicBecomesError(t *testing.T) {
	long := strings.Repeat("x", 5000)
	tests := map[string]struct {
		value   any
		wantMsg string
	}{
		"string": {
			value:   "backend client is nil",
			wantMsg: "backend client is nil",
		},
		"error": {
			value:   errors.New("parse token: unexpected EOF"),
			wantMsg: "parse token: unexpected EOF",
		},
		"runtime error": {
			value:   runtimeError(),
			wantMsg: "runtime error: index out of range [5] with length 0",
		},
		// A []byte may be a value the provider read: only its type is told.
		"bytes": {
			value:   []byte("hunter2-in-a-panic"),
			wantMsg: "a value of type []uint8",
		},
		"long string": {
			value:   long,
			wantMsg: long[:1024] + "...",
		},
	}
	calls := maps.Clone(providerCalls)
	calls["Put"] = func(p provider.Provider) error {
		_, err := p.(provider.Storer).Put(context.Background(), &provider.PutRequest{Reference: "a", Value: []byte("1")})
		return err
	}
	calls["Delete"] = func(p provider.Provider) error {
		_, err := p.(provider.Storer).Delete(context.Background(), &provider.DeleteRequest{Reference: "a"})
		return err
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			impl := &panicker{value: tt.value}
			p, logs := serveLogged(t, impl)
			for call, do := range calls {
				impl.armed.Store(true)
				err := do(p)
				want := "provider panicked in " + call + ": " + tt.wantMsg
				if err == nil || err.Error() != want {
					t.Errorf("%s: got error %v, want %q", call, err, want)
				}
				if got := status.Code(err); got != codes.Internal {
					t.Errorf("%s: got status code %v, want %v", call, got, codes.Internal)
				}
				// The same connection, and so the same plugin, answers
				// the next call.
				impl.armed.Store(false)
				if err := do(p); err != nil {
					t.Errorf("%s after a panic: got error %v, want none", call, err)
				}
			}
			out := logs.String()
			for call := range calls {
				if !strings.Contains(out, `"method":"`+call+`"`) {
					t.Errorf("plugin log: got %s, want a line with method %s", out, call)
				}
			}
			if !strings.Contains(out, `"@message":"provider panicked"`) || !strings.Contains(out, "maybePanic") {
				t.Errorf("plugin log: got %s, want \"provider panicked\" lines with the stack through maybePanic", out)
			}
			if strings.Contains(out, "hunter2") {
				t.Errorf("plugin log: got %s, want no bytes of a []byte panic value", out)
			}
		})
	}
}
