package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/vitals-dev/vitals/shared/metric"
)

// instanceCmd runs `vitalsctl instance bind|unbind|list`.
func instanceCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("instance needs a subcommand: bind, unbind or list")
	}
	sub := args[0]
	fs := newFlags("instance " + sub)
	asJSON := fs.Bool("json", false, "")
	rf := addRedisFlags(fs)
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	switch sub {
	case "bind":
		if len(pos) < 2 || len(pos) > 3 {
			return usagef("instance bind: want <serverId> <instanceId> [name], got %d arguments", len(pos))
		}
		if err := metric.CheckServerID(pos[0]); err != nil {
			return usagef("instance bind: %v", err)
		}
		if _, err := metric.ParseUUID(pos[1]); err != nil {
			return usagef("instance bind: instance id %q: must be a UUID", pos[1])
		}
	case "unbind":
		if len(pos) != 1 {
			return usagef("instance unbind: want exactly one instance id, got %d arguments", len(pos))
		}
		if _, err := metric.ParseUUID(pos[0]); err != nil {
			return usagef("instance unbind: instance id %q: must be a UUID", pos[0])
		}
	case "list", "ls":
		if len(pos) > 0 {
			return usagef("instance list: unexpected argument %q", pos[0])
		}
	default:
		return usagef("unknown instance subcommand %q (want bind, unbind or list)", sub)
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	s, closeFn, err := rf.open(ctx, newSettings(fs, getenv), stderr)
	if err != nil {
		return err
	}
	defer closeFn()

	switch sub {
	case "bind":
		name := ""
		if len(pos) == 3 {
			name = pos[2]
		}
		prev, err := s.Bind(ctx, pos[0], pos[1], name)
		if err != nil {
			return fmt.Errorf("instance bind: %w", err)
		}
		if prev != "" {
			fmt.Fprintf(stdout, "Moved instance %s from %s to %s.\n", pos[1], prev, pos[0])
			fmt.Fprintf(stderr, "%s's readings of it are refused from its next batch on; its history so far stays with the id.\n", prev)
		} else {
			fmt.Fprintf(stdout, "Bound instance %s to %s.\n", pos[1], pos[0])
		}
		if name != "" && metric.InstanceUUID(pos[0], name) == metricLower(pos[1]) {
			fmt.Fprintf(stderr, "Note: this id is derived from %s and %q, which needs no binding.\n", pos[0], name)
		}
		return nil
	case "unbind":
		if err := s.Unbind(ctx, pos[0]); err != nil {
			if errors.Is(err, metric.ErrNotFound) {
				return fmt.Errorf("instance %s is not bound; nothing to unbind ('vitalsctl instance list' shows the bindings)", pos[0])
			}
			return fmt.Errorf("instance unbind: %w", err)
		}
		fmt.Fprintf(stdout, "Unbound instance %s: its readings are refused from the next batch on.\n", pos[0])
		fmt.Fprintln(stderr, "Its history stays readable until retention expires it.")
		return nil
	}
	bs, err := s.Bindings(ctx)
	if err != nil {
		return fmt.Errorf("instance list: %w", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(bs)
	}
	if len(bs) == 0 {
		fmt.Fprintln(stderr, "No instance bindings. Ids derived from server id and name need none; bind a configured one with 'vitalsctl instance bind <serverId> <instanceId> [name]'.")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE ID\tSERVER ID\tNAME")
	for _, b := range bs {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", b.InstanceID, b.ServerID, b.Name)
	}
	return tw.Flush()
}

// metricLower is the canonical form of a UUID the caller already checked.
func metricLower(id string) string {
	c, _ := metric.ParseUUID(id)
	return c
}
