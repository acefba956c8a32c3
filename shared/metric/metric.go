// Package metric holds the Vitals domain: the samples reporters send, the
// ServerMetric and InstanceMetric points the REST API returns, periods, error
// kinds, and the Store contract every storage backend implements.
//
// It imports only the standard library and github.com/go-json-experiment/json
// (the encoding/json/v2 prototype, for the strict streaming batch decoder),
// so that every other package (reporter, handlers, streamer, store) can
// depend on it without pulling anything else in.
package metric

import (
	"time"
)

// Sample is one reading of a whole server at CollectedAt, as a reporter sends
// it to POST /api/ingest. Field names match ServerMetric where they overlap so
// that a sample reads like the point it becomes. Pointer fields are optional
// on the wire; the rest are required (see DecodeBatch).
type Sample struct {
	CollectedAt time.Time `json:"collectedAt"`

	CPUUsagePercent float64 `json:"cpuUsagePercent"`
	CPULoad1m       float64 `json:"cpuLoad1m"`
	CPULoad5m       float64 `json:"cpuLoad5m"`
	CPULoad15m      float64 `json:"cpuLoad15m"`

	RAMTotalBytes     uint64  `json:"ramTotalBytes"`
	RAMUsedBytes      uint64  `json:"ramUsedBytes"`
	RAMAvailableBytes uint64  `json:"ramAvailableBytes"`
	RAMUsagePercent   float64 `json:"ramUsagePercent"`
	// RAMFreeBytes is memory not used for anything, page cache included;
	// the WebSocket sysinfo "mem.free" field. Optional.
	RAMFreeBytes *uint64 `json:"ramFreeBytes,omitempty"`

	SwapTotalBytes *uint64 `json:"swapTotalBytes,omitempty"`
	SwapUsedBytes  *uint64 `json:"swapUsedBytes,omitempty"`
	SwapFreeBytes  *uint64 `json:"swapFreeBytes,omitempty"`

	// Disk* describe the main filesystem (root, or the one configured).
	DiskTotalBytes     uint64  `json:"diskTotalBytes"`
	DiskUsedBytes      uint64  `json:"diskUsedBytes"`
	DiskAvailableBytes uint64  `json:"diskAvailableBytes"`
	DiskUsagePercent   float64 `json:"diskUsagePercent"`

	// Network* are cumulative counters over non-loopback interfaces.
	NetworkRxBytes uint64 `json:"networkRxBytes"`
	NetworkTxBytes uint64 `json:"networkTxBytes"`
	// Per-second rates since the reporter's previous reading. Optional.
	NetworkRxBytesPerSec *float64 `json:"networkRxBytesPerSec,omitempty"`
	NetworkTxBytesPerSec *float64 `json:"networkTxBytesPerSec,omitempty"`

	UptimeSeconds uint64 `json:"uptimeSeconds"`

	// Detail kept only in the latest snapshot (not in the time series).
	CPUs  []CPU     `json:"cpus,omitempty"`
	Disks []Disk    `json:"disks,omitempty"`
	Host  *HostInfo `json:"host,omitempty"`

	Instances []InstanceSample `json:"instances,omitempty"`
}

// CPU is one logical CPU in a sample's detail, shaped like the TurboCore
// sysinfo "cpus" entries.
type CPU struct {
	Name  string  `json:"name"`
	Model string  `json:"model"`
	Usage float64 `json:"usage"`
}

// Disk is one mounted filesystem in a sample's detail.
type Disk struct {
	Name       string `json:"name"`
	Mountpoint string `json:"mountpoint,omitempty"`
	Fstype     string `json:"fstype,omitempty"`
	Total      uint64 `json:"total"`
	Used       uint64 `json:"used"`
	Free       uint64 `json:"free"`
}

// HostInfo describes the reporting machine; reporters send it once per start
// (or with every sample; the latest wins).
type HostInfo struct {
	Hostname        string `json:"hostname,omitempty"`
	OS              string `json:"os,omitempty"`
	Platform        string `json:"platform,omitempty"`
	PlatformVersion string `json:"platformVersion,omitempty"`
	Kernel          string `json:"kernel,omitempty"`
	Arch            string `json:"arch,omitempty"`
	ReporterVersion string `json:"reporterVersion,omitempty"`
}

