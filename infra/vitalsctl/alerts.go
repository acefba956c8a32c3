package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vitals-dev/vitals/shared/alert"
	"github.com/vitals-dev/vitals/shared/alertstore"
	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/shared/notify"
)

// alertCmd runs `vitalsctl alert rule|channel|silence add|list|rm`. Each
// command goes through the same alert.Store and the same decoding and
// validation (alert.DecodeRule, alert.CheckChannels, alert.DecodeChannel,
// notify's URL check, alert.DecodeSilence) as /api/alerts/…, so a rule
// vitalsctl accepts is one the API would, and a channel's credentials are
// shown exactly as the API shows them.
func alertCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("alert needs rule, channel or silence, then add, list or rm")
	}
	what := strings.TrimSuffix(args[0], "s")
	if what != "rule" && what != "channel" && what != "silence" {
		return usagef("unknown alert object %q (want rule, channel or silence)", args[0])
	}
	if len(args) < 2 {
		return usagef("alert %s needs a subcommand: add, list or rm", what)
	}
	sub := args[1]
	switch sub {
	case "ls":
		sub = "list"
	case "delete", "del":
		sub = "rm"
	}
	name := "alert " + what + " " + sub
	fs := newFlags(name)
	asJSON := fs.Bool("json", false, "")
	rf := addRedisFlags(fs)
	var sf silenceFlags
	if what == "silence" && sub == "add" {
		sf = addSilenceFlags(fs)
	}
	pos, err := parse(fs, args[2:])
	if err != nil {
		return err
	}
	var want int
	switch sub {
	case "list":
		want = 0
	case "rm":
		want = 1
	case "add":
		want = map[string]int{"rule": 1, "channel": 2, "silence": 0}[what]
	default:
		return usagef("unknown alert %s subcommand %q (want add, list or rm)", what, sub)
	}
	if len(pos) != want {
		return usagef("%s: want %s, got %d arguments", name, alertArgs[what+" "+sub], len(pos))
	}
	if *asJSON && sub != "list" {
		return usagef("%s: --json is for list only", name)
	}

	// Everything that needs no Redis is read and checked first, so a typo
	// fails fast and a URL read from stdin is not left waiting on a dial.
	var body []byte
	switch {
	case what == "rule" && sub == "add":
		if body, err = readArg(pos[0], "rule"); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	case what == "channel" && sub == "add":
		u := pos[1]
		if u == "-" {
			b, err := readArg("-", "channel URL")
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			u = strings.TrimSpace(string(b))
		}
		// The request body the API takes, so the channel is decoded and
		// checked by the same code.
		body, _ = json.Marshal(map[string]string{"name": pos[0], "url": u})
	case what == "silence" && sub == "add":
		if body, err = sf.body(time.Now()); err != nil {
			return err
		}
	}

	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	s, closeFn, err := rf.open(ctx, newSettings(fs, getenv), stderr)
	if err != nil {
		return err
	}
	defer closeFn()
	st := alertstore.New(s.Client(), s.Prefix(), s.Wrap)

	var out any
	switch what + " " + sub {
	case "rule add":
		err = ruleAdd(ctx, st, body, stdout, stderr)
	case "rule rm":
		err = st.DeleteRule(ctx, pos[0])
		if err == nil {
			fmt.Fprintf(stdout, "Deleted rule %s; its alerts end at the next evaluation, without notifications.\n", pos[0])
		}
	case "rule list":
		out, err = ruleList(ctx, st, *asJSON, stdout, stderr)
	case "channel add":
		err = channelAdd(ctx, st, body, stdout, stderr)
	case "channel rm":
		err = st.DeleteChannel(ctx, pos[0])
		if err == nil {
			fmt.Fprintf(stdout, "Deleted channel %s.\n", pos[0])
		}
	case "channel list":
		out, err = channelList(ctx, st, *asJSON, stdout, stderr)
	case "silence add":
		err = silenceAdd(ctx, st, body, stdout, stderr)
	case "silence rm":
		err = st.DeleteSilence(ctx, pos[0])
		if err == nil {
			fmt.Fprintf(stdout, "Ended silence %s.\n", pos[0])
		}
	case "silence list":
		out, err = silenceList(ctx, st, *asJSON, stdout, stderr)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if out != nil {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	return nil
}

// alertArgs describes each command's positional arguments for errors.
var alertArgs = map[string]string{
	"rule add":     "one rule file (JSON, as POST /api/alerts/rules takes; '-' reads stdin)",
	"rule rm":      "one rule id",
	"rule list":    "no arguments",
	"channel add":  "<name> <url> ('-' as the url reads it from stdin)",
	"channel rm":   "one channel name",
	"channel list": "no arguments",
	"silence add":  "no arguments (flags only: --servers, --rules, --until or --for, --comment)",
	"silence rm":   "one silence id",
	"silence list": "no arguments",
}

// readArg reads a file, or stdin for "-", bounded as the API bounds a body.
func readArg(path, what string) ([]byte, error) {
	r := stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", what, err)
		}
		defer f.Close() //nolint:errcheck // read-only; a close error loses nothing
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, alert.MaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if len(b) > alert.MaxBody {
		return nil, fmt.Errorf("%s: larger than %d bytes", what, alert.MaxBody)
	}
	return b, nil
}

