package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/hush-sh/hush/agent/config"
	"github.com/hush-sh/hush/agent/plugins"
	"github.com/urfave/cli/v2"
	"github.com/zclconf/go-cty/cty"
)

func pluginCommand(ui *UI) *cli.Command {
	return &cli.Command{
		Name:  "plugin",
		Usage: "work with provider plugin executables",
		Subcommands: []*cli.Command{{
			Name:      "checksum",
			Usage:     "print a plugin block, with the executable's sha256, to paste into the agent's config",
			ArgsUsage: "PATH",
			Description: "The agent checks a plugin's sha256 before every launch, and outside -dev refuses a plugin\n" +
				"without one. The block is named from the file: hush-provider-NAME gives plugin \"NAME\".",
			Action: func(c *cli.Context) error {
				if err := exactArgs(c, 1, "one PATH argument, the plugin's executable"); err != nil {
					return err
				}
				return pluginChecksum(pluginChecksumOptions{Path: c.Args().First(), Stdout: ui.out, Warn: ui.Warn})
			},
		}},
	}
}

// pluginChecksumOptions are the inputs of `hush plugin checksum`.
type pluginChecksumOptions struct {
	// Path is the plugin's executable.
	Path string
	// Stdout receives the plugin block.
	Stdout io.Writer
	// Warn reports what would keep the agent from using the block as it is.
	Warn func(format string, args ...any)
}

// pluginChecksum prints a plugin block for the executable at opts.Path:
// its absolute path and its sha256.
func pluginChecksum(opts pluginChecksumOptions) error {
	abs, err := filepath.Abs(opts.Path)
	if err != nil {
		return fmt.Errorf("resolve path %s: %w", opts.Path, err)
	}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("plugin executable %s does not exist: give the path of a hush-provider-NAME file", abs)
	case err != nil:
		return fmt.Errorf("stat plugin executable: %w", err)
	case fi.IsDir():
		return fmt.Errorf("%s is a directory: give the path of the plugin's executable in it, such as %s", abs, filepath.Join(abs, plugins.ExecutablePrefix+"NAME"))
	}
	sum, err := plugins.FileSHA256(abs)
	if err != nil {
		return fmt.Errorf("read plugin executable: %w", err)
	}
	name := strings.TrimPrefix(filepath.Base(abs), plugins.ExecutablePrefix)
	if !config.IsPluginName(name) {
		opts.Warn("%q is not a plugin name the agent accepts (lowercase letters, digits and '-'): rename the block; references use that name", name)
	}
	if fi.Mode().Perm()&0o111 == 0 {
		opts.Warn("%s is not executable: the agent cannot launch it until you run `chmod +x %s`", abs, abs)
	}

	f := hclwrite.NewEmptyFile()
	body := f.Body().AppendNewBlock("plugin", []string{name}).Body()
	body.SetAttributeValue("path", cty.StringVal(abs))
	body.SetAttributeValue("sha256", cty.StringVal(sum))
	_, err = opts.Stdout.Write(hclwrite.Format(f.Bytes()))
	return err
}