// InstanceSample is one workload's reading inside a Sample. CPUUsagePercent
// is the share of the whole machine (0–100), so a process using two of eight
// cores reads 25.
type InstanceSample struct {
	InstanceID string `json:"instanceId"`
	Name       string `json:"name"`

	CPUUsagePercent    float64 `json:"cpuUsagePercent"`
	MemoryUsedBytes    uint64  `json:"memoryUsedBytes"`
	MemoryLimitBytes   uint64  `json:"memoryLimitBytes"`
	MemoryUsagePercent float64 `json:"memoryUsagePercent"`
	// DiskRead/WriteBytes are cumulative I/O counters.
	DiskReadBytes  uint64 `json:"diskReadBytes"`
	DiskWriteBytes uint64 `json:"diskWriteBytes"`
	// Disk usage of the instance's configured data path, when there is one.
	DiskUsedBytes  *uint64 `json:"diskUsedBytes,omitempty"`
	DiskTotalBytes *uint64 `json:"diskTotalBytes,omitempty"`
}

// Batch is the body of POST /api/ingest: samples of one server.
type Batch struct {
	// ServerID may be omitted; when present it must equal the
	// X-Vitals-Server header the request was signed with.
	ServerID string   `json:"serverId,omitempty"`
	Samples  []Sample `json:"samples"`
	// Interval is how often the reporter sends (whole seconds on the
	// wire, optional): the alert evaluator's no-data deadline is measured
	// beyond it, so a once-a-minute cron host is not "down" after 30 s.
	Interval time.Duration `json:"-"`
}

// ServerMetric is one point of a server's history, exactly the oCore
// "ServerMetric" (every seed field always present) plus extensions: swap,
// per-second network rates and the …Max fields that keep peaks through
// rollups. For a rollup point CollectedAt is the bucket start, gauges are
// averages over the bucket and counters are the bucket's last value.
type ServerMetric struct {
	ID          string    `json:"id"`
	ServerID    string    `json:"serverId"`
	CollectedAt time.Time `json:"collectedAt"`

	CPUUsagePercent    float64 `json:"cpuUsagePercent"`
	CPULoad1m          float64 `json:"cpuLoad1m"`
	CPULoad5m          float64 `json:"cpuLoad5m"`
	CPULoad15m         float64 `json:"cpuLoad15m"`
	RAMTotalBytes      uint64  `json:"ramTotalBytes"`
	RAMUsedBytes       uint64  `json:"ramUsedBytes"`
	RAMAvailableBytes  uint64  `json:"ramAvailableBytes"`
	RAMUsagePercent    float64 `json:"ramUsagePercent"`
	DiskTotalBytes     uint64  `json:"diskTotalBytes"`
	DiskUsedBytes      uint64  `json:"diskUsedBytes"`
	DiskAvailableBytes uint64  `json:"diskAvailableBytes"`
	DiskUsagePercent   float64 `json:"diskUsagePercent"`
	NetworkRxBytes     uint64  `json:"networkRxBytes"`
	NetworkTxBytes     uint64  `json:"networkTxBytes"`
	UptimeSeconds      uint64  `json:"uptimeSeconds"`

	// Extensions.
	SwapTotalBytes       uint64  `json:"swapTotalBytes"`
	SwapUsedBytes        uint64  `json:"swapUsedBytes"`
	NetworkRxBytesPerSec float64 `json:"networkRxBytesPerSec"`
	NetworkTxBytesPerSec float64 `json:"networkTxBytesPerSec"`
	// Samples is how many samples the point aggregates (1 for raw points).
	Samples int `json:"samples"`

	CPUUsagePercentMax      float64 `json:"cpuUsagePercentMax"`
	CPULoad1mMax            float64 `json:"cpuLoad1mMax"`
	RAMUsagePercentMax      float64 `json:"ramUsagePercentMax"`
	RAMUsedBytesMax         uint64  `json:"ramUsedBytesMax"`
	DiskUsagePercentMax     float64 `json:"diskUsagePercentMax"`
	SwapUsedBytesMax        uint64  `json:"swapUsedBytesMax"`
	NetworkRxBytesPerSecMax float64 `json:"networkRxBytesPerSecMax"`
	NetworkTxBytesPerSecMax float64 `json:"networkTxBytesPerSecMax"`
}

