package server

import (
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

func tombstoneOut(t *store.Tombstone) *api.Tombstone {
	return &api.Tombstone{ID: t.ID, Name: t.Name, DeletedAt: t.DeletedAt}
}
