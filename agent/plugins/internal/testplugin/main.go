// Command testplugin is a provider plugin for the host's tests. Its -mode
// flag makes it misbehave in the ways a real plugin can.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/sdk/provider"
)

func main() {
	mode := flag.String("mode", "good", "good, stdout, hang, badconfig or oldapi")
	started := flag.String("started", "", "a file to create first, to tell a test that the process runs")
	flag.Parse()
	if *started != "" {
		if err := os.WriteFile(*started, nil, 0o600); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	switch *mode {
	case "chatty":
		fmt.Fprintln(os.Stderr, "said on stderr before serving")
	case "stdout":
		fmt.Println("hello from a plugin that writes to stdout")
	case "hang":
		time.Sleep(time.Hour)
	}
	err := provider.Serve(func(hclog.Logger) provider.Provider { return &testProvider{mode: *mode} })
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

type testProvider struct{ mode string }

func (p *testProvider) GetInfo(context.Context, *provider.GetInfoRequest) (*provider.GetInfoResponse, error) {
	versions := []int{provider.APIVersion}
	if p.mode == "oldapi" {
		versions = []int{0}
	}
	return &provider.GetInfoResponse{Name: "test", Version: "1.2.3", APIVersions: versions}, nil
}

func (p *testProvider) Configure(_ context.Context, req *provider.ConfigureRequest) (*provider.ConfigureResponse, error) {
	var cfg struct {
		Greeting string `json:"greeting"`
	}
	if err := req.Decode(&cfg); err != nil {
		return &provider.ConfigureResponse{Diagnostics: []provider.Diagnostic{{Summary: err.Error()}}}, nil
	}
	if p.mode == "badconfig" || cfg.Greeting == "" {
		return &provider.ConfigureResponse{Diagnostics: []provider.Diagnostic{{
			Severity: provider.SeverityError, Attribute: "greeting", Summary: "greeting is required",
		}}}, nil
	}
	return &provider.ConfigureResponse{}, nil
}

// Resolve answers "pid" with its process id, "env" with its sorted
// environment, "missing" with not found, and anything else with itself
// upper-cased. "sleep" makes it answer only when the host gives up.
func (p *testProvider) Resolve(ctx context.Context, req *provider.ResolveRequest) (*provider.ResolveResponse, error) {
	resp := &provider.ResolveResponse{}
	for _, ref := range req.References {
		r := provider.Result{Reference: ref}
		switch ref {
		case "sleep":
			<-ctx.Done()
			return nil, ctx.Err()
		case "pid":
			r.Value = []byte(strconv.Itoa(os.Getpid()))
		case "say":
			// Plain stderr, as a provider's print debugging is.
			fmt.Fprintln(os.Stderr, "said on stderr while resolving")
			r.Value = []byte("said")
		case "env":
			env := os.Environ()
			sort.Strings(env)
			r.Value = []byte(strings.Join(env, "\n"))
		case "missing":
			r.Err = fmt.Errorf("no such thing: %w", provider.ErrNotFound)
		default:
			r.Value = []byte(strings.ToUpper(ref))
		}
		resp.Results = append(resp.Results, r)
	}
	return resp, nil
}
