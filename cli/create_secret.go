package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hush-sh/hush/sdk/api"
	"github.com/hush-sh/hush/sdk/fleet"
	"github.com/hush-sh/hush/sdk/userfile"
	"github.com/oklog/ulid/v2"
	"github.com/urfave/cli/v2"
)

func createCommand(ui *UI) *cli.Command {
	secret := &cli.Command{
		Name:      "secret",
		Usage:     "create a secret on every cluster",
		ArgsUsage: "TYPE ...",
		Description: "Secrets are immutable: to change one, delete it and create it again.\n" +
			"Types: " + strings.Join(api.TypeNames(), ", ") + ".",
	}
	for _, spec := range api.Types() {
		secret.Subcommands = append(secret.Subcommands, secretCommand(ui, spec))
	}
	secret.Action = func(c *cli.Context) error {
		if c.Args().Present() {
			typed := c.Args().First()
			return usageErrorf(c, "unknown secret type %q%s: use one of %s", typed, didYouMean(c.Command.Subcommands, typed), strings.Join(api.TypeNames(), ", "))
		}
		return usageErrorf(c, "give a secret type: one of %s", strings.Join(api.TypeNames(), ", "))
	}
	return &cli.Command{
		Name:        "create",
		Usage:       "create resources",
		Subcommands: []*cli.Command{secret},
	}
}

// secretCommand builds `hush create secret TYPE` from the type's spec.
func secretCommand(ui *UI, spec *api.TypeSpec) *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "name", Usage: "secret `NAME` instead of the derived one"},
	}
	if _, ok := spec.RefData(); ok {
		flags = append(flags,
			&cli.StringFlag{Name: "from", Usage: "store a reference to a provider plugin (`PROVIDER:REF`) instead of a value"},
			&cli.BoolFlag{Name: "no-check", Usage: "with --from, store the reference even where the agent has no such provider plugin (yet)"})
	}
	for _, in := range spec.Create.Inputs {
		flags = append(flags, &cli.StringFlag{Name: in.Flag, Usage: in.Usage})
	}
	return &cli.Command{
		Name:      string(spec.Type),
		Usage:     "create " + spec.Create.Usage,
		ArgsUsage: spec.Create.ArgsUsage,
		Flags:     flags,
		Action: func(c *cli.Context) error {
			req, nameFrom, err := secretRequest(c, ui, spec)
			if err != nil {
				return err
			}
			f, err := ui.loadFleet()
			if err != nil {
				return err
			}
			return createSecret(c.Context, f, &createSecretOptions{Request: req, NameFrom: nameFrom, UI: ui})
		},
	}
}

// secretRequest builds the create request from the command line, reading
// files, stdin and prompts as the type's inputs say. Without --name, it
// also says where the name it chose comes from (see derivedName). What the
// command line gets wrong, the request's own checks included, is a usage
// error: the agent is not asked.
func secretRequest(c *cli.Context, ui *UI, spec *api.TypeSpec) (*api.CreateSecretRequest, string, error) {
	req := &api.CreateSecretRequest{
		Type:    spec.Type,
		Name:    c.String("name"),
		From:    c.String("from"),
		NoCheck: c.Bool("no-check"),
		Fields:  map[string]string{},
		Data:    map[string][]byte{},
	}
	if req.NoCheck && req.From == "" {
		return nil, "", usageErrorf(c, "--no-check is for a reference given with --from")
	}
	derived, err := positional(c, ui, spec.Create, req)
	if err != nil {
		return nil, "", err
	}
	for _, in := range spec.Create.Inputs {
		v, data := c.String(in.Flag), spec.IsData(in.Target)
		switch {
		case !c.IsSet(in.Flag) && data && req.From != "":
		case !c.IsSet(in.Flag) && data && !in.File && ui.interactive():
			b, err := ui.ReadSecret(spec.Label + " " + in.Flag)
			if err != nil {
				return nil, "", fmt.Errorf("read --%s: %w", in.Flag, err)
			}
			req.Data[in.Target] = b
		case !c.IsSet(in.Flag) && in.Required:
			return nil, "", usageErrorf(c, "missing --%s: %s secrets need it", in.Flag, spec.Type)
		case !c.IsSet(in.Flag):
		case !data:
			req.Fields[in.Target] = v
		case in.File:
			b, err := readValueFile(ui, v)
			if err != nil {
				return nil, "", fmt.Errorf("read --%s: %w", in.Flag, err)
			}
			req.Data[in.Target] = b
		case v == "-":
			b, err := readStdin(ui)
			if err != nil {
				return nil, "", fmt.Errorf("--%s: %w", in.Flag, err)
			}
			req.Data[in.Target] = trimNewline(b)
		default:
			req.Data[in.Target] = []byte(v)
		}
	}
	nameFrom := ""
	switch {
	case req.Name != "":
	case derived.name != "":
		req.Name, nameFrom = derived.name, derived.from
	default:
		req.Name, nameFrom = string(spec.Type), "the secret type"
	}
	if err := req.Validate(); err != nil {
		return nil, "", &usageError{msg: err.Error(), help: c.Command.HelpName}
	}
	return req, nameFrom, nil
}

