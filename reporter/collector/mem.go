package collector

import (
	"context"
	"fmt"

	"github.com/shirou/gopsutil/v4/mem"
)

// memCollector reads RAM and swap from /proc/meminfo. "Used" RAM is what
// programs hold: total minus available (page cache that the kernel would
// give back on demand does not count), the figure people expect from free(1).
type memCollector struct{}

func (c *memCollector) name() string { return "mem" }

func (c *memCollector) update(ctx context.Context, t *tick) error {
	vm, err := mem.VirtualMemoryWithContext(ctx)
	if err != nil {
		return fmt.Errorf("read memory: %w", err)
	}
	used := vm.Total - min(vm.Available, vm.Total)
	t.sample.RAMTotalBytes = vm.Total
	t.sample.RAMAvailableBytes = vm.Available
	t.sample.RAMUsedBytes = used
	t.sample.RAMUsagePercent = percentOf(used, vm.Total)
	free := vm.Free
	t.sample.RAMFreeBytes = &free
	t.memTotal = vm.Total

	// Swap comes from the same /proc/meminfo read (SwapTotal/SwapFree)
	// rather than mem.SwapMemory, which costs a sysinfo call and a vmstat
	// read for paging counters we do not report.
	sw := struct{ Total, Free uint64 }{vm.SwapTotal, vm.SwapFree}
	swTotal, swUsed, swFree := sw.Total, sw.Total-min(sw.Free, sw.Total), sw.Free
	t.sample.SwapTotalBytes, t.sample.SwapUsedBytes, t.sample.SwapFreeBytes = &swTotal, &swUsed, &swFree
	return nil
}
