package cli

import (
	"cmp"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"strings"

	"github.com/hush-sh/hush/agent/pki"
	"github.com/hush-sh/hush/sdk/userfile"
	"github.com/urfave/cli/v2"
)

// maxPEMFileSize bounds a CA certificate or key read by `hush tls`.
const maxPEMFileSize = 1 << 20

// Default file names, in the current directory, as `consul tls` writes.
const (
	defaultCAName     = "hush-ca"
	defaultServerName = "hush-server"
	defaultClientName = "hush-client"
	defaultNodeName   = "hush-node"
)

func tlsCommand(ui *UI) *cli.Command {
	return &cli.Command{
		Name:  "tls",
		Usage: "make a CA and the certificates agents and clients use for TLS",
		Description: "hush tls ca create makes a CA; hush tls cert create -server makes an agent's certificate,\n" +
			"and -client one for a client of an agent with verify_incoming (mutual TLS). Keys are ECDSA\n" +
			"P-256, written mode 0600; no file is ever overwritten.",
		Subcommands: []*cli.Command{{
			Name:  "ca",
			Usage: "manage the CA",
			Subcommands: []*cli.Command{{
				Name:  "create",
				Usage: "make a CA certificate and key (NAME.pem, NAME-key.pem)",
				Flags: []cli.Flag{
					&cli.IntFlag{Name: "days", Value: pki.DefaultCADays, Usage: "how many `DAYS` the CA is valid"},
					&cli.StringFlag{Name: "common-name", Value: "hush CA", Usage: "the CA's `NAME` in its certificate"},
					&cli.StringFlag{Name: "out", Value: defaultCAName, Usage: "write `NAME`.pem and NAME-key.pem"},
				},
				Action: func(c *cli.Context) error {
					if err := exactArgs(c, 0, "no arguments"); err != nil {
						return err
					}
					if c.Int("days") <= 0 {
						return usageErrorf(c, "-days must be a positive number of days; got %d", c.Int("days"))
					}
					return createCA(&createCAOptions{Days: c.Int("days"), CommonName: c.String("common-name"), Out: c.String("out"), UI: ui})
				},
			}},
		}, {
			Name:  "cert",
			Usage: "manage agent and client certificates",
			Subcommands: []*cli.Command{{
				Name:  "create",
				Usage: "make a certificate signed by the CA (-server for an agent, -client for a client)",
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "server", Usage: "a certificate an agent serves (always for localhost and 127.0.0.1)"},
					&cli.BoolFlag{Name: "client", Usage: "a certificate a client presents to an agent with verify_incoming"},
					&cli.BoolFlag{Name: "node", Usage: "a certificate for a client agent: it serves and reaches the servers, and is never taken for a server's"},
					&cli.StringSliceFlag{Name: "dns", Usage: "a DNS `NAME` the agent is reached by (repeatable)"},
					&cli.StringSliceFlag{Name: "ip", Usage: "an `IP` address the agent is reached at (repeatable)"},
					&cli.IntFlag{Name: "days", Value: pki.DefaultCertDays, Usage: "how many `DAYS` the certificate is valid"},
					&cli.StringFlag{Name: "common-name", Usage: "the holder's `NAME` (default server.hush, node.hush or client.hush)"},
					&cli.StringFlag{Name: "ca", Value: defaultCAName + ".pem", Usage: "the CA certificate, PEM `FILE`"},
					&cli.StringFlag{Name: "ca-key", Value: defaultCAName + "-key.pem", Usage: "the CA key, PEM `FILE`"},
					&cli.StringFlag{Name: "out", Usage: "write `NAME`.pem and NAME-key.pem (default " + defaultServerName + ", " + defaultNodeName + " or " + defaultClientName + ")"},
				},
				Action: func(c *cli.Context) error {
					if err := exactArgs(c, 0, "no arguments"); err != nil {
						return err
					}
					opts := &createCertOptions{Server: c.Bool("server"), Client: c.Bool("client"), Node: c.Bool("node"), DNSNames: c.StringSlice("dns"),
						Days: c.Int("days"), CommonName: c.String("common-name"), CA: c.String("ca"), CAKey: c.String("ca-key"), Out: c.String("out"), UI: ui}
					if kinds := btoi(opts.Server) + btoi(opts.Client) + btoi(opts.Node); kinds != 1 {
						return usageErrorf(c, "give one of -server (a certificate for a server agent), -node (one for a client agent) or -client (one for a client of an agent with verify_incoming)")
					}
					if opts.Client && (c.IsSet("dns") || c.IsSet("ip")) {
						return usageErrorf(c, "-dns and -ip name a server: a -client certificate carries none")
					}
					if opts.Days <= 0 {
						return usageErrorf(c, "-days must be a positive number of days; got %d", opts.Days)
					}
					for _, s := range c.StringSlice("ip") {
						ip := net.ParseIP(s)
						if ip == nil {
							return usageErrorf(c, "-ip %q is not an IP address", s)
						}
						opts.IPs = append(opts.IPs, ip)
					}
					for _, d := range opts.DNSNames {
						if d == "" || strings.ContainsAny(d, " /:") {
							return usageErrorf(c, "-dns %q is not a DNS name", d)
						}
					}
					return createCert(opts)
				},
			}},
		}},
	}
}

