package streamer

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/mem"

	"github.com/vitals-dev/vitals/shared/metric"
)

// Sysinfo is the reply to the WebSocket "sysinfo" command, field for field
// the TurboCore seed's JSON.
type Sysinfo struct {
	CPUs  []SysinfoCPU  `json:"cpus"`
	Mem   SysinfoMem    `json:"mem"`
	Disks []SysinfoDisk `json:"disks"`
}

// SysinfoCPU is one logical CPU. Name is its 1-based number as a string
// ("1", "2", …), as in the seed's example, whatever the OS calls it
// ("cpu0" on Linux), so clients see the same names for every host.
type SysinfoCPU struct {
	Name  string  `json:"name"`
	Model string  `json:"model"`
	Usage float64 `json:"usage"`
}

// SysinfoMem is memory and swap in bytes. Used and free are what the OS
// reports: on Linux "free" is MemFree (unused, page cache not counted) and
// "used" is total minus available.
type SysinfoMem struct {
	Total     uint64 `json:"total"`
	Used      uint64 `json:"used"`
	Free      uint64 `json:"free"`
	SwapTotal uint64 `json:"swap_total"`
	SwapUsed  uint64 `json:"swap_used"`
	SwapFree  uint64 `json:"swap_free"`
}

// SysinfoDisk is one filesystem; Name is the device the OS reports
// ("/dev/sda1").
type SysinfoDisk struct {
	Name  string `json:"name"`
	Total uint64 `json:"total"`
	Free  uint64 `json:"free"`
}

// hostSampler reads the streamer's own host. Per-CPU usage needs two
// readings of the CPU times; the sampler keeps the previous one and
// re-reads at most once a second, so many clients asking at once get the
// same figures instead of meaningless millisecond deltas.
type hostSampler struct {
	mu     sync.Mutex
	prev   []cpu.TimesStat
	models []string
	at     time.Time
	cached *Sysinfo
}

func newHostSampler() *hostSampler {
	h := &hostSampler{}
	h.prev, _ = cpu.Times(true)
	h.at = time.Now()
	return h
}

func (h *hostSampler) sysinfo(ctx context.Context) (*Sysinfo, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cached != nil && time.Since(h.at) < time.Second {
		return h.cached, nil
	}
	times, err := cpu.TimesWithContext(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("cpu times: %w", err)
	}
	if h.models == nil {
		h.models = cpuModels(ctx, len(times))
	}
	info := &Sysinfo{CPUs: make([]SysinfoCPU, len(times)), Disks: []SysinfoDisk{}}
	for i, t := range times {
		var usage float64
		if i < len(h.prev) {
			usage = busyPercent(h.prev[i], t)
		}
		info.CPUs[i] = SysinfoCPU{Name: strconv.Itoa(i + 1), Model: h.models[i], Usage: usage}
	}
	vm, err := mem.VirtualMemoryWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("memory: %w", err)
	}
	info.Mem = SysinfoMem{
		Total:     vm.Total,
		Used:      vm.Total - min(vm.Available, vm.Total),
		Free:      vm.Free,
		SwapTotal: vm.SwapTotal,
		SwapUsed:  vm.SwapTotal - min(vm.SwapFree, vm.SwapTotal),
		SwapFree:  vm.SwapFree,
	}
	info.Disks = hostDisks(ctx)
	h.prev, h.at, h.cached = times, time.Now(), info
	return info, nil
}

// busyPercent is the share of non-idle time between two readings.
func busyPercent(a, b cpu.TimesStat) float64 {
	idle := func(t cpu.TimesStat) float64 { return t.Idle + t.Iowait }
	total := func(t cpu.TimesStat) float64 {
		// Guest time is already counted in user/nice on Linux.
		return t.User + t.Nice + t.System + t.Idle + t.Iowait + t.Irq + t.Softirq + t.Steal
	}
	dt := total(b) - total(a)
	if dt <= 0 {
		return 0
	}
	busy := dt - (idle(b) - idle(a))
	return min(100, max(0, busy/dt*100))
}

// cpuModels names each logical CPU's model; decoration, so failure is "".
func cpuModels(ctx context.Context, n int) []string {
	models := make([]string, n)
	infos, err := cpu.InfoWithContext(ctx)
	if err != nil || len(infos) == 0 {
		return models
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].CPU < infos[j].CPU })
	for i := range models {
		// Some platforms report one entry per package, not per core.
		info := infos[min(i, len(infos)-1)]
		models[i] = strings.TrimSpace(info.ModelName)
	}
	return models
}

// hostDisks lists each real filesystem once (by device). Inside a
// container, where only overlay mounts exist, it reports the root
// filesystem as "/".
func hostDisks(ctx context.Context) []SysinfoDisk {
	out := []SysinfoDisk{}
	parts, _ := disk.PartitionsWithContext(ctx, false)
	seen := map[string]bool{}
	for _, p := range parts {
		if seen[p.Device] || !strings.HasPrefix(p.Device, "/") {
			continue
		}
		u, err := disk.UsageWithContext(ctx, p.Mountpoint)
		if err != nil || u.Total == 0 {
			continue
		}
		seen[p.Device] = true
		out = append(out, SysinfoDisk{Name: p.Device, Total: u.Total, Free: u.Free})
	}
	if len(out) == 0 {
		if u, err := disk.UsageWithContext(ctx, "/"); err == nil {
			out = append(out, SysinfoDisk{Name: "/", Total: u.Total, Free: u.Free})
		}
	}
	return out
}

// snapshotSysinfo shapes a server's latest snapshot like the seed's
// sysinfo. Absent detail falls back to the sample's summary fields: one
// disk (the main filesystem, named "/") and free memory as total − used.
func snapshotSysinfo(s *metric.Snapshot) *Sysinfo {
	info := &Sysinfo{CPUs: make([]SysinfoCPU, len(s.CPUs)), Disks: []SysinfoDisk{}}
	for i, c := range s.CPUs {
		info.CPUs[i] = SysinfoCPU{Name: strconv.Itoa(i + 1), Model: c.Model, Usage: c.Usage}
	}
	info.Mem = SysinfoMem{
		Total:     s.RAMTotalBytes,
		Used:      s.RAMUsedBytes,
		Free:      s.RAMTotalBytes - min(s.RAMUsedBytes, s.RAMTotalBytes),
		SwapTotal: deref(s.SwapTotalBytes),
		SwapUsed:  deref(s.SwapUsedBytes),
		SwapFree:  deref(s.SwapFreeBytes),
	}
	if s.RAMFreeBytes != nil {
		info.Mem.Free = *s.RAMFreeBytes
	}
	if s.SwapFreeBytes == nil && s.SwapTotalBytes != nil {
		info.Mem.SwapFree = info.Mem.SwapTotal - min(info.Mem.SwapUsed, info.Mem.SwapTotal)
	}
	for _, d := range s.Disks {
		info.Disks = append(info.Disks, SysinfoDisk{Name: d.Name, Total: d.Total, Free: d.Free})
	}
	if len(info.Disks) == 0 && s.DiskTotalBytes > 0 {
		info.Disks = append(info.Disks, SysinfoDisk{Name: "/", Total: s.DiskTotalBytes, Free: s.DiskAvailableBytes})
	}
	return info
}

func deref(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}
