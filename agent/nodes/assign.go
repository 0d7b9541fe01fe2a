package nodes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/runs"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

// WireRun is a run's record as servers and nodes send it to each other:
// with its events, which the store keeps apart.
type WireRun struct {
	store.Run
	Events []store.RunEvent `json:"events"`
}

func toWire(run *store.Run) *WireRun { return &WireRun{Run: *run, Events: run.Events} }

func (w *WireRun) run() *store.Run {
	run := w.Run
	run.Events = w.Events
	return &run
}

// Assignment is a run placed on a node, as the servers give it to the
// node's agent.
type Assignment struct {
	Run *WireRun `json:"run"`
	// Stop, when set, says why the run's owner asked for it to stop.
	Stop string `json:"stop,omitempty"`
}

// AssignmentList is a node's assignments; Hash names them, for the next
// blocking query.
type AssignmentList struct {
	Runs []Assignment `json:"runs"`
	Hash string       `json:"hash"`
}

// Report is a node's news of a run it runs: its record as the node has it,
// events and all.
type Report struct {
	Run *WireRun `json:"run"`
}

// maxWait bounds a blocking query for a node's assignments.
const maxWait = 5 * time.Minute

// maxReport bounds a report: a run's record and events.
const maxReport = 8 << 20

// assignments serves client agents the runs placed on their nodes, their
// grants, and their reports.
type assignments struct {
	store   *store.Store
	grants  runs.Grants
	barrier func(context.Context) error
	logger  hclog.Logger
}

// list answers GET {id}/runs?hash=H&wait=D: the runs placed on node id,
// once they differ from those named by H, or after D.
func (a *assignments) list(w http.ResponseWriter, r *http.Request) {
	node := r.PathValue("id")
	wait := 0 * time.Second
	if v := r.URL.Query().Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			writeJSON(w, http.StatusBadRequest, api.ErrorResponse{Error: fmt.Sprintf("wait %q is not a duration", v), Code: api.CodeInvalid})
			return
		}
		wait = min(d, maxWait)
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	for {
		changed := a.store.Changed()
		placed, hash, err := a.placedOn(node)
		if err != nil {
			answerError(w, err)
			return
		}
		if hash != r.URL.Query().Get("hash") {
			a.answerList(w, placed, hash)
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			a.answerList(w, placed, hash)
			return
		}
	}
}

// placedOn returns the placements on node, and a hash of them that changes
// whenever what the node is told of them would.
func (a *assignments) placedOn(node string) ([]*store.Placement, string, error) {
	placements, err := a.store.Placements()
	if err != nil {
		return nil, "", err
	}
	var out []*store.Placement
	h := sha256.New()
	for _, p := range placements {
		if p.Node == node {
			out = append(out, p)
			fmt.Fprintf(h, "%s %d %d %s\n", p.ID, p.Attempt, p.Version, p.Stop)
		}
	}
	return out, hex.EncodeToString(h.Sum(nil)), nil
}

// answerList answers the runs of placed, read from the store.
func (a *assignments) answerList(w http.ResponseWriter, placed []*store.Placement, hash string) {
	out := &AssignmentList{Runs: []Assignment{}, Hash: hash}
	for _, p := range placed {
		run, err := a.store.GetRun(p.Owner, p.ID)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted since
		}
		if err != nil {
			answerError(w, err)
			return
		}
		out.Runs = append(out.Runs, Assignment{Run: toWire(run), Stop: p.Stop})
	}
	writeJSON(w, http.StatusOK, out)
}

// placed returns run {run} and its placement if the run is placed on node
// {id}, in the attempt the request names; otherwise it answers 409.
func (a *assignments) placed(w http.ResponseWriter, r *http.Request) (*store.Run, *store.Placement, bool) {
	p, err := a.store.PlacementOf(r.PathValue("run"))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		answerError(w, err)
		return nil, nil, false
	}
	if err != nil || p.Node != r.PathValue("id") || fmt.Sprint(p.Attempt) != r.URL.Query().Get("attempt") {
		writeJSON(w, http.StatusConflict, api.ErrorResponse{
			Error: fmt.Sprintf("run %s is not placed on this node in this attempt: it ended, or the servers placed it elsewhere", r.PathValue("run")),
			Code:  api.CodeConflict})
		return nil, nil, false
	}
	run, err := a.store.GetRun(p.Owner, p.ID)
	if err != nil {
		answerError(w, err)
		return nil, nil, false
	}
	return run, p, true
}

