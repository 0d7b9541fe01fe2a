package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/hashicorp/raft"
)

// PathPrefix is where the agent mounts Handler.
const PathPrefix = "/v1/internal/cluster/"

// maxBody bounds a forwarded command or a request body.
const maxBody = 64 << 20

// Error codes of the internal endpoints.
const (
	codeNotLeader      = "not_leader"
	codeOutcomeUnknown = "outcome_unknown"
	codeForbidden      = "forbidden"
	codeBadRequest     = "bad_request"
	codeInternal       = "internal"
)

type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

type readIndexResponse struct {
	Index uint64 `json:"index"`
}

type removeRequest struct {
	ID string `json:"id"`
}

// Handler serves the servers' internal endpoints under PathPrefix: apply,
// read-index, join, status and remove-peer. It answers only a peer that
// presented a server certificate of the cluster CA, which the agent's TLS
// server must ask for (verify_incoming); anyone else gets 403.
func (n *Node) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathPrefix+"apply", n.handleApply)
	mux.HandleFunc("GET "+PathPrefix+"read-index", n.handleReadIndex)
	mux.HandleFunc("POST "+PathPrefix+"join", n.handleJoin)
	mux.HandleFunc("GET "+PathPrefix+"status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, n.Status())
	})
	mux.HandleFunc("POST "+PathPrefix+"remove-peer", n.handleRemove)
	mux.HandleFunc("PUT "+PathPrefix+"restore", n.handleRestore)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := n.authorize(r); err != nil {
			writeError(w, http.StatusForbidden, codeForbidden, err)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// AuthorizeAgent admits an agent of this cluster, server or client: one
// that presented an agent certificate (a server certificate) of the
// cluster CA.
func (n *Node) AuthorizeAgent(r *http.Request) error {
	if n.peerPool == nil {
		return errors.New("this agent is not a server of a multi-server cluster: it has no client agents")
	}
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		return errors.New("the nodes' internal API is for the cluster's agents: present an agent certificate of the cluster CA (`hush tls cert create -node` for a client agent)")
	}
	return VerifyServerPeer(n.peerPool, r.TLS.PeerCertificates)
}

// AuthorizeServer admits a server of this cluster.
func (n *Node) AuthorizeServer(r *http.Request) error { return n.authorize(r) }

// authorize admits a server of this cluster.
func (n *Node) authorize(r *http.Request) error {
	if n.peerPool == nil {
		return errors.New("this agent is not a server of a multi-server cluster")
	}
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		return errors.New("the cluster's internal API is for its servers: present a server certificate of the cluster CA (the agent needs verify_incoming)")
	}
	return VerifyServer(n.peerPool, r.TLS.PeerCertificates)
}

func (n *Node) handleApply(w http.ResponseWriter, r *http.Request) {
	cmd, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Errorf("read command: %w", err))
		return
	}
	if n.raft.State() != raft.Leader {
		writeError(w, http.StatusServiceUnavailable, codeNotLeader, errors.New("this server is not the leader"))
		return
	}
	res, err := n.applyLocal(r.Context(), cmd)
	if err != nil {
		writeApplyError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	w.Write(res)
}

func (n *Node) handleReadIndex(w http.ResponseWriter, r *http.Request) {
	idx, err := n.readIndexLocal()
	if err != nil {
		writeApplyError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, readIndexResponse{Index: idx})
}

func (n *Node) handleRemove(w http.ResponseWriter, r *http.Request) {
	var req removeRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Errorf("decode remove request: %w", err))
		return
	}
	if n.raft.State() != raft.Leader {
		writeError(w, http.StatusServiceUnavailable, codeNotLeader, errors.New("this server is not the leader"))
		return
	}
	if err := n.removeLocal(req.ID); err != nil {
		writeApplyError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// writeApplyError answers with what the caller's retry logic needs.
func writeApplyError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, errRetry), errors.Is(err, errShutdown):
		writeError(w, http.StatusServiceUnavailable, codeNotLeader, err)
	case errors.Is(err, ErrOutcomeUnknown):
		writeError(w, http.StatusServiceUnavailable, codeOutcomeUnknown, err)
	default:
		writeError(w, http.StatusInternalServerError, codeInternal, err)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code string, err error) {
	writeJSON(w, status, errorBody{Error: err.Error(), Code: code})
}

// forwardApply sends cmd to the leader.
func (n *Node) forwardApply(ctx context.Context, leader Member, cmd []byte) ([]byte, error) {
	body, err := n.do(ctx, leader.APIAddr, http.MethodPost, "apply", "application/octet-stream", cmd)
	if err != nil {
		return nil, fmt.Errorf("forward to leader %s: %w", leader.ID, err)
	}
	return body, nil
}

// call makes a JSON request to the server at apiAddr: a POST of req, or a
// GET without one; out takes the answer unless nil.
func (n *Node) call(ctx context.Context, apiAddr, op string, req, out any) error {
	method, ctype, payload := http.MethodGet, "", []byte(nil)
	if req != nil {
		b, err := json.Marshal(req)
		if err != nil {
			return fmt.Errorf("encode %s request: %w", op, err)
		}
		method, ctype, payload = http.MethodPost, "application/json", b
	}
	body, err := n.do(ctx, apiAddr, method, op, ctype, payload)
	if err != nil {
		return fmt.Errorf("%s on %s: %w", op, apiAddr, err)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decode %s answer from %s: %w", op, apiAddr, err)
	}
	return nil
}

// do sends one request and sorts its failures: errRetry when nothing can
// have been applied (no connection, or a server that is not the leader),
// ErrOutcomeUnknown when the request may have been acted on.
func (n *Node) do(ctx context.Context, apiAddr, method, op, ctype string, body []byte) ([]byte, error) {
	return n.doReader(ctx, apiAddr, method, op, ctype, bytes.NewReader(body))
}

// doReader is do with a body to stream.
func (n *Node) doReader(ctx context.Context, apiAddr, method, op, ctype string, body io.Reader) ([]byte, error) {
	if n.client == nil {
		return nil, errors.New("this node is not a server of a multi-server cluster")
	}
	req, err := http.NewRequestWithContext(ctx, method, "https://"+apiAddr+PathPrefix+op, body)
	if err != nil {
		return nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, fmt.Errorf("%w: %w", errRetry, err)
		}
		if method == http.MethodGet {
			return nil, fmt.Errorf("%w: %w", errRetry, err)
		}
		return nil, fmt.Errorf("%w (%w)", ErrOutcomeUnknown, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("%w (read answer: %w)", ErrOutcomeUnknown, err)
	}
	if resp.StatusCode == http.StatusOK {
		return b, nil
	}
	var eb errorBody
	if json.Unmarshal(b, &eb) != nil || eb.Error == "" {
		eb.Error = fmt.Sprintf("%s: %.200s", resp.Status, b)
	}
	switch eb.Code {
	case codeNotLeader:
		return nil, fmt.Errorf("%w: %s", errRetry, eb.Error)
	case codeStarting:
		// The agent answered before it served the cluster's endpoints:
		// it took nothing.
		return nil, fmt.Errorf("%w: %s", errRetry, eb.Error)
	case codeOutcomeUnknown:
		return nil, fmt.Errorf("%w (%s)", ErrOutcomeUnknown, eb.Error)
	}
	return nil, fmt.Errorf("answered %s: %s", resp.Status, eb.Error)
}

// codeStarting is the code of the agent's answer while it starts, before
// it serves these endpoints (its API's "unavailable").
const codeStarting = "unavailable"

func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(v); err != nil {
		return fmt.Errorf("decode request: %w", err)
	}
	return nil
}
