package cli

import (
	"strconv"

	"github.com/hush-sh/hush/sdk/api"
	"github.com/urfave/cli/v2"
)

func serverCommand(ui *UI) *cli.Command {
	return &cli.Command{
		Name:  "server",
		Usage: "look at the servers of a cluster (needs a management token)",
		Subcommands: []*cli.Command{{
			Name:  "members",
			Usage: "list the cluster's servers: address, Raft state, last index, whether they answer",
			Flags: []cli.Flag{outputFlag(), clusterFlag("the default cluster")},
			Action: func(c *cli.Context) error {
				peers, output, err := raftPeers(c, ui)
				if err != nil {
					return err
				}
				return listing[*api.RaftPeer]{
					empty:  "No servers.",
					header: []string{"NAME", "ADDRESS", "STATE", "LAST INDEX", "APPLIED", "HEALTHY"},
					name:   func(p *api.RaftPeer) string { return p.ID },
					row: func(p *api.RaftPeer) []string {
						state := p.State
						if !p.Healthy {
							state = "-"
						}
						return []string{p.ID, p.APIAddress, state, strconv.FormatUint(p.LastIndex, 10),
							strconv.FormatUint(p.AppliedIndex, 10), strconv.FormatBool(p.Healthy)}
					},
				}.print(ui, output, peers)
			},
		}},
	}
}

func raftCommand(ui *UI) *cli.Command {
	return &cli.Command{
		Name:  "raft",
		Usage: "look after the cluster's Raft configuration (needs a management token)",
		Subcommands: []*cli.Command{{
			Name:  "list-peers",
			Usage: "list the servers of the Raft configuration",
			Flags: []cli.Flag{outputFlag(), clusterFlag("the default cluster")},
			Action: func(c *cli.Context) error {
				peers, output, err := raftPeers(c, ui)
				if err != nil {
					return err
				}
				return listing[*api.RaftPeer]{
					empty:  "No servers.",
					header: []string{"NODE", "ID", "RAFT ADDRESS", "STATE", "VOTER"},
					name:   func(p *api.RaftPeer) string { return p.ID },
					row: func(p *api.RaftPeer) []string {
						state := "follower"
						if p.Leader {
							state = "leader"
						}
						return []string{p.ID, p.ID, p.RaftAddress, state, strconv.FormatBool(p.Voter)}
					},
				}.print(ui, output, peers)
			},
		}, {
			Name:      "remove-peer",
			Usage:     "remove a server that is gone for good from the Raft configuration",
			ArgsUsage: "ID",
			Flags:     []cli.Flag{clusterFlag("the default cluster")},
			Action: func(c *cli.Context) error {
				if err := exactArgs(c, 1, "one server ID (see `hush operator raft list-peers`)"); err != nil {
					return err
				}
				client, err := targetClient(c, ui)
				if err != nil {
					return err
				}
				if err := client.RemoveRaftPeer(c.Context, c.Args().First()); err != nil {
					return err
				}
				ui.Success("Removed server %s from the cluster", c.Args().First())
				return nil
			},
		}},
	}
}

func raftPeers(c *cli.Context, ui *UI) ([]*api.RaftPeer, string, error) {
	client, output, err := listClient(c, ui)
	if err != nil {
		return nil, "", err
	}
	peers, err := client.RaftPeers(c.Context)
	return peers, output, err
}
