package collector

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/load"
	"github.com/vitals-dev/vitals/shared/metric"
)

// cpuCollector reads total and per-core CPU time from /proc/stat and turns
// them into busy percentages against the previous reading. Core models come
// from /proc/cpuinfo once: they do not change while the host runs.
type cpuCollector struct {
	models []string // by core index; read on first use
}

func (c *cpuCollector) name() string { return "cpu" }

func (c *cpuCollector) update(ctx context.Context, t *tick) error {
	total, err := cpu.TimesWithContext(ctx, false)
	if err != nil {
		return fmt.Errorf("read cpu times: %w", err)
	}
	if len(total) == 0 {
		return fmt.Errorf("read cpu times: no total line")
	}
	per, err := cpu.TimesWithContext(ctx, true)
	if err != nil {
		return fmt.Errorf("read per-cpu times: %w", err)
	}
	if c.models == nil {
		c.models = cpuModels(ctx, len(per))
	}
	cur := fromTimesStat(total[0])
	t.next.CPU = &cur
	t.next.PerCPU = make([]cpuTimes, len(per))
	if len(per) > 0 {
		t.ncpu = len(per)
	}
	if t.prev != nil && t.prev.CPU != nil {
		if pct, ok := cpuPercent(*t.prev.CPU, cur); ok {
			t.sample.CPUUsagePercent = pct
		}
	}
	for i, p := range per {
		ct := fromTimesStat(p)
		t.next.PerCPU[i] = ct
		var usage float64
		if t.prev != nil && i < len(t.prev.PerCPU) {
			usage, _ = cpuPercent(t.prev.PerCPU[i], ct)
		}
		model := ""
		if i < len(c.models) {
			model = c.models[i]
		}
		t.sample.CPUs = append(t.sample.CPUs, metric.CPU{Name: p.CPU, Model: model, Usage: usage})
	}
	return nil
}

func fromTimesStat(s cpu.TimesStat) cpuTimes {
	return cpuTimes{
		User: s.User, Nice: s.Nice, System: s.System, Idle: s.Idle,
		Iowait: s.Iowait, Irq: s.Irq, Softirq: s.Softirq, Steal: s.Steal,
	}
}

// cpuModels lists each logical CPU's model name. Failure is not an error:
// the names are decoration, the usage figures still go out.
func cpuModels(ctx context.Context, n int) []string {
	models := make([]string, n)
	infos, err := cpu.InfoWithContext(ctx)
	if err != nil {
		return models
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].CPU < infos[j].CPU })
	for i := range models {
		switch {
		case i < len(infos):
			models[i] = strings.TrimSpace(infos[i].ModelName)
		case len(infos) > 0:
			models[i] = strings.TrimSpace(infos[0].ModelName)
		}
	}
	return models
}

// loadCollector reads the 1/5/15-minute load averages.
type loadCollector struct{}

func (c *loadCollector) name() string { return "load" }

func (c *loadCollector) update(ctx context.Context, t *tick) error {
	avg, err := load.AvgWithContext(ctx)
	if err != nil {
		return fmt.Errorf("read load average: %w", err)
	}
	t.sample.CPULoad1m, t.sample.CPULoad5m, t.sample.CPULoad15m = nonNeg(avg.Load1), nonNeg(avg.Load5), nonNeg(avg.Load15)
	return nil
}

func nonNeg(f float64) float64 {
	if f > 0 {
		return f
	}
	return 0
}
