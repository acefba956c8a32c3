package collector

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v4/disk"
	"github.com/vitals-dev/vitals/shared/metric"
)

// diskCollector reports the main filesystem (the sample's disk* fields) and
// every real mounted filesystem (the detail list). Pseudo filesystems, bind
// mounts and second mounts of one device are left out, so each disk appears
// once.
type diskCollector struct {
	opts  *Options
	paths hostPaths

	mu    sync.Mutex
	stuck map[string]bool // mount points whose statfs has not returned
}

// statfsTimeout bounds one statfs call: a dead NFS server can block it
// forever, and one stuck mount must not stop the whole sample (node_exporter
// learned this the hard way).
const statfsTimeout = 5 * time.Second

func (c *diskCollector) name() string { return "disk" }

func (c *diskCollector) update(ctx context.Context, t *tick) error {
	main, err := c.usage(ctx, c.opts.MainDisk)
	if err != nil {
		return fmt.Errorf("main disk %s: %w", c.opts.MainDisk, err)
	}
	t.sample.DiskTotalBytes = main.Total
	t.sample.DiskUsedBytes = main.Used
	t.sample.DiskAvailableBytes = main.Free
	t.sample.DiskUsagePercent = diskPercent(main.Used, main.Free)

	parts, err := disk.PartitionsWithContext(ctx, true)
	if err != nil {
		// The main disk is in; the detail list is decoration.
		return fmt.Errorf("list mounts: %w", err)
	}
	seen := map[string]bool{}
	for _, p := range parts {
		if !realFilesystem(p.Fstype, p.Device, p.Opts) || seen[p.Device] {
			continue
		}
		u, err := c.usage(ctx, p.Mountpoint)
		if err != nil || u.Total == 0 {
			continue // unmounted since listing, permission denied, or stuck
		}
		seen[p.Device] = true
		if len(t.sample.Disks) == metric.MaxDisksPerSample {
			break
		}
		t.sample.Disks = append(t.sample.Disks, metric.Disk{
			Name:       p.Device,
			Mountpoint: p.Mountpoint,
			Fstype:     p.Fstype,
			Total:      u.Total,
			Used:       u.Used,
			Free:       u.Free,
		})
	}
	return nil
}

// usage runs statfs on a host path (relocated under HostRoot) with a
// timeout. A mount whose previous call is still blocked is skipped rather
// than piling up goroutines.
func (c *diskCollector) usage(ctx context.Context, mount string) (diskUsage, error) {
	path := filepath.Join(c.paths.root, mount)
	c.mu.Lock()
	if c.stuck[path] {
		c.mu.Unlock()
		return diskUsage{}, fmt.Errorf("statfs %s: still blocked from an earlier call", path)
	}
	if c.stuck == nil {
		c.stuck = map[string]bool{}
	}
	c.stuck[path] = true
	c.mu.Unlock()

	type result struct {
		u   diskUsage
		err error
	}
	done := make(chan result, 1)
	go func() {
		u, err := c.opts.usage(path)
		c.mu.Lock()
		delete(c.stuck, path)
		c.mu.Unlock()
		done <- result{u, err}
	}()
	timer := time.NewTimer(statfsTimeout)
	defer timer.Stop()
	select {
	case r := <-done:
		return r.u, r.err
	case <-timer.C:
		return diskUsage{}, fmt.Errorf("statfs %s: no answer within %s", path, statfsTimeout)
	case <-ctx.Done():
		return diskUsage{}, ctx.Err()
	}
}

// diskUsage is one filesystem's size in bytes: Free is what unprivileged
// users may still write (statfs f_bavail), Used excludes root's reserve.
type diskUsage struct{ Total, Used, Free uint64 }

type usageFunc func(path string) (diskUsage, error)

func statfsUsage(path string) (diskUsage, error) {
	u, err := disk.Usage(path)
	if err != nil {
		return diskUsage{}, err
	}
	return diskUsage{Total: u.Total, Used: u.Used, Free: u.Free}, nil
}

// pseudoFilesystems hold no user data: kernel interfaces, memory-backed
// scratch space, container image layers and read-only package images.
var pseudoFilesystems = []string{
	"autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs",
	"devpts", "devtmpfs", "efivarfs", "fusectl", "hugetlbfs", "mqueue", "nsfs",
	"overlay", "proc", "pstore", "ramfs", "rpc_pipefs", "securityfs", "selinuxfs",
	"squashfs", "sysfs", "tmpfs", "tracefs", "nfsd", "aufs", "fuse.lxcfs",
	"fuse.gvfsd-fuse", "fuse.portal", "fuse.snapfuse", "iso9660", "shm",
}

// realFilesystem reports whether a mount holds user data worth listing:
// not a pseudo filesystem, not a bind mount of a directory shown elsewhere,
// and backed by something with a name.
func realFilesystem(fstype, device string, opts []string) bool {
	if fstype == "" || device == "" || device == "none" || slices.Contains(pseudoFilesystems, fstype) {
		return false
	}
	if slices.Contains(opts, "bind") {
		return false
	}
	// Sandboxes and containers mount placeholders whose "device" is a word
	// and whose type is a pseudo one; real sources are paths (/dev/…,
	// server:/export) or pool names (zfs, btrfs subvolumes carry a path).
	return strings.HasPrefix(device, "/") || strings.Contains(device, ":") || fstype == "zfs"
}
