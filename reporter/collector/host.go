package collector

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/shirou/gopsutil/v4/host"
	"github.com/vitals-dev/vitals/shared/metric"
)

// hostCollector describes the machine: hostname, OS, distribution, kernel
// and architecture. It reads them once per start (they change only across a
// reboot, which restarts the reporter) and attaches them to every sample, so
// the server's latest snapshot always carries them.
type hostCollector struct {
	version string
	paths   hostPaths
	info    *metric.HostInfo
}

func (c *hostCollector) name() string { return "host" }

func (c *hostCollector) update(ctx context.Context, t *tick) error {
	if c.info == nil {
		info := &metric.HostInfo{
			OS:              runtime.GOOS,
			Arch:            runtime.GOARCH,
			ReporterVersion: c.version,
		}
		// The hostname comes from the host's proc tree, not the reporter's
		// UTS namespace, so a containerised reporter names its host.
		if b, err := os.ReadFile(filepath.Join(c.paths.proc, "sys/kernel/hostname")); err == nil {
			info.Hostname = strings.TrimSpace(string(b))
		} else if h, err := os.Hostname(); err == nil {
			info.Hostname = h
		}
		if b, err := os.ReadFile(filepath.Join(c.paths.proc, "sys/kernel/osrelease")); err == nil {
			info.Kernel = strings.TrimSpace(string(b))
		} else if k, err := host.KernelVersionWithContext(ctx); err == nil {
			info.Kernel = k
		}
		if platform, _, version, err := host.PlatformInformationWithContext(ctx); err == nil {
			info.Platform, info.PlatformVersion = platform, version
		}
		c.info = info
	}
	h := *c.info
	t.sample.Host = &h
	return nil
}
