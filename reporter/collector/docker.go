package collector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// dockerClient speaks just enough of the Docker Engine API to list running
// containers and read one stats snapshot each. It uses no Docker SDK: two
// GET requests do not justify its dependency tree in a host agent.
type dockerClient struct {
	socket string // checked before each tick: Docker may start later
	http   *http.Client
	base   string // "http://docker" over the socket; an httptest URL in tests
}

// dockerTimeout bounds one tick's Docker calls, so a wedged daemon delays a
// sample by at most this.
const dockerTimeout = 5 * time.Second

func newDockerClient(socket string) *dockerClient {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConns:    2,
		IdleConnTimeout: time.Minute,
	}
	return &dockerClient{socket: socket, http: &http.Client{Transport: tr}, base: "http://docker"}
}

// errNoDocker means the socket is absent: Docker is not installed or not
// running, which is normal and not worth more than one log line.
var errNoDocker = errors.New("docker socket not found")

// dockerContainer is one entry of GET /containers/json.
type dockerContainer struct {
	ID    string   `json:"Id"`
	Names []string `json:"Names"`
	State string   `json:"State"`
}

// name is the container's primary name without Docker's leading slash.
func (c dockerContainer) name() string {
	for _, n := range c.Names {
		n = strings.TrimPrefix(n, "/")
		if n != "" && !strings.Contains(n, "/") { // "/other/alias" are link aliases
			return n
		}
	}
	if len(c.ID) >= 12 {
		return c.ID[:12]
	}
	return c.ID
}

// dockerStats is the part of GET /containers/{id}/stats we use. Field names
// are Docker's; cgroup v1 and v2 hosts fill different memory stat keys.
type dockerStats struct {
	CPUStats struct {
		CPUUsage struct {
			TotalUsage uint64 `json:"total_usage"` // nanoseconds
		} `json:"cpu_usage"`
	} `json:"cpu_stats"`
	MemoryStats struct {
		Usage uint64            `json:"usage"`
		Limit uint64            `json:"limit"`
		Stats map[string]uint64 `json:"stats"`
	} `json:"memory_stats"`
	BlkioStats struct {
		IOServiceBytesRecursive []struct {
			Op    string `json:"op"`
			Value uint64 `json:"value"`
		} `json:"io_service_bytes_recursive"`
	} `json:"blkio_stats"`
}

// reading converts Docker's stats to the cgroup figures every other instance
// kind produces. Memory used is the working set (usage minus inactive file
// cache), as `docker stats` shows it.
func (s dockerStats) reading() cgroupReading {
	r := cgroupReading{
		cpuSec:   float64(s.CPUStats.CPUUsage.TotalUsage) / 1e9,
		hasCPU:   true,
		memLimit: s.MemoryStats.Limit,
	}
	inactive, ok := s.MemoryStats.Stats["inactive_file"] // cgroup v2
	if !ok {
		inactive = s.MemoryStats.Stats["total_inactive_file"] // cgroup v1
	}
	r.memUsed = s.MemoryStats.Usage - min(inactive, s.MemoryStats.Usage)
	for _, e := range s.BlkioStats.IOServiceBytesRecursive {
		switch strings.ToLower(e.Op) { // "Read" on v1, "read" on v2
		case "read":
			r.ioRead += e.Value
		case "write":
			r.ioWrite += e.Value
		}
	}
	return r
}

// containers lists running containers.
func (d *dockerClient) containers(ctx context.Context) ([]dockerContainer, error) {
	if d.socket != "" {
		if _, err := os.Stat(d.socket); errors.Is(err, fs.ErrNotExist) {
			return nil, errNoDocker
		}
	}
	var list []dockerContainer
	if err := d.get(ctx, "/containers/json", &list); err != nil {
		return nil, err
	}
	running := list[:0]
	for _, c := range list {
		if c.State == "" || c.State == "running" {
			running = append(running, c)
		}
	}
	return running, nil
}

// stats reads one snapshot; one-shot skips the daemon's second sample (a
// one-second wait per container): we compute CPU deltas ourselves.
func (d *dockerClient) stats(ctx context.Context, id string) (dockerStats, error) {
	var s dockerStats
	err := d.get(ctx, "/containers/"+url.PathEscape(id)+"/stats?stream=false&one-shot=true", &s)
	return s, err
}

func (d *dockerClient) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return fmt.Errorf("docker api %s: %w", path, err)
	}
	defer resp.Body.Close() //nolint:errcheck // read-only response body; a close error loses nothing
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("docker api %s: %s: %s", path, resp.Status, strings.TrimSpace(string(msg)))
	}
	// Stats bodies are a few KiB; the cap protects against a confused
	// daemon, not a hostile one (it has root anyway).
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(v); err != nil {
		return fmt.Errorf("docker api %s: decode: %w", path, err)
	}
	return nil
}
