package collector

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// uptimeCollector reads /proc/uptime. It runs first: a smaller uptime than
// the previous reading means the host rebooted and every counter restarted,
// so the previous reading is dropped for this tick.
type uptimeCollector struct{ paths hostPaths }

func (c *uptimeCollector) name() string { return "uptime" }

func (c *uptimeCollector) update(_ context.Context, t *tick) error {
	b, err := os.ReadFile(filepath.Join(c.paths.proc, "uptime"))
	if err != nil {
		return err
	}
	up, err := parseUptime(string(b))
	if err != nil {
		return err
	}
	if t.prev != nil && t.prev.UptimeSec > 0 && up < t.prev.UptimeSec {
		t.prev = nil
	}
	t.uptimeSec = up
	t.next.UptimeSec = up
	t.sample.UptimeSeconds = uint64(up)
	return nil
}

// parseUptime reads the first field of /proc/uptime ("350735.47 234388.90").
func parseUptime(s string) (float64, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0, fmt.Errorf("parse uptime: empty")
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("parse uptime %q: not a non-negative number", f[0])
	}
	return v, nil
}
