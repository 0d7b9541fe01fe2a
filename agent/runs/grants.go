package runs

import (
	"context"
	"fmt"
	"slices"

	"github.com/hush-sh/hush/agent/store"
)

// Grant is what a run is given when it starts: its secrets, values
// included and provider references resolved, and its token.
type Grant struct {
	Secrets []*store.Secret `json:"secrets"`
	// Warnings are about secrets the run goes on without.
	Warnings []string `json:"warnings,omitempty"`
	Token    string   `json:"token"`
}

// Grants gives starting runs what they are given, and takes their tokens
// back when they end: the agent's own store, or, on a client agent, the
// servers, which hold the cluster's secrets and tokens.
type Grants interface {
	Grant(ctx context.Context, run *store.Run) (*Grant, error)
	// Refresh fetches again, values included, the secrets names of a run
	// that was granted them, for its refresh.
	Refresh(ctx context.Context, run *store.Run, names []string) (*Refreshed, error)
	Revoke(runID string) error
}

// Refreshed is what a refresh fetched: the secrets that still exist, and
// the names of those that are gone, which the run keeps as it has them.
type Refreshed struct {
	Secrets []*store.Secret `json:"secrets"`
	Gone    []string        `json:"gone,omitempty"`
}

// Grant gives run its secrets and a token from this agent's store.
func (m *Manager) Grant(ctx context.Context, run *store.Run) (*Grant, error) {
	secrets, warnings, err := m.secretsFor(run)
	if err != nil {
		return nil, err
	}
	if err := m.resolveReferences(ctx, run, secrets); err != nil {
		return nil, err
	}
	token, _, err := m.cfg.Store.IssueRunToken(run.Owner, run.ID, secretNames(secrets), run.API.SecretsWrite())
	if err != nil {
		return nil, fmt.Errorf("issue run token: %w", err)
	}
	return &Grant{Secrets: secrets, Warnings: warnings, Token: token}, nil
}

// Refresh fetches secrets names of run again from this agent's store,
// resolving their provider references.
func (m *Manager) Refresh(ctx context.Context, run *store.Run, names []string) (*Refreshed, error) {
	// Only secrets the run refreshes, and could have been granted. No
	// name is not "all of them".
	plan := refreshPlan(run, names)
	names = slices.DeleteFunc(slices.Clone(names), func(n string) bool {
		_, refreshed := plan[n]
		return !refreshed || (run.Secrets != nil && !slices.Contains(run.Secrets, n)) ||
			(run.Parent != "" && !slices.Contains(run.SecretLimit, n))
	})
	out := &Refreshed{}
	if len(names) == 0 {
		return out, nil
	}
	secrets, unreadable, missing, err := m.openExisting(run.Owner, names)
	out.Gone = missing
	if err != nil {
		return nil, fmt.Errorf("read secrets: %w", err)
	}
	for _, u := range unreadable {
		out.Gone = append(out.Gone, u.Name)
	}
	if err := m.resolveReferences(ctx, run, secrets); err != nil {
		return nil, err
	}
	out.Secrets = secrets
	return out, nil
}

// Revoke revokes the tokens of run id in this agent's store.
func (m *Manager) Revoke(runID string) error { return m.cfg.Store.RevokeRunTokens(runID) }

// grants returns where runs get their grants.
func (m *Manager) grants() Grants {
	if m.cfg.Grants != nil {
		return m.cfg.Grants
	}
	return m
}

func secretNames(secrets []*store.Secret) []string {
	names := make([]string, len(secrets))
	for i, s := range secrets {
		names[i] = s.Name
	}
	return names
}
