package e2e

import (
	"context"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/hush-sh/hush/sdk/api"
)

// The operations of the linearizability check, on a few secret names of
// one user. A name holds at most one secret, which is immutable: its state
// is the value it holds, or "" for none.
const (
	opCreate = "create"
	opDelete = "delete"
	opRead   = "read"
)

// Outcomes of an operation.
const (
	outOK       = "ok"
	outExists   = "exists"
	outNotFound = "not-found"
	outValue    = "value"
	// outUnknown is a write whose outcome the client could not learn: a
	// timeout, a cut connection, or the agent's "may or may not have been
	// applied". It is recorded as a call that never returns (Return at
	// infinity), so the checker may place its effect anywhere after its
	// call, or nowhere observable.
	outUnknown = "unknown"
)

type linInput struct {
	op, key, value string
}

type linOutput struct {
	kind, value string
}

// secretsModel is the sequential specification of create, delete and read
// on independent names, checked one name at a time.
var secretsModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(linInput).key
			byKey[k] = append(byKey[k], op)
		}
		keys := make([]string, 0, len(byKey))
		for k := range byKey {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var out [][]porcupine.Operation
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		held, in, out := state.(string), input.(linInput), output.(linOutput)
		switch in.op {
		case opCreate:
			if held != "" {
				return out.kind == outExists || out.kind == outUnknown, held
			}
			return out.kind == outOK || out.kind == outUnknown, in.value
		case opDelete:
			if held == "" {
				return out.kind == outNotFound || out.kind == outUnknown, ""
			}
			return out.kind == outOK || out.kind == outUnknown, ""
		case opRead:
			if held == "" {
				return out.kind == outNotFound, ""
			}
			return out.kind == outValue && out.value == held, held
		}
		return false, held
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(linInput), output.(linOutput)
		arg := in.key
		if in.op == opCreate {
			arg += ", " + in.value
		}
		res := out.kind
		if out.kind == outValue {
			res = out.value
		}
		return fmt.Sprintf("%s(%s) → %s", in.op, arg, res)
	},
	DescribeState: func(state any) string {
		if state.(string) == "" {
			return "(none)"
		}
		return state.(string)
	},
}

// history records the operations of concurrent clients.
type history struct {
	start time.Time
	ids   atomic.Int32 // porcupine client ids handed out

	mu  sync.Mutex
	ops []porcupine.Operation
	// counts by outcome: ok (any definite answer), failed (definitely not
	// applied, or a failed read: not recorded), unknown.
	ok, failed, unknown int
	// errs counts the failures by message, for the report.
	errs map[string]int
}

func (h *history) now() int64 { return time.Since(h.start).Nanoseconds() }

func (h *history) record(op porcupine.Operation) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ok++
	h.ops = append(h.ops, op)
}

// fail counts an operation that failed with err and is left out of the
// history; unknown records one whose outcome is not known.
func (h *history) fail(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failed++
	h.errs[errorClass(err)]++
}

func (h *history) unknownOutcome(op porcupine.Operation, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.unknown++
	h.errs[errorClass(err)]++
	h.ops = append(h.ops, op)
}

// errorClass shortens an error to its kind, for counting.
func errorClass(err error) string {
	msg := err.Error()
	for _, s := range []string{"agent is starting", "internal error", "no cluster leader", "may or may not", "behind the leader", "did not answer in time", "deadline exceeded", "connection refused", "EOF", "connection reset"} {
		if strings.Contains(msg, s) {
			return s
		}
	}
	if len(msg) > 80 {
		msg = msg[:80]
	}
	return msg
}

// notApplied says whether a write that failed with err certainly changed
// nothing: the agent was not reached, it was still starting (it answers
// so before any handler), or it said that no leader took the write.
func notApplied(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var ae *api.Error
	return errors.As(err, &ae) && errors.Is(err, api.ErrUnavailable) &&
		(strings.Contains(ae.Message, "no cluster leader") || strings.HasPrefix(ae.Message, "the agent is starting"))
}

