package collector

import "math"

// The functions in this file are the arithmetic of collection: deltas,
// percentages and rates between two readings. They are pure so that every
// edge (counter resets, zero elapsed time, clamping) is covered by table tests
// without touching /proc.

// cpuTimes is one reading of a CPU's (or the whole machine's) time counters,
// in seconds, as /proc/stat reports them.
type cpuTimes struct {
	User    float64 `json:"user"`
	Nice    float64 `json:"nice"`
	System  float64 `json:"system"`
	Idle    float64 `json:"idle"`
	Iowait  float64 `json:"iowait"`
	Irq     float64 `json:"irq"`
	Softirq float64 `json:"softirq"`
	Steal   float64 `json:"steal"`
}

// total is all time accounted. Guest time is left out on purpose: the kernel
// already counts it inside user (and guest_nice inside nice), and adding it
// again would understate busy percentages on hypervisors.
func (t cpuTimes) total() float64 {
	return t.User + t.Nice + t.System + t.Idle + t.Iowait + t.Irq + t.Softirq + t.Steal
}

// busy is time not spent idle. I/O wait counts as idle, as in top(1): the CPU
// was free to run something else.
func (t cpuTimes) busy() float64 {
	return t.total() - t.Idle - t.Iowait
}

// cpuPercent is the busy share of the time between two readings, 0–100. ok is
// false when the readings cannot be compared: no time passed, or a counter
// went backwards (a reboot, or a CPU taken offline and back).
func cpuPercent(prev, cur cpuTimes) (pct float64, ok bool) {
	dTotal := cur.total() - prev.total()
	dBusy := cur.busy() - prev.busy()
	if dTotal <= 0 || cur.Idle+cur.Iowait < prev.Idle+prev.Iowait || dBusy < -1e-9 {
		return 0, false
	}
	return clampPercent(dBusy / dTotal * 100), true
}

// clampPercent bounds p to [0, 100]; rounding in the kernel's tick accounting
// can push a ratio a hair outside it, and ingest rejects such values.
func clampPercent(p float64) float64 {
	switch {
	case math.IsNaN(p) || p < 0:
		return 0
	case p > 100:
		return 100
	}
	return p
}

// percentOf is used/total as a percentage, 0 when total is 0.
func percentOf(used, total uint64) float64 {
	if total == 0 {
		return 0
	}
	return clampPercent(float64(used) / float64(total) * 100)
}

// counterRate is the per-second rate of a cumulative counter between two
// readings elapsedSec apart. ok is false when the counter went backwards (an
// interface vanished, a reboot) or no time passed: a rate across a reset
// would be garbage.
func counterRate(prev, cur uint64, elapsedSec float64) (rate float64, ok bool) {
	if cur < prev || !(elapsedSec > 0) {
		return 0, false
	}
	return float64(cur-prev) / elapsedSec, true
}

// machineSharePercent turns CPU seconds consumed by a workload over
// elapsedSec of wall time into its share of the whole machine with ncpu
// logical CPUs: two busy cores of eight read 25.
func machineSharePercent(cpuSeconds, elapsedSec float64, ncpu int) float64 {
	if !(elapsedSec > 0) || ncpu <= 0 || !(cpuSeconds > 0) {
		return 0
	}
	return clampPercent(cpuSeconds / (elapsedSec * float64(ncpu)) * 100)
}

// procKey identifies one process across readings: a pid plus its start time
// (clock ticks since boot), so a recycled pid is never mistaken for the
// process that had it before.
type procKey struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
}

// procCPUDelta sums the CPU seconds a group of processes used between two
// readings. Processes seen in both readings contribute their difference.
// A process first seen now contributes all its CPU time if it started after
// the previous reading (all of it happened in the interval), and nothing if it
// is older (its time before the interval is unknown). Processes that exited
// are lost: their last slice of CPU cannot be read any more.
func procCPUDelta(prev, cur map[procKey]float64, prevUptimeSec float64, ticksPerSec float64) float64 {
	var d float64
	for k, c := range cur {
		if p, ok := prev[k]; ok {
			if c > p {
				d += c - p
			}
			continue
		}
		if float64(k.Start)/ticksPerSec >= prevUptimeSec {
			d += c
		}
	}
	return d
}

// diskPercent is the df(1) percentage: used/(used+available), so root's
// reserved blocks do not make a full disk look 95% used.
func diskPercent(used, avail uint64) float64 {
	return percentOf(used, used+avail)
}
