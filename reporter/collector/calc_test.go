package collector

import (
	"math"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestCPUPercent(t *testing.T) {
	base := cpuTimes{User: 100, System: 50, Idle: 800, Iowait: 50}
	tests := []struct {
		name   string
		prev   cpuTimes
		cur    cpuTimes
		want   float64
		wantOK bool
	}{
		{"quarter busy", base, cpuTimes{User: 120, System: 55, Idle: 870, Iowait: 55}, 25, true},
		{"fully busy", base, cpuTimes{User: 200, System: 50, Idle: 800, Iowait: 50}, 100, true},
		{"fully idle", base, cpuTimes{User: 100, System: 50, Idle: 900, Iowait: 50}, 0, true},
		{"iowait counts as idle", base, cpuTimes{User: 100, System: 50, Idle: 800, Iowait: 150}, 0, true},
		{"steal and irq count as busy", base, cpuTimes{User: 100, System: 50, Idle: 850, Iowait: 50, Steal: 25, Irq: 25}, 50, true},
		{"no time passed", base, base, 0, false},
		{"counters reset (reboot)", base, cpuTimes{User: 1, Idle: 10}, 0, false},
		{"idle went backwards (cpu hotplug)", base, cpuTimes{User: 300, System: 50, Idle: 700, Iowait: 50}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := cpuPercent(tt.prev, tt.cur)
			if ok != tt.wantOK || !near(got, tt.want) {
				t.Errorf("cpuPercent = %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestCPUTimesTotalExcludesGuest(t *testing.T) {
	// Guest time is inside User already; total must not grow with it.
	c := cpuTimes{User: 10, Nice: 1, System: 2, Idle: 3, Iowait: 4, Irq: 5, Softirq: 6, Steal: 7}
	if got := c.total(); got != 38 {
		t.Errorf("total = %v, want 38", got)
	}
	if got := c.busy(); got != 31 {
		t.Errorf("busy = %v, want 31", got)
	}
}

func TestClampPercent(t *testing.T) {
	for _, tt := range []struct{ in, want float64 }{
		{-0.0001, 0}, {0, 0}, {42.5, 42.5}, {100, 100}, {100.0000001, 100}, {math.NaN(), 0}, {math.Inf(1), 100},
	} {
		if got := clampPercent(tt.in); got != tt.want {
			t.Errorf("clampPercent(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestPercentOf(t *testing.T) {
	for _, tt := range []struct {
		used, total uint64
		want        float64
	}{
		{0, 0, 0}, {5, 0, 0}, {1, 4, 25}, {4, 4, 100}, {5, 4, 100}, {0, 10, 0},
	} {
		if got := percentOf(tt.used, tt.total); !near(got, tt.want) {
			t.Errorf("percentOf(%d, %d) = %v, want %v", tt.used, tt.total, got, tt.want)
		}
	}
}

func TestDiskPercent(t *testing.T) {
	// df: 90 used, 10 available to users (root's reserve excluded) is 90%.
	if got := diskPercent(90, 10); !near(got, 90) {
		t.Errorf("diskPercent(90, 10) = %v, want 90", got)
	}
	if got := diskPercent(0, 0); got != 0 {
		t.Errorf("diskPercent(0, 0) = %v, want 0", got)
	}
}

func TestCounterRate(t *testing.T) {
	tests := []struct {
		name      string
		prev, cur uint64
		elapsed   float64
		want      float64
		wantOK    bool
	}{
		{"steady", 1000, 11000, 10, 1000, true},
		{"idle", 500, 500, 10, 0, true},
		{"fractional interval", 0, 300, 1.5, 200, true},
		{"reset", 11000, 10, 10, 0, false},
		{"no time", 1, 2, 0, 0, false},
		{"negative time", 1, 2, -1, 0, false},
		{"huge counters", math.MaxUint64 - 100, math.MaxUint64, 1, 100, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := counterRate(tt.prev, tt.cur, tt.elapsed)
			if ok != tt.wantOK || !near(got, tt.want) {
				t.Errorf("counterRate = %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestMachineSharePercent(t *testing.T) {
	tests := []struct {
		name    string
		cpuSec  float64
		elapsed float64
		ncpu    int
		want    float64
	}{
		{"two of eight cores", 20, 10, 8, 25},
		{"one core of one", 10, 10, 1, 100},
		{"over 100 clamps", 30, 10, 2, 100},
		{"idle", 0, 10, 4, 0},
		{"negative (counter reset)", -5, 10, 4, 0},
		{"no elapsed time", 5, 0, 4, 0},
		{"no cpus", 5, 10, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := machineSharePercent(tt.cpuSec, tt.elapsed, tt.ncpu); !near(got, tt.want) {
				t.Errorf("machineSharePercent = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestProcCPUDelta(t *testing.T) {
	a := procKey{PID: 10, Start: 1000}
	b := procKey{PID: 11, Start: 2000}
	recycled := procKey{PID: 10, Start: 100100} // same pid, new process since the previous tick
	young := procKey{PID: 12, Start: 100500}    // started at 1005 s, after the previous tick
	old := procKey{PID: 13, Start: 50000}       // started at 500 s, before it, but not seen then
	prevUptime := 1000.0
	tests := []struct {
		name      string
		prev, cur map[procKey]float64
		want      float64
	}{
		{"both seen", map[procKey]float64{a: 1, b: 2}, map[procKey]float64{a: 1.5, b: 4}, 2.5},
		{"new young process counts whole", map[procKey]float64{a: 1}, map[procKey]float64{a: 2, young: 0.5}, 1.5},
		{"new old process counts nothing", map[procKey]float64{a: 1}, map[procKey]float64{a: 2, old: 9}, 1},
		{"exited process is dropped", map[procKey]float64{a: 1, b: 2}, map[procKey]float64{a: 2}, 1},
		{"recycled pid is not the old process", map[procKey]float64{a: 5}, map[procKey]float64{recycled: 3}, 3},
		{"counter went backwards", map[procKey]float64{a: 5}, map[procKey]float64{a: 4}, 0},
		{"no previous reading", nil, map[procKey]float64{a: 5}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := procCPUDelta(tt.prev, tt.cur, prevUptime, clockTicks); !near(got, tt.want) {
				t.Errorf("procCPUDelta = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCountedInterface(t *testing.T) {
	for name, want := range map[string]bool{
		"eth0": true, "ens3": true, "enp0s31f6": true, "wlan0": true, "wg0": true, "bond0": true, "tun0": true,
		"lo": false, "": false, "docker0": false, "veth1a2b3c": false, "br-1234abcd": false, "virbr0": false,
		"cni0": false, "flannel.1": false, "cali123": false, "ifb0": false, "vxlan.calico": false,
	} {
		if got := countedInterface(name); got != want {
			t.Errorf("countedInterface(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestRealFilesystem(t *testing.T) {
	tests := []struct {
		fstype, device string
		opts           []string
		want           bool
	}{
		{"ext4", "/dev/vda1", []string{"rw"}, true},
		{"xfs", "/dev/mapper/vg-data", nil, true},
		{"nfs4", "fileserver:/export", nil, true},
		{"zfs", "tank/home", nil, true},
		{"btrfs", "/dev/sda2", []string{"rw", "bind"}, false},
		{"tmpfs", "tmpfs", nil, false},
		{"proc", "proc", nil, false},
		{"overlay", "overlay", nil, false},
		{"squashfs", "/dev/loop0", nil, false},
		{"cgroup2", "cgroup2", nil, false},
		{"devtmpfs", "devtmpfs", nil, false},
		{"ext4", "", nil, false},
		{"", "/dev/sda1", nil, false},
		{"fuse.sshfs", "none", nil, false},
	}
	for _, tt := range tests {
		if got := realFilesystem(tt.fstype, tt.device, tt.opts); got != tt.want {
			t.Errorf("realFilesystem(%q, %q, %v) = %v, want %v", tt.fstype, tt.device, tt.opts, got, tt.want)
		}
	}
}