// linClient runs random operations on keys against the servers at addrs,
// the first one first, until stop is closed.
func linClient(t *testing.T, h *history, cfg api.Config, keys []string, seed uint64, stop <-chan struct{}) {
	cl, err := api.NewClient(&cfg)
	if err != nil {
		t.Errorf("new client: %v", err)
		return
	}
	rng := mrand.New(mrand.NewPCG(seed, 14))
	id := int(h.ids.Add(1)) - 1
	for seq := 0; ; seq++ {
		select {
		case <-stop:
			return
		default:
		}
		in := linInput{key: keys[rng.IntN(len(keys))]}
		switch r := rng.IntN(10); {
		case r < 4:
			in.op, in.value = opCreate, fmt.Sprintf("v%d-%d", seed, seq)
		case r < 6:
			in.op = opDelete
		default:
			in.op = opRead
		}
		ctx, cancel := context.WithTimeout(context.Background(), 7*time.Second)
		call := h.now()
		out, err := linDo(ctx, cl, in)
		ret := h.now()
		cancel()
		// A pause between operations keeps the history, and the search
		// for its linearization, within bounds.
		time.Sleep(time.Duration(10+rng.IntN(20)) * time.Millisecond)
		switch {
		case err == nil:
			h.record(porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: ret})
		case in.op == opRead || notApplied(err):
			// A failed read, or a write that was not applied, has no
			// effect: the history need not hold it.
			h.fail(err)
			if in.op != opRead || !errors.Is(err, api.ErrUnavailable) {
				time.Sleep(50 * time.Millisecond)
			}
		default:
			h.unknownOutcome(porcupine.Operation{ClientId: id, Input: in, Call: call, Output: linOutput{kind: outUnknown}, Return: math.MaxInt64}, err)
			// Its call never returns: this client goes on as another.
			id = int(h.ids.Add(1)) - 1
		}
	}
}

// linDo sends one operation and returns its definite outcome, or the
// error of one it could not learn.
func linDo(ctx context.Context, cl *api.Client, in linInput) (linOutput, error) {
	switch in.op {
	case opCreate:
		_, err := cl.CreateSecret(ctx, &api.CreateSecretRequest{Name: in.key, Type: api.TypeEnv,
			Fields: map[string]string{"key": strings.ToUpper(strings.ReplaceAll(in.key, "-", "_"))},
			Data:   map[string][]byte{"value": []byte(in.value)}})
		switch {
		case err == nil:
			return linOutput{kind: outOK}, nil
		case errors.Is(err, api.ErrExists):
			return linOutput{kind: outExists}, nil
		}
		return linOutput{}, err
	case opDelete:
		err := cl.DeleteSecret(ctx, in.key)
		switch {
		case err == nil:
			return linOutput{kind: outOK}, nil
		case errors.Is(err, api.ErrNotFound):
			return linOutput{kind: outNotFound}, nil
		}
		return linOutput{}, err
	default:
		s, err := cl.ExportSecret(ctx, in.key)
		switch {
		case err == nil:
			return linOutput{kind: outValue, value: string(s.Data["value"])}, nil
		case errors.Is(err, api.ErrNotFound):
			return linOutput{kind: outNotFound}, nil
		}
		return linOutput{}, err
	}
}

// startProxiedServers starts n server agents, as startServers does, each
// advertising for raft the address of its proxy in a faultNet, so that the
// test can cut one off from the others.
func startProxiedServers(t *testing.T, n int) (*servers, *faultNet) {
	t.Helper()
	var fn *faultNet
	c := startServersWith(t, n, serverHooks{
		raftAdvertise: func(raft []string) func(int) string {
			fn = newFaultNet(t, raft)
			return fn.addr
		},
		launched: func(i int, a *agent) { fn.setPID(i, a.cmd.Process.Pid) },
	})
	return c, fn
}

