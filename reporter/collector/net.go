package collector

import (
	"context"
	"fmt"
	"strings"

	"github.com/shirou/gopsutil/v4/net"
)

// netCollector sums the byte counters of the host's real network interfaces
// (/proc/net/dev) and derives per-second rates from the previous reading.
type netCollector struct{}

func (c *netCollector) name() string { return "net" }

func (c *netCollector) update(ctx context.Context, t *tick) error {
	ifs, err := net.IOCountersWithContext(ctx, true)
	if err != nil {
		return fmt.Errorf("read network counters: %w", err)
	}
	var rx, tx uint64
	for _, i := range ifs {
		if countedInterface(i.Name) {
			rx += i.BytesRecv
			tx += i.BytesSent
		}
	}
	t.sample.NetworkRxBytes, t.sample.NetworkTxBytes = rx, tx
	t.next.Net = &netState{At: t.now, Rx: rx, Tx: tx}
	if p := t.prev; p != nil && p.Net != nil {
		elapsed := t.now.Sub(p.Net.At).Seconds()
		rr, okR := counterRate(p.Net.Rx, rx, elapsed)
		tr, okT := counterRate(p.Net.Tx, tx, elapsed)
		if okR && okT {
			t.sample.NetworkRxBytesPerSec, t.sample.NetworkTxBytesPerSec = &rr, &tr
		}
	}
	return nil
}

// virtualPrefixes name interfaces that carry no traffic of their own: the
// loopback, and the bridges, veth pairs and mirrors that container runtimes
// and traffic shaping add. Counting them would count every container packet
// two or three times over (veth → bridge → eth0).
var virtualPrefixes = []string{"veth", "docker", "br-", "virbr", "cni", "flannel", "cali", "vxlan", "ifb", "kube-ipvs", "cilium_"}

// countedInterface reports whether an interface's bytes belong in the host's
// network totals.
func countedInterface(name string) bool {
	if name == "" || name == "lo" {
		return false
	}
	for _, p := range virtualPrefixes {
		if strings.HasPrefix(name, p) {
			return false
		}
	}
	return true
}