// derivedName is the name that a secret's positional argument suggests,
// for when --name is not given.
type derivedName struct {
	name string
	// from says what the name comes from, as `the key "SECRET_STUFF"`,
	// for messages; "" when there is no argument to name the secret after.
	from string
}

// check refuses, unless --name is given, an argument that gives no name:
// one with no letter or digit, such as the key "__". Falling back to the
// type's name, as a type without an argument does, would be a surprise.
func (d derivedName) check(c *cli.Context, req *api.CreateSecretRequest) error {
	if req.Name == "" && d.name == "" {
		return usageErrorf(c, "%s gives no secret name (a name needs a letter or a digit): give one with --name NAME", d.from)
	}
	return nil
}

// positional reads the command's positional argument into req and returns
// the secret name it suggests.
func positional(c *cli.Context, ui *UI, create api.CreateSpec, req *api.CreateSecretRequest) (derivedName, error) {
	switch create.Arg {
	case api.ArgNone:
		if c.NArg() > 0 {
			return derivedName{}, usageErrorf(c, "`%s` takes no arguments; got %q (its values are flags)", c.Command.HelpName, c.Args().First())
		}
		return derivedName{}, nil
	case api.ArgKeyValue:
		if err := exactArgs(c, 1, "one KEY=VALUE argument"); err != nil {
			return derivedName{}, err
		}
		key, value, hasValue := strings.Cut(c.Args().First(), "=")
		if err := api.ValidateEnvKey(key); err != nil {
			return derivedName{}, usageErrorf(c, "%s", err)
		}
		derived := derivedName{api.NameFromEnvKey(key), fmt.Sprintf("the key %q", key)}
		if err := derived.check(c, req); err != nil {
			return derivedName{}, err
		}
		req.Fields[create.ArgField] = key
		switch {
		case req.From != "":
			if hasValue {
				return derivedName{}, usageErrorf(c, "give either a value or --from, not both: write KEY --from PROVIDER:REF")
			}
		case !hasValue && ui.interactive():
			b, err := ui.ReadSecret("value of " + key)
			if err != nil {
				return derivedName{}, fmt.Errorf("read value: %w", err)
			}
			req.Data[create.ArgData] = b
		case !hasValue:
			return derivedName{}, usageErrorf(c, "%q has no value: write KEY=VALUE, or KEY=- to read the value from stdin", key)
		case value == "-":
			b, err := readStdin(ui)
			if err != nil {
				return derivedName{}, fmt.Errorf("value of %s: %w", key, err)
			}
			req.Data[create.ArgData] = trimNewline(b)
		default:
			req.Data[create.ArgData] = []byte(value)
		}
		return derived, nil
	default: // api.ArgFile
		if req.From != "" {
			if c.NArg() > 0 {
				return derivedName{}, usageErrorf(c, "give either a file or --from, not both")
			}
			return derivedName{}, nil
		}
		if err := exactArgs(c, 1, "one FILE argument (or - for stdin)"); err != nil {
			return derivedName{}, err
		}
		path := c.Args().First()
		var derived derivedName
		if path != "-" {
			base := filepath.Base(path)
			derived = derivedName{api.SanitizeName(base), fmt.Sprintf("the file name %q", base)}
			if err := derived.check(c, req); err != nil {
				return derivedName{}, err
			}
		}
		b, err := readValueFile(ui, path)
		if err != nil {
			return derivedName{}, err
		}
		req.Data[create.ArgData] = b
		return derived, nil
	}
}

// readValueFile reads a value from a file, or from stdin for "-", refusing
// to read more than a secret may hold. It refuses what is not a regular
// file without waiting on it: opening a named pipe would wait for a writer.
func readValueFile(ui *UI, path string) ([]byte, error) {
	if path == "-" {
		return readStdin(ui)
	}
	b, err := userfile.ReadFile(path, api.MaxSecretSize)
	var tooLarge *userfile.TooLargeError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("file %s does not exist: check the path", path)
	case errors.As(err, &tooLarge):
		return nil, fmt.Errorf("file %s is %s, over the limit of %s for a secret", path, userfile.FormatSize(tooLarge.Size), userfile.FormatSize(api.MaxSecretSize))
	}
	return b, err
}

// readStdin reads a value given as "-" from stdin, refusing more than a
// secret may hold, and refusing an empty one: empty stdin is what a
// forgotten pipe or an unset variable gives, never a value someone meant.
func readStdin(ui *UI) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(ui.reader(), api.MaxSecretSize+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("read stdin: %w", err)
	case len(b) > api.MaxSecretSize:
		return nil, fmt.Errorf("the value on stdin is over the limit of %s for a secret", userfile.FormatSize(api.MaxSecretSize))
	case len(trimNewline(b)) == 0:
		return nil, errors.New("read an empty value from stdin: nothing was piped in; pipe the value in, such as `echo \"$VALUE\" | hush ...`")
	}
	return b, nil
}

// trimNewline drops the one newline that `echo value |` adds.
func trimNewline(b []byte) []byte {
	s := strings.TrimSuffix(string(b), "\n")
	return []byte(strings.TrimSuffix(s, "\r"))
}

