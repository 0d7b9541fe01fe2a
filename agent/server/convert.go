package server

import (
	"time"

	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

// The agent's own records become wire types here, and only here.

// secretOut describes a secret as the API shows it: its metadata, and the
// digest of its content when withDigest is set.
func secretOut(m *store.SecretMeta, withDigest bool) *api.Secret {
	src := api.SourceStored
	if m.From != "" {
		src = m.From
	}
	out := &api.Secret{
		ID: m.ID, Name: m.Name, Type: m.Type, Owner: m.Owner,
		CreatedAt: m.CreatedAt, Fields: m.Fields, Source: src,
	}
	if withDigest {
		out.Digest = m.Digest
	}
	return out
}

// tombstoneOut describes a tombstone as the API shows it.
func tombstoneOut(t *store.Tombstone) *api.Tombstone {
	return &api.Tombstone{ID: t.ID, Name: t.Name, DeletedAt: t.DeletedAt}
}

// runOut describes a run as the API shows it, its events included.
func runOut(r *store.Run) *api.Run {
	out := &api.Run{
		ID: r.ID, Name: r.Name, Owner: r.Owner, Image: r.Image, Command: r.Command, Env: r.Env, Secrets: r.Secrets,
		GPUs: r.GPUs, CPUs: r.CPUs, MemoryBytes: r.MemoryBytes, MaxDuration: api.Duration(r.MaxDuration),
		API: r.API, MaxLogBytes: r.MaxLogBytes, MaskSecrets: r.MaskSecrets, Parent: r.Parent, Management: r.Management, SecretLimit: r.SecretLimit,
		Devices: r.Devices, Runtime: r.Runtime, Status: r.Status, ExitCode: r.ExitCode, Error: r.Error,
		CreatedAt: r.CreatedAt, StartedAt: r.StartedAt, EndedAt: r.EndedAt,
		Constraints: r.Constraints, Retries: r.Retries, Node: r.NodeName, Attempt: r.Attempt,
		Refresh: r.Refresh, SecretRefresh: r.SecretRefresh,
	}
	if len(r.Events) > 0 {
		out.Events = make([]api.RunEvent, len(r.Events))
		for i, e := range r.Events {
			out.Events[i] = api.RunEvent{Time: e.Time, Type: string(e.Type), Message: e.Message}
		}
	}
	return out
}

// tokenOut describes a token as the API shows it, without its secret.
func tokenOut(t *store.Token, now time.Time) *api.Token {
	out := &api.Token{
		Accessor: t.Accessor, User: t.User, Management: t.Management, Description: t.Description,
		CreatedAt: t.CreatedAt, RunID: t.RunID, Expired: t.Expired(now),
	}
	if !t.ExpiresAt.IsZero() {
		e := t.ExpiresAt
		out.ExpiresAt = &e
	}
	if !t.LastUsedAt.IsZero() {
		u := t.LastUsedAt
		out.LastUsedAt = &u
	}
	return out
}