// ---- rules ----

// ruleAdd stores a rule as POST /api/alerts/rules does and prints its id
// alone on stdout, so `id=$(vitalsctl alert rule add cpu.json)` works.
func ruleAdd(ctx context.Context, st alert.Store, body []byte, stdout, stderr io.Writer) error {
	rule, err := alert.DecodeRule(body)
	if err != nil {
		return err
	}
	if err := alert.CheckChannels(ctx, st, &rule); err != nil {
		return err
	}
	if rule, err = st.CreateRule(ctx, rule); err != nil {
		return err
	}
	fmt.Fprintln(stdout, rule.ID)
	fmt.Fprintf(stderr, "Created rule %q; evaluators apply it from their next pass.\n", rule.Name)
	return nil
}

// ruleList prints the rules; with asJSON it returns the body GET
// /api/alerts/rules answers instead.
func ruleList(ctx context.Context, st alert.Store, asJSON bool, stdout, stderr io.Writer) (any, error) {
	rules, err := st.Rules(ctx)
	if err != nil {
		return nil, err
	}
	if asJSON {
		return map[string][]alert.Rule{"rules": rules}, nil
	}
	if len(rules) == 0 {
		fmt.Fprintln(stderr, "No alert rules. Add one with 'vitalsctl alert rule add <file.json>'.")
		return nil, nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tCONDITION\tFOR\tSERVERS\tCHANNELS")
	for _, r := range rules {
		servers := strings.Join(r.Servers, ",")
		if r.ForInstances() {
			servers += " instances " + strings.Join(r.Instances, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Name, condition(&r), dur(r.For), servers, orDash(strings.Join(r.Channels, ",")))
	}
	return nil, tw.Flush()
}

// condition is a rule's firing condition for the table: "nodata" or
// "cpuUsagePercent > 90 (clear 80)".
func condition(r *alert.Rule) string {
	if r.IsNoData() || r.Value == nil {
		return r.Metric
	}
	c := fmt.Sprintf("%s %s %s", r.Metric, r.Op, strconv.FormatFloat(*r.Value, 'g', -1, 64))
	if r.Clear != nil {
		c += fmt.Sprintf(" (clear %s)", strconv.FormatFloat(*r.Clear, 'g', -1, 64))
	}
	return c
}

func dur(d alert.Duration) string {
	if d == 0 {
		return "0s"
	}
	return metric.FormatDuration(d.D())
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ---- channels ----

// channelAdd stores a channel as POST /api/alerts/channels does. A
// webhook's signing secret goes alone to stdout, the only time it is
// shown; the URL is never printed.
func channelAdd(ctx context.Context, st alert.Store, body []byte, stdout, stderr io.Writer) error {
	ch, err := alert.DecodeChannel(body, time.Now())
	if err != nil {
		return err
	}
	if err := notify.New("", nil).Check(ch); err != nil {
		return err
	}
	if err := st.CreateChannel(ctx, ch); err != nil {
		return err
	}
	pub := ch.Public()
	if ch.Secret == "" {
		fmt.Fprintf(stdout, "Created channel %s (%s).\n", pub.Name, pub.Target)
		return nil
	}
	// Like host add's key: a failed write must not exit 0 with the
	// secret lost.
	if _, err := fmt.Fprintln(stdout, ch.Secret); err != nil {
		return fmt.Errorf("write the secret (the channel exists with it; rm and add it again for a new one): %w", err)
	}
	fmt.Fprintf(stderr, "Created webhook channel %s (%s). The line above is its signing secret, shown only now:\n", pub.Name, pub.Target)
	fmt.Fprintln(stderr, "receivers check X-Vitals-Signature: v1=<hex HMAC-SHA256(secret, timestamp + \"\\n\" + body)>.")
	return nil
}

// channelList prints the channels as the API shows them (Public: kind and
// redacted target, never the URL or secret).
func channelList(ctx context.Context, st alert.Store, asJSON bool, stdout, stderr io.Writer) (any, error) {
	chans, err := st.Channels(ctx)
	if err != nil {
		return nil, err
	}
	pub := make([]alert.Channel, 0, len(chans))
	for _, ch := range chans {
		pub = append(pub, ch.Public())
	}
	if asJSON {
		return map[string][]alert.Channel{"channels": pub}, nil
	}
	if len(pub) == 0 {
		fmt.Fprintln(stderr, "No alert channels. Add one with 'vitalsctl alert channel add <name> <url>'.")
		return nil, nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tTARGET\tCREATED")
	for _, ch := range pub {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", ch.Name, ch.Kind, ch.Target, stamp(ch.CreatedAt))
	}
	return nil, tw.Flush()
}

// ---- silences ----

type silenceFlags struct {
	servers, rules, until, forDur, comment *string
}

func addSilenceFlags(fs *flag.FlagSet) silenceFlags {
	return silenceFlags{
		servers: fs.String("servers", "", ""),
		rules:   fs.String("rules", "", ""),
		until:   fs.String("until", "", ""),
		forDur:  fs.String("for", "", ""),
		comment: fs.String("comment", "", ""),
	}
}

// body turns the flags into the body POST /api/alerts/silences takes, and
// checks it with the API's own decoder; its field errors name the flags.
func (f silenceFlags) body(now time.Time) ([]byte, error) {
	const name = "alert silence add"
	var until time.Time
	switch {
	case *f.until != "" && *f.forDur != "":
		return nil, usagef("%s: give --until or --for, not both", name)
	case *f.until != "":
		t, err := time.Parse(time.RFC3339, *f.until)
		if err != nil {
			return nil, usagef("%s: --until: %q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", name, *f.until)
		}
		until = t
	case *f.forDur != "":
		d, err := metric.ParseDuration(*f.forDur)
		if err != nil || d <= 0 {
			return nil, usagef("%s: --for: %q is not a duration such as 2h or 1d", name, *f.forDur)
		}
		until = now.Add(d)
	default:
		return nil, usagef("%s: --until or --for is required", name)
	}
	s := alert.Silence{Servers: splitList(*f.servers), Rules: splitList(*f.rules), Until: until, Comment: *f.comment}
	body, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if _, err := alert.DecodeSilence(body, now); err != nil {
		// The body's fields are the flags' names.
		return nil, usagef("%s: --%v", name, err)
	}
	return body, nil
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// silenceAdd stores a silence as POST /api/alerts/silences does and
// prints its id alone on stdout.
func silenceAdd(ctx context.Context, st alert.Store, body []byte, stdout, stderr io.Writer) error {
	s, err := alert.DecodeSilence(body, time.Now())
	if err != nil {
		return err
	}
	if s, err = st.CreateSilence(ctx, s); err != nil {
		return err
	}
	fmt.Fprintln(stdout, s.ID)
	fmt.Fprintf(stderr, "Silenced %s until %s (the alerts' state is still kept).\n", silenced(&s), s.Until.Format(time.RFC3339))
	return nil
}

// silenced says what a silence covers, for people.
func silenced(s *alert.Silence) string {
	rules := "every rule"
	if len(s.Rules) > 0 {
		rules = "rules " + strings.Join(s.Rules, ",")
	}
	return rules + " on " + strings.Join(s.Servers, ",")
}

func silenceList(ctx context.Context, st alert.Store, asJSON bool, stdout, stderr io.Writer) (any, error) {
	all, err := st.Silences(ctx, time.Now())
	if err != nil {
		return nil, err
	}
	if asJSON {
		return map[string][]alert.Silence{"silences": all}, nil
	}
	if len(all) == 0 {
		fmt.Fprintln(stderr, "No active silences. Add one with 'vitalsctl alert silence add --servers … --for 2h'.")
		return nil, nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tUNTIL\tSERVERS\tRULES\tCOMMENT")
	for _, s := range all {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.ID, stamp(s.Until), strings.Join(s.Servers, ","), orDash(strings.Join(s.Rules, ",")), oneLine(s.Comment))
	}
	return nil, tw.Flush()
}

// oneLine keeps a comment from breaking the table.
func oneLine(s string) string {
	return orDash(strings.Join(strings.Fields(s), " "))
}