// createSecretOptions are the inputs of createSecret.
type createSecretOptions struct {
	Request *api.CreateSecretRequest
	// NameFrom, when the name was not given with --name, says what it
	// comes from (`the key "SECRET_STUFF"`), so that a refusal can say
	// why two keys met at one name and how to give another.
	NameFrom string
	UI       *UI
}

// createSecret creates a secret on every cluster at once and reports how
// each took it. The CLI chooses the id and creation time, so that every
// cluster holds the same secret. A name that a cluster already holds is
// refused before anything is created: creating it elsewhere under a new id
// would split the secret in two.
func createSecret(ctx context.Context, f *fleet.Fleet, opts *createSecretOptions) error {
	req := *opts.Request
	req.ID = ulid.Make().String()
	req.CreatedAt = time.Now().UTC().Truncate(time.Second)
	spec, _ := api.LookupType(req.Type)
	targets, failed := f.Clusters, []fleet.Result[*api.Secret](nil)
	if len(f.Clusters) > 1 {
		var err error
		if targets, failed, err = checkNameFree(ctx, f, req.Name, opts.NameFrom); err != nil {
			return err
		}
	}
	results := fleet.FanOut(ctx, f, targets, func(ctx context.Context, c *fleet.Cluster) (*api.Secret, error) {
		return c.Client.CreateSecret(ctx, &req)
	})
	var apiErr *api.Error
	if len(results) == 1 && errors.As(results[0].Err, &apiErr) && apiErr.Code == api.CodeSecretExists {
		return existsError(req.Name, opts.NameFrom, nil)
	}
	created := slices.ContainsFunc(results, func(r fleet.Result[*api.Secret]) bool { return r.Err == nil })
	if created {
		opts.UI.Success("Created %s secret: %s", spec.Label, req.Name)
	}
	err := reportFanOut(opts.UI, append(results, failed...), syncRepairs)
	if created {
		// Last, where it is not lost between the lines of the result.
		absentHints(opts.UI, spec, &req)
	}
	return err
}

// absentHints tells what the secret does without each optional value that
// req leaves out, and which flag gives it.
func absentHints(ui *UI, spec *api.TypeSpec, req *api.CreateSecretRequest) {
	for _, d := range spec.Data {
		if _, ok := req.Data[d.Name]; ok || !d.Optional || d.Absent == "" {
			continue
		}
		ui.Warn("Secret %s has no %s: %s", req.Name, d.Name, d.Absent)
		if in := spec.FileInput(d.Name); in != nil {
			ui.Hint("To give one, delete the secret and create it again with --%s FILE.", in.Flag)
		}
	}
}

// checkNameFree fails when any cluster that answers holds a secret named
// name. It returns the clusters that answered, to create the secret on, and
// the failures of those that did not: asking them again would only wait
// out their timeout a second time. (If a cluster that is down held the
// name, a later sync reports the conflict.)
func checkNameFree(ctx context.Context, f *fleet.Fleet, name, nameFrom string) ([]*fleet.Cluster, []fleet.Result[*api.Secret], error) {
	held := fleet.FanOut(ctx, f, f.Clusters, func(ctx context.Context, c *fleet.Cluster) (bool, error) {
		_, err := c.Client.GetSecret(ctx, name)
		if errors.Is(err, api.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	})
	var holders []string
	var targets []*fleet.Cluster
	var failed []fleet.Result[*api.Secret]
	for _, r := range held {
		switch {
		case r.Err != nil:
			failed = append(failed, fleet.Result[*api.Secret]{Cluster: r.Cluster, Err: r.Err})
		case r.Value:
			holders = append(holders, r.Cluster.Name)
		default:
			targets = append(targets, r.Cluster)
		}
	}
	switch {
	case len(holders) == len(f.Clusters):
		return nil, nil, existsError(name, nameFrom, nil)
	case len(holders) > 0:
		return nil, nil, existsError(name, nameFrom, holders)
	}
	return targets, failed, nil
}

// existsError says that a secret exists, on the named clusters (nil: on
// all), and how to go on. nameFrom, when set, says what the name was
// derived from: SECRET_STUFF, secret_stuff and Secret_Stuff all make
// secret-stuff, and --name is then the way to keep both.
func existsError(name, nameFrom string, on []string) error {
	origin, rename := "", ""
	if nameFrom != "" {
		origin = " (the name comes from " + nameFrom + ")"
		rename = ", or give this one another name with --name NAME"
	}
	if on == nil {
		//lint:ignore ST1005 a sentence the user reads, as mcli prints it
		return fmt.Errorf("Secret %s already exists%s. Secrets cannot be modified: delete it with `hush delete secret %s` and create it again%s.",
			name, origin, name, rename)
	}
	or := ", or"
	if rename != "" {
		or = ","
	}
	//lint:ignore ST1005 a sentence the user reads, as mcli prints it
	return fmt.Errorf("Secret %s already exists on %s, so nothing was created%s. Copy it to the other clusters with `hush sync secrets`%s delete it with `hush delete secret %s` and create it again%s.",
		name, strings.Join(on, ", "), origin, or, name, rename)
}
