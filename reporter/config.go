package reporter

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/vitals-dev/vitals/reporter/collector"
	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/metric"
)

// InstanceConfig defines one workload to report as an instance: a process
// (by pid, name, command-line pattern or pid file) or a cgroup. See
// collector.InstanceConfig for the fields.
type InstanceConfig = collector.InstanceConfig

// Config is everything an Agent needs. Zero durations and sizes take the
// defaults below; only ServerID is always required, and IngestURL, HostKey
// and StateDir are required for Run and Once (not for Collect).
type Config struct {
	// IngestURL is the full URL of the ingest function, e.g.
	// "https://vitals.example.com/api/ingest".
	IngestURL string
	// ServerID names this host (1–128 letters, digits, '.', '_', '-').
	ServerID string
	// HostKey is the host's HMAC key as `vitalsctl host add` printed it.
	// It is never logged.
	HostKey []byte
	// Interval between samples in Run (default 10s, at least 1s).
	Interval time.Duration
	// StateDir holds the spool, the CPU counters between cron runs and the
	// lock that keeps two reporters off one spool.
	StateDir string
	// MainDisk is the path whose filesystem fills the disk* fields
	// (default "/").
	MainDisk string

	// Instances are the workloads reported besides the host.
	Instances []InstanceConfig
	// Docker turns on discovery of running Docker containers through
	// DockerSocket (default /var/run/docker.sock).
	Docker       bool
	DockerSocket string
	// HostProc, HostSys, HostEtc and HostRoot relocate /proc, /sys, /etc
	// and / for a reporter running in a container with the host's
	// filesystems mounted elsewhere.
	HostProc, HostSys, HostEtc, HostRoot string

	// BatchSize is the most samples per request in Run (default 50). Once
	// sends everything waiting, up to metric.MaxSamplesPerBatch a request.
	BatchSize int
	// MaxBatchBytes bounds a request's uncompressed body (default 512 KiB);
	// a 413 answer halves the batch and tries again.
	MaxBatchBytes int
	// HTTPClient sends the requests (default: a plain client). Timeout
	// applies to each request either way.
	HTTPClient *http.Client
	// Timeout bounds one request (default 10s).
	Timeout time.Duration
	// RetryMin and RetryMax bound the exponential backoff between retries
	// (defaults 1s and 60s); each wait is jittered.
	RetryMin, RetryMax time.Duration
	// AuthRetryMin and AuthRetryMax bound the backoff after the server
	// refused the host's credentials (401/403; defaults 30s and 10m): only
	// an operator can fix that, so there is no point asking often. The
	// samples stay spooled meanwhile.
	AuthRetryMin, AuthRetryMax time.Duration
	// OnceAttempts is how many times Once tries to deliver before giving up
	// (default 3); the samples stay spooled for the next run.
	OnceAttempts int
	// ShutdownTimeout is how long Run keeps sending after its context ends
	// (default 5s). Whatever is left stays spooled.
	ShutdownTimeout time.Duration
	// SpoolMaxBytes and SpoolMaxAge bound the spool (defaults 64 MiB and
	// 7 days); beyond them the oldest samples are dropped and counted.
	SpoolMaxBytes int64
	SpoolMaxAge   time.Duration
	// BaselineWindow is the pause between the two readings taken when no
	// previous CPU reading exists (default 1s).
	BaselineWindow time.Duration

	// Version is reported in the host info and the User-Agent.
	Version string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// ErrConfig marks an invalid Config (from New, or from Run and Once when
// something they need is missing): fix the configuration, don't retry.
var ErrConfig = errors.New("reporter config")

func configError(err error) error { return fmt.Errorf("%w: %w", ErrConfig, err) }

// Defaults.
const (
	DefaultInterval      = 10 * time.Second
	DefaultBatchSize     = 50
	DefaultMaxBatchBytes = 512 << 10
	DefaultTimeout       = 10 * time.Second
	DefaultRetryMin      = time.Second
	DefaultRetryMax      = time.Minute
	DefaultAuthRetryMin  = 30 * time.Second
	DefaultAuthRetryMax  = 10 * time.Minute
	DefaultOnceAttempts  = 3
	DefaultShutdown      = 5 * time.Second
)

// LogValue keeps the host key out of every log line, whatever logs the
// config: only whether one is set is shown.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("ingestUrl", c.IngestURL),
		slog.String("serverId", c.ServerID),
		slog.Bool("hostKeySet", len(c.HostKey) > 0),
		slog.Duration("interval", c.Interval),
		slog.String("stateDir", c.StateDir),
		slog.String("mainDisk", c.MainDisk),
		slog.Int("instances", len(c.Instances)),
		slog.Bool("docker", c.Docker),
	)
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.MainDisk == "" {
		c.MainDisk = "/"
	}
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	c.BatchSize = min(c.BatchSize, metric.MaxSamplesPerBatch)
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.RetryMin <= 0 {
		c.RetryMin = DefaultRetryMin
	}
	if c.RetryMax <= 0 {
		c.RetryMax = DefaultRetryMax
	}
	c.RetryMax = max(c.RetryMax, c.RetryMin)
	if c.AuthRetryMin <= 0 {
		c.AuthRetryMin = DefaultAuthRetryMin
	}
	if c.AuthRetryMax <= 0 {
		c.AuthRetryMax = DefaultAuthRetryMax
	}
	c.AuthRetryMax = max(c.AuthRetryMax, c.AuthRetryMin)
	if c.OnceAttempts <= 0 {
		c.OnceAttempts = DefaultOnceAttempts
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdown
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// validate checks what every mode needs.
func (c Config) validate() error {
	if c.ServerID == "" {
		return fmt.Errorf("server id is required (VITALS_SERVER_ID)")
	}
	if !metric.ValidServerID(c.ServerID) {
		return fmt.Errorf("server id %q: must be 1-128 characters of letters, digits, '.', '_' or '-'", c.ServerID)
	}
	if c.Interval < time.Second {
		return fmt.Errorf("interval %s: must be at least 1s (the ingest keeps one sample per second)", c.Interval)
	}
	if c.IngestURL != "" {
		if err := metric.CheckIngestURL(c.IngestURL); err != nil {
			return err
		}
	}
	for _, ic := range c.Instances {
		if err := ic.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// validateSending checks what Run and Once need on top.
func (c Config) validateSending() error {
	switch {
	case c.IngestURL == "":
		return fmt.Errorf("ingest url is required (VITALS_INGEST_URL)")
	case len(c.HostKey) == 0:
		return fmt.Errorf("host key is required (VITALS_HOST_KEY or VITALS_HOST_KEY_FILE; `vitalsctl host add %s` makes one)", c.ServerID)
	case !validHostKey(c.HostKey):
		// Caught here rather than as a 401 on every batch (each one
		// dropped): a truncated paste or a stray quote is the usual cause.
		// The key itself is never echoed.
		return fmt.Errorf("host key: want the %d hex characters `vitalsctl host add` printed, got %d characters that are not that; check VITALS_HOST_KEY or the key file for a truncated copy or stray quotes", 2*auth.HostKeyBytes, len(c.HostKey))
	case c.StateDir == "":
		return fmt.Errorf("state directory is required (VITALS_STATE_DIR)")
	}
	return nil
}

// validHostKey reports whether k has the form auth.NewHostKey makes.
func validHostKey(k []byte) bool {
	if len(k) != 2*auth.HostKeyBytes {
		return false
	}
	_, err := hex.DecodeString(string(k))
	return err == nil
}
