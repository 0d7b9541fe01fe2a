package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

// listSecrets answers the metadata of the caller's secrets as
// api.ListSecretsResponse. It streams: each secret is read from the store,
// encoded and let go in turn, so that a listing of 20,000 secrets holds a
// few of them in memory, not all, and never opens a value.
func (s *Server) listSecrets(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	typ := api.SecretType(r.URL.Query().Get("type"))
	if typ != "" {
		if _, ok := api.LookupType(typ); !ok {
			writeError(w, api.CodeInvalid, fmt.Sprintf("unknown secret type %q", typ))
			return
		}
	}
	// A run's token gets no digests: a workload could test guesses at the
	// values of secrets its run was not given.
	withDigest := tok.RunID == ""
	out := &sentWriter{w: w}
	bw := bufio.NewWriterSize(out, 32<<10)
	enc := json.NewEncoder(bw)
	bw.WriteString(`{"secrets":[`)
	first := true
	var unreadable []*api.UnreadableSecret
	err := s.store.WalkSecrets(tok.User, typ, func(m *store.SecretMeta, bad *store.RecordError) error {
		var name string
		if bad != nil {
			name = bad.Name
		} else {
			name = m.Name
		}
		if !tok.InScope(name) {
			return nil // a run's token sees only the secrets its run was given
		}
		if bad != nil {
			s.logger.Warn("secret cannot be read; it is left out of the listing", "user", bad.Owner, "name", bad.Name, "id", bad.ID, "error", bad.Err)
			unreadable = append(unreadable, &api.UnreadableSecret{Name: bad.Name, ID: bad.ID, Type: bad.Type, Error: bad.Err.Error()})
			return nil
		}
		if !first {
			bw.WriteByte(',')
		}
		first = false
		return enc.Encode(secretOut(m, withDigest))
	})
	if err != nil {
		if !out.sent {
			s.internalError(w, "list secrets", err)
			return
		}
		// The status is sent: cut the answer short rather than let it
		// look like a complete list.
		s.logger.Error("request failed", "op", "list secrets", "error", err)
		panic(http.ErrAbortHandler)
	}
	bw.WriteByte(']')
	if len(unreadable) > 0 {
		bw.WriteString(`,"unreadable":`)
		enc.Encode(unreadable)
	}
	bw.WriteString("}\n")
	bw.Flush()
}

// sentWriter sends the JSON content type with the first bytes, and
// remembers that it did, after which the status cannot change.
type sentWriter struct {
	w    http.ResponseWriter
	sent bool
}

func (s *sentWriter) Write(p []byte) (int, error) {
	if !s.sent {
		s.w.Header().Set("Content-Type", "application/json")
		s.w.WriteHeader(http.StatusOK)
		s.sent = true
	}
	return s.w.Write(p)
}