// grant gives a run placed on the node its secrets and token: the only
// way secret values reach a client agent, for a run it starts.
func (a *assignments) grant(w http.ResponseWriter, r *http.Request) {
	run, _, ok := a.placed(w, r)
	if !ok {
		return
	}
	g, err := a.grants.Grant(r.Context(), run)
	if err != nil {
		// Why a run cannot have its secrets is the run's failure,
		// which the node records: a missing secret, a plugin down.
		writeJSON(w, http.StatusUnprocessableEntity, api.ErrorResponse{Error: err.Error(), Code: api.CodeInvalid})
		return
	}
	a.logger.Info("run's secrets sent to its node", "run_id", run.ID, "node_id", r.PathValue("id"), "secrets", len(g.Secrets))
	writeJSON(w, http.StatusOK, g)
}

// RefreshRequest names the secrets a node's run fetches again.
type RefreshRequest struct {
	Names []string `json:"names"`
}

// refresh gives a run placed on the node the current values of secrets it
// was granted, for its refresh.
func (a *assignments) refresh(w http.ResponseWriter, r *http.Request) {
	var req RefreshRequest
	if !decode(w, r, &req) {
		return
	}
	run, _, ok := a.placed(w, r)
	if !ok {
		return
	}
	out, err := a.grants.Refresh(r.Context(), run, req.Names)
	if err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, api.ErrorResponse{Error: err.Error(), Code: api.CodeInvalid})
		return
	}
	a.logger.Debug("run's secrets sent again to its node", "run_id", run.ID, "node_id", r.PathValue("id"), "secrets", len(out.Secrets))
	writeJSON(w, http.StatusOK, out)
}

// revoke revokes the tokens of a run of the node, unless the servers have
// since placed it again: its tokens are then its new attempt's (the lost
// attempt's were revoked when it was placed again). A run that ended has
// none left, which is no error.
func (a *assignments) revoke(w http.ResponseWriter, r *http.Request) {
	p, err := a.store.PlacementOf(r.PathValue("run"))
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		answerError(w, err)
		return
	case p.Node != r.PathValue("id") || fmt.Sprint(p.Attempt) != r.URL.Query().Get("attempt"):
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if err := a.grants.Revoke(r.PathValue("run")); err != nil {
		answerError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// report writes what the node says of a run placed on it to the run's
// record: its status, times, devices and new events.
func (a *assignments) report(w http.ResponseWriter, r *http.Request) {
	var rep Report
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxReport)).Decode(&rep); err != nil {
		writeJSON(w, http.StatusBadRequest, api.ErrorResponse{Error: fmt.Sprintf("decode report: %v", err), Code: api.CodeInvalid})
		return
	}
	if rep.Run == nil {
		writeJSON(w, http.StatusBadRequest, api.ErrorResponse{Error: "the report has no run", Code: api.CodeInvalid})
		return
	}
	run, p, ok := a.placed(w, r)
	if !ok {
		return
	}
	from := rep.Run.run()
	saved := len(run.Events)
	if len(from.Events) > saved {
		run.Events = append(run.Events, from.Events[saved:]...)
	}
	run.Runtime, run.Status, run.ExitCode, run.Error = from.Runtime, from.Status, from.ExitCode, from.Error
	run.StartedAt, run.EndedAt, run.Devices = from.StartedAt, from.EndedAt, slices.Clone(from.Devices)
	// As of the placement checked: a report of an earlier attempt, read
	// before the run was placed again, is refused.
	err := a.store.SaveRunAs(run, saved, store.Guard{Node: p.Node, Attempt: p.Attempt, Version: p.Version}, nil)
	if errors.Is(err, store.ErrConflict) {
		writeJSON(w, http.StatusConflict, api.ErrorResponse{Error: err.Error(), Code: api.CodeConflict})
		return
	}
	if err != nil {
		answerError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