// InstanceMetric is one point of an instance's history, the oCore instance
// metric plus the …Max extensions. DiskUsed/TotalBytes appear only for
// instances with a configured data path.
type InstanceMetric struct {
	ID          string    `json:"id"`
	InstanceID  string    `json:"instanceId"`
	ServerID    string    `json:"serverId"`
	Name        string    `json:"name"`
	CollectedAt time.Time `json:"collectedAt"`

	CPUUsagePercent    float64 `json:"cpuUsagePercent"`
	MemoryUsedBytes    uint64  `json:"memoryUsedBytes"`
	MemoryLimitBytes   uint64  `json:"memoryLimitBytes"`
	MemoryUsagePercent float64 `json:"memoryUsagePercent"`
	DiskReadBytes      uint64  `json:"diskReadBytes"`
	DiskWriteBytes     uint64  `json:"diskWriteBytes"`
	DiskUsedBytes      *uint64 `json:"diskUsedBytes,omitempty"`
	DiskTotalBytes     *uint64 `json:"diskTotalBytes,omitempty"`

	// Extensions.
	Samples               int     `json:"samples"`
	CPUUsagePercentMax    float64 `json:"cpuUsagePercentMax"`
	MemoryUsedBytesMax    uint64  `json:"memoryUsedBytesMax"`
	MemoryUsagePercentMax float64 `json:"memoryUsagePercentMax"`
}

// Snapshot is the full latest sample of a server, detail included; it backs
// GET …/latest and the WebSocket "sysinfo <serverId>" command.
type Snapshot struct {
	ServerID string `json:"serverId"`
	Sample
}

// ServerInfo is one entry of GET /api/servers.
type ServerInfo struct {
	ID         string    `json:"id"`
	LastSeenAt time.Time `json:"lastSeenAt"`
	// Interval is the reporting interval in seconds the server announced
	// with its last batch (what the alert evaluator judges it by), or
	// DefaultIntervalSeconds if it never announced one. The live view
	// shows a server silent for 3 intervals as down.
	Interval  int64          `json:"interval"`
	Instances []InstanceInfo `json:"instances"`
}

// DefaultIntervalSeconds is the reporting interval assumed for a server
// that never announced one (the reporter's default, 10 s).
const DefaultIntervalSeconds = 10

// InstanceInfo names an instance and the server it runs on.
type InstanceInfo struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	ServerID string `json:"-"`
}

// IngestResult counts what one Ingest call did with a batch.
type IngestResult struct {
	// Accepted samples were new and are stored.
	Accepted int `json:"accepted"`
	// Duplicates were already stored (same server and collectedAt second).
	Duplicates int `json:"duplicates"`
	// Stale samples were older than the store's sample-age horizon (at
	// most the longest retention) and were dropped.
	Stale int `json:"stale"`
	// InstancesOverLimit counts new instances whose readings were not
	// stored because their server already has as many live instances as
	// it may; the rest of the batch is stored. Omitted when 0.
	InstancesOverLimit int `json:"instancesOverLimit,omitempty"`
	// InstancesRefused counts instances whose readings were not stored
	// because their id is not the reporting server's (neither derived
	// from its id and the instance name nor bound to it by an operator);
	// the rest of the batch is stored. Omitted when 0.
	InstancesRefused int `json:"instancesRefused,omitempty"`
	// RefusedReason says, for the reporter's log, which instance was
	// refused first and why. Omitted when nothing was refused.
	RefusedReason string `json:"refusedReason,omitempty"`
}

// AddChunk adds the result of storing one chunk of a batch to r, the
// batch's result. Sample counts add up; an instance left out is left out
// of every chunk it appears in, so the instance counts are the largest of
// any chunk, and the first reason given is kept.
func (r *IngestResult) AddChunk(c IngestResult) {
	r.Accepted += c.Accepted
	r.Duplicates += c.Duplicates
	r.Stale += c.Stale
	r.InstancesOverLimit = max(r.InstancesOverLimit, c.InstancesOverLimit)
	r.InstancesRefused = max(r.InstancesRefused, c.InstancesRefused)
	if r.RefusedReason == "" {
		r.RefusedReason = c.RefusedReason
	}
}
