package runs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"

	"github.com/hush-sh/hush/agent/audit"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
	"github.com/hush-sh/hush/sdk/provider"
)

// Resolver fetches the values of provider references.
type Resolver interface {
	Resolve(ctx context.Context, provider string, refs []string) ([]provider.Result, error)
	// CheckReference reports whether user may name ref of provider.
	CheckReference(user, provider, ref string) error
}

// maxSecretSizeText is api.MaxSecretSize as people write it.
const maxSecretSizeText = "1 MiB"

// resolveReferences fills in the values of secrets that hold a provider
// reference: one Resolve call per provider, concurrently. The values live
// only in memory and on the run's tmpfs; nothing is cached on disk.
//
// Unless the run was submitted with a management token, each reference is
// checked against the plugins' allow rules for the run's owner, as at
// create: rules may have changed since, and a secret copied from another
// cluster was checked there, if at all.
func (m *Manager) resolveReferences(ctx context.Context, run *store.Run, secrets []*store.Secret) error {
	byProvider := map[string][]*store.Secret{}
	for _, s := range secrets {
		if s.From == "" {
			continue
		}
		name, _ := api.SplitReference(s.From)
		byProvider[name] = append(byProvider[name], s)
	}
	if len(byProvider) == 0 {
		return nil
	}
	if m.cfg.Resolver == nil {
		return errors.New("secrets come from provider references, and this agent has no provider plugins")
	}
	if !run.Management {
		var errs []error
		for name, group := range byProvider {
			for _, s := range group {
				_, ref := api.SplitReference(s.From)
				if err := m.cfg.Resolver.CheckReference(run.Owner, name, ref); err != nil {
					errs = append(errs, fmt.Errorf("resolve secret %s from %s: %w", s.Name, s.From, err))
				}
			}
		}
		if len(errs) > 0 {
			sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
			return errors.Join(errs...)
		}
	}
	if m.cfg.Audit != nil {
		for name, group := range byProvider {
			refs := make([]string, len(group))
			for i, s := range group {
				_, refs[i] = api.SplitReference(s.From)
			}
			if err := m.cfg.Audit(&audit.Entry{Type: "resolve", Run: run.ID, User: run.Owner, Plugin: name, Refs: refs}); err != nil {
				return fmt.Errorf("references are not resolved while the agent's audit log cannot be written: %w", err)
			}
		}
	}
	type outcome struct{ errs []error }
	results := make(chan outcome, len(byProvider))
	for name, group := range byProvider {
		go func() {
			results <- outcome{m.resolveGroup(ctx, name, group)}
		}()
	}
	var errs []error
	for range byProvider {
		errs = append(errs, (<-results).errs...)
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}

func (m *Manager) resolveGroup(ctx context.Context, name string, group []*store.Secret) []error {
	refs := make([]string, len(group))
	for i, s := range group {
		_, refs[i] = api.SplitReference(s.From)
	}
	// The plugin host bounds the call by the plugin's timeout.
	res, err := m.cfg.Resolver.Resolve(ctx, name, refs)
	if err != nil {
		var errs []error
		for _, s := range group {
			errs = append(errs, fmt.Errorf("resolve secret %s from %s: %w", s.Name, s.From, err))
		}
		return errs
	}
	var errs []error
	for i, s := range group {
		r := res[i]
		switch {
		case errors.Is(r.Err, provider.ErrNotFound):
			errs = append(errs, fmt.Errorf("resolve secret %s from %s: not found in provider %s: %v", s.Name, s.From, name, r.Err))
		case errors.Is(r.Err, provider.ErrPermissionDenied):
			errs = append(errs, fmt.Errorf("resolve secret %s from %s: provider %s denied access: %v", s.Name, s.From, name, r.Err))
		case r.Err != nil:
			errs = append(errs, fmt.Errorf("resolve secret %s from %s: %v", s.Name, s.From, r.Err))
		case len(r.Value) > api.MaxSecretSize:
			// A stored secret cannot be this big, and one from a
			// provider gets no more room: the value goes onto the run's
			// tmpfs, into its environment and through the log masker.
			errs = append(errs, fmt.Errorf("resolve secret %s from %s: its provider %s returned a value of %d bytes, over the %s limit of a secret; make the value smaller in %s, or store it elsewhere and pass the run its location",
				s.Name, s.From, name, len(r.Value), maxSecretSizeText, name))
		default:
			spec, _ := api.LookupType(s.Type)
			ref, _ := spec.RefData()
			if ref.Env {
				if err := api.ValidateEnvValue(r.Value); err != nil {
					errs = append(errs, fmt.Errorf("resolve secret %s from %s: provider %s returned a value that %w", s.Name, s.From, name, err))
					continue
				}
			}
			// The secret's optional values, such as a git-ssh key's
			// known_hosts, are stored with the reference.
			data := maps.Clone(s.Data)
			if data == nil {
				data = map[string][]byte{}
			}
			data[ref.Name] = r.Value
			s.Data = data
		}
	}
	return errs
}