type createCAOptions struct {
	Days       int
	CommonName string
	Out        string
	UI         *UI
}

// createCA writes a new CA's certificate and key.
func createCA(opts *createCAOptions) error {
	ca, err := pki.NewCA(pki.CAOptions{CommonName: opts.CommonName, Days: opts.Days})
	if err != nil {
		return fmt.Errorf("make CA: %w", err)
	}
	cert, key := opts.Out+".pem", opts.Out+"-key.pem"
	if err := pki.WriteFiles(ca, cert, key); err != nil {
		return err
	}
	opts.UI.Success("Created CA certificate %s and key %s (valid %d days)", cert, key, opts.Days)
	opts.UI.Info("Keep %s secret, ideally offline: whoever holds it can make certificates your agents trust", key)
	opts.UI.Info("Next: `hush tls cert create -server -dns NAME -ip IP` for each agent")
	return nil
}

type createCertOptions struct {
	Server, Client, Node bool
	DNSNames             []string
	IPs                  []net.IP
	Days                 int
	CommonName           string
	CA, CAKey            string
	Out                  string
	UI                   *UI
}

// createCert writes a new certificate signed by the CA, and its key.
func createCert(opts *createCertOptions) error {
	caCert, err := userfile.ReadFile(opts.CA, maxPEMFileSize)
	if err != nil {
		return fmt.Errorf("read the CA certificate: %w (make one with `hush tls ca create`, or name it with -ca)", err)
	}
	caKey, err := userfile.ReadFile(opts.CAKey, maxPEMFileSize)
	if err != nil {
		return fmt.Errorf("read the CA key: %w (name it with -ca-key)", err)
	}
	leaf, err := pki.NewCert(&pki.PEM{Cert: caCert, Key: caKey}, pki.CertOptions{Server: opts.Server, Client: opts.Client, Node: opts.Node,
		CommonName: opts.CommonName, DNSNames: opts.DNSNames, IPs: opts.IPs, Days: opts.Days})
	if err != nil {
		return fmt.Errorf("make certificate with CA %s: %w", opts.CA, err)
	}
	kind, def := "client", defaultClientName
	switch {
	case opts.Node:
		kind, def = "node", defaultNodeName
	case opts.Server:
		kind, def = "server", defaultServerName
	}
	out := cmp.Or(opts.Out, def)
	cert, key := out+".pem", out+"-key.pem"
	if err := pki.WriteFiles(leaf, cert, key); err != nil {
		return err
	}
	opts.UI.Success("Created %s certificate %s and key %s, signed by %s (valid %d days)", kind, cert, key, opts.CA, opts.Days)
	if opts.Server || opts.Node {
		// What the certificate carries, defaults included.
		block, _ := pem.Decode(leaf.Cert)
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return fmt.Errorf("read back %s: %w", cert, err)
		}
		names := c.DNSNames
		for _, ip := range c.IPAddresses {
			names = append(names, ip.String())
		}
		opts.UI.Info("Valid for %s", strings.Join(names, ", "))
		opts.UI.Info("Serve it with tls { cert_file = %q, key_file = %q } in the agent config", absPath(cert), absPath(key))
	} else {
		opts.UI.Info("Use it with `hush cluster add NAME --client-cert %s --client-key %s`, or HUSH_CLIENT_CERT and HUSH_CLIENT_KEY", cert, key)
	}
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