// Concurrent clients create, delete and read secrets on three servers
// while the test kills and restarts servers and cuts one off from the
// others' raft traffic and heals it; the history, closed by a read of
// every name on every server once the faults end, is linearizable, so no
// acknowledged write was lost and no read saw a write undone.
func TestLinearizableUnderFaults(t *testing.T) {
	const (
		nServers   = 3
		clients    = 4
		faultsFor  = 35 * time.Second
		maxKills   = 8
		checkLimit = 30 * time.Second
	)
	c, fn := startProxiedServers(t, nServers)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := mrand.New(mrand.NewPCG(seed, 1))
	keys := []string{"lin-a", "lin-b", "lin-c", "lin-d", "lin-e"}
	cfgFor := func(first int) api.Config {
		var addrs []string
		for i := range nServers {
			addrs = append(addrs, c.agents[(first+i)%nServers].addr)
		}
		return api.Config{Address: strings.Join(addrs, ","), Token: c.agents[0].token,
			TLS: api.TLSFiles{CACert: c.pki.ca + ".pem", ClientCert: c.pki.client + ".pem", ClientKey: c.pki.client + "-key.pem"}}
	}

	h := &history{start: time.Now(), errs: map[string]int{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for k := range clients {
		wg.Go(func() { linClient(t, h, cfgFor(k%nServers), keys, seed+uint64(k), stop) })
	}

	down := make([]bool, nServers)
	var killed []*agent // for their logs
	kill := func(i int) {
		killed = append(killed, c.agents[i])
		c.agents[i].cmd.Process.Signal(syscall.SIGKILL)
		<-c.agents[i].exited
		down[i] = true
	}
	restart := func(i int) {
		c.restart(i)
		fn.setPID(i, c.agents[i].cmd.Process.Pid)
		down[i] = false
	}
	// pick chooses a server: the leader half the time, when one is known.
	pick := func() int {
		if rng.IntN(2) == 0 {
			if l := c.leader(rng.IntN(nServers)); l >= 0 {
				return l
			}
		}
		return rng.IntN(nServers)
	}
	pause := func(min, spread time.Duration) {
		time.Sleep(min + time.Duration(rng.Int64N(int64(spread))))
	}

	kills, cuts, noQuorum := 0, 0, 0
	began := time.Now()
	for round := 0; time.Since(began) < faultsFor && kills < maxKills; round++ {
		pause(time.Second, time.Second)
		switch {
		case round == 3:
			// A kill during a cut of another server: no quorum for a while,
			// and writes must fail cleanly or stay unknown.
			i := pick()
			j := (i + 1 + rng.IntN(nServers-1)) % nServers
			fn.isolate(j)
			kill(i)
			kills, cuts, noQuorum = kills+1, cuts+1, noQuorum+1
			t.Logf("%5.1fs: s%d cut off and s%d killed (no quorum)", time.Since(began).Seconds(), j+1, i+1)
			// Longer than a server waits for a leader (5s), so that some
			// writes fail for want of one.
			pause(6*time.Second, time.Second)
			fn.heal()
			restart(i)
		case round%2 == 0:
			i := pick()
			kill(i)
			kills++
			t.Logf("%5.1fs: s%d killed", time.Since(began).Seconds(), i+1)
			pause(time.Second, 2*time.Second)
			restart(i)
		default:
			i := pick()
			fn.isolate(i)
			cuts++
			t.Logf("%5.1fs: s%d cut off", time.Since(began).Seconds(), i+1)
			pause(2*time.Second, 2*time.Second)
			if l := c.leader((i + 1) % nServers); l >= 0 {
				t.Logf("%5.1fs: s%d sees s%d lead", time.Since(began).Seconds(), (i+1)%nServers+1, l+1)
			}
			fn.heal()
		}
	}
	close(stop)
	wg.Wait()
	for i := range nServers {
		if down[i] {
			restart(i)
		}
	}

	// The faults are over: every server must read every name, and the
	// reads close the history, so that a lost acknowledged write shows.
	final := int(h.ids.Add(1)) - 1
	for i := range nServers {
		cl, err := api.NewClient(&api.Config{Address: c.agents[i].addr, Token: c.agents[0].token,
			TLS: api.TLSFiles{CACert: c.pki.ca + ".pem", ClientCert: c.pki.client + ".pem", ClientKey: c.pki.client + "-key.pem"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			in := linInput{op: opRead, key: k}
			deadline := time.Now().Add(20 * time.Second)
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				call := h.now()
				out, err := linDo(ctx, cl, in)
				ret := h.now()
				cancel()
				if err == nil {
					h.record(porcupine.Operation{ClientId: final, Input: in, Call: call, Output: out, Return: ret})
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("read %s on s%d 20s after the faults ended: %v", k, i+1, err)
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
	}

	checked := time.Now()
	res, info := porcupine.CheckOperationsVerbose(secretsModel, h.ops, checkLimit)
	took := time.Since(checked)
	writes := 0
	for _, op := range h.ops {
		if in := op.Input.(linInput); in.op != opRead && op.Output.(linOutput).kind != outUnknown {
			writes++
		}
	}
	t.Logf("%d operations recorded (%d answered, %d of them acknowledged writes; %d of unknown outcome), %d failed and left out; %d kills, %d cuts (%d with no quorum), %d raft connections refused (%d from no known server); checked in %s: %s",
		len(h.ops), h.ok, writes, h.unknown, h.failed, kills, cuts, noQuorum, fn.refusals(), fn.unidentified(), took.Round(time.Millisecond), res)
	t.Logf("failures by kind: %v", h.errs)
	if h.errs["internal error"] > 0 {
		// An internal error is recorded as of unknown outcome; the agents'
		// errors say what it was.
		for _, a := range append(killed, c.agents...) {
			for line := range strings.SplitSeq(a.stderr.String(), "\n") {
				if strings.Contains(line, `"@level":"error"`) {
					t.Logf("agent error: %s", line)
				}
			}
		}
	}
	if res != porcupine.Ok {
		path := filepath.Join(os.TempDir(), fmt.Sprintf("hush-linearizability-%d.html", seed))
		if err := porcupine.VisualizePath(secretsModel, info, path); err != nil {
			t.Fatalf("the history is %s, want Ok (and the visualization failed: %v)", res, err)
		}
		t.Fatalf("the history is %s, want Ok: see %s", res, path)
	}
	if writes < 100 {
		t.Errorf("got %d acknowledged writes, want at least 100 for the check to mean something", writes)
	}
	if kills == 0 || cuts == 0 || fn.refusals() == 0 {
		t.Errorf("got %d kills, %d cuts and %d refused raft connections, want some of each", kills, cuts, fn.refusals())
	}
}

// The model accepts the histories of a linearizable store and rejects
// those that lose an acknowledged write or read one undone.
func TestSecretsModel(t *testing.T) {
	op := func(call, ret int64, in linInput, out linOutput) porcupine.Operation {
		return porcupine.Operation{Input: in, Call: call, Output: out, Return: ret}
	}
	create := linInput{op: opCreate, key: "k", value: "v1"}
	del := linInput{op: opDelete, key: "k"}
	read := linInput{op: opRead, key: "k"}
	ok, value := linOutput{kind: outOK}, linOutput{kind: outValue, value: "v1"}
	notFound, unknown := linOutput{kind: outNotFound}, linOutput{kind: outUnknown}
	tests := map[string]struct {
		history []porcupine.Operation
		want    porcupine.CheckResult
	}{
		"create then read":                 {[]porcupine.Operation{op(0, 1, create, ok), op(2, 3, read, value)}, porcupine.Ok},
		"acknowledged create lost":         {[]porcupine.Operation{op(0, 1, create, ok), op(2, 3, read, notFound)}, porcupine.Illegal},
		"delete undone":                    {[]porcupine.Operation{op(0, 1, create, ok), op(2, 3, del, ok), op(4, 5, read, value)}, porcupine.Illegal},
		"create twice":                     {[]porcupine.Operation{op(0, 1, create, ok), op(2, 3, linInput{op: opCreate, key: "k", value: "v2"}, ok)}, porcupine.Illegal},
		"concurrent read sees either":      {[]porcupine.Operation{op(0, 4, create, ok), op(1, 2, read, notFound), op(3, 5, read, value)}, porcupine.Ok},
		"unknown create applied":           {[]porcupine.Operation{op(0, math.MaxInt64, create, unknown), op(2, 3, read, value)}, porcupine.Ok},
		"unknown create not applied":       {[]porcupine.Operation{op(0, math.MaxInt64, create, unknown), op(2, 3, read, notFound)}, porcupine.Ok},
		"unknown create seen, then unseen": {[]porcupine.Operation{op(0, math.MaxInt64, create, unknown), op(2, 3, read, value), op(4, 5, read, notFound)}, porcupine.Illegal},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got, _ := porcupine.CheckOperationsVerbose(secretsModel, tc.history, time.Second); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}
