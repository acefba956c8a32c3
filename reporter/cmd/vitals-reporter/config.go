package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vitals-dev/vitals/reporter"
	"github.com/vitals-dev/vitals/shared/metric"
)

// usageError is a mistake on the command line or in the configuration:
// exit status 2, like flag's own errors.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// fileConfig is the optional JSON config file (--config or VITALS_CONFIG).
// Every field is optional; environment variables and flags override it.
type fileConfig struct {
	IngestURL     string                    `json:"ingestUrl"`
	ServerID      string                    `json:"serverId"`
	HostKey       string                    `json:"hostKey"`
	HostKeyFile   string                    `json:"hostKeyFile"`
	Interval      string                    `json:"interval"`
	StateDir      string                    `json:"stateDir"`
	MainDisk      string                    `json:"mainDisk"`
	BatchSize     int                       `json:"batchSize"`
	Timeout       string                    `json:"timeout"`
	Docker        *bool                     `json:"docker"`
	DockerSocket  string                    `json:"dockerSocket"`
	SpoolMaxBytes int64                     `json:"spoolMaxBytes"`
	SpoolMaxAge   string                    `json:"spoolMaxAge"`
	LogFormat     string                    `json:"logFormat"`
	LogLevel      string                    `json:"logLevel"`
	Instances     []reporter.InstanceConfig `json:"instances"`
}

// settings is the merged configuration before it becomes a reporter.Config.
type settings struct {
	fileConfig
	configPath string
	instances  []reporter.InstanceConfig
}

// defaultStateDir is where packages and the systemd unit keep state;
// systemd's StateDirectory= passes its path in $STATE_DIRECTORY.
const defaultStateDir = "/var/lib/vitals-reporter"

// loadConfig merges, lowest precedence first: defaults, the config file,
// the environment, then flags. It never returns the key in an error.
func loadConfig(mode string, args []string, getenv func(string) string, stderr io.Writer) (reporter.Config, logSettings, error) {
	fs := flag.NewFlagSet("vitals-reporter "+mode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		configPath   = fs.String("config", "", "JSON config file (env VITALS_CONFIG)")
		envFile      = fs.String("env-file", "", "KEY=VALUE file read as systemd reads EnvironmentFile=, e.g. the one `vitalsctl host add` printed; its values override the environment's (env VITALS_ENV_FILE)")
		ingestURL    = fs.String("ingest-url", "", "ingest endpoint, e.g. https://vitals.example.com/api/ingest (env VITALS_INGEST_URL)")
		serverID     = fs.String("server-id", "", "this host's server id (env VITALS_SERVER_ID; default: hostname)")
		keyFile      = fs.String("host-key-file", "", "file holding the host key (env VITALS_HOST_KEY_FILE, or the key itself in VITALS_HOST_KEY)")
		interval     = fs.String("interval", "", "time between samples in run mode, e.g. 10s (env VITALS_INTERVAL; default 10s)")
		stateDir     = fs.String("state-dir", "", "spool and counters directory (env VITALS_STATE_DIR; default $STATE_DIRECTORY or "+defaultStateDir+")")
		mainDisk     = fs.String("main-disk", "", "path whose filesystem is the main disk (env VITALS_MAIN_DISK; default /)")
		batchSize    = fs.Int("batch-size", 0, "most samples per request in run mode (env VITALS_BATCH_SIZE; default 50)")
		timeout      = fs.String("timeout", "", "per-request timeout (env VITALS_TIMEOUT; default 10s)")
		docker       = fs.String("docker", "", "discover Docker containers: true or false (env VITALS_DOCKER)")
		dockerSocket = fs.String("docker-socket", "", "Docker API socket (env VITALS_DOCKER_SOCKET; default /var/run/docker.sock)")
		spoolBytes   = fs.Int64("spool-max-bytes", 0, "spool size bound in bytes (env VITALS_SPOOL_MAX_BYTES; default 64 MiB)")
		spoolAge     = fs.String("spool-max-age", "", "spool age bound, e.g. 7d (env VITALS_SPOOL_MAX_AGE; default 7d)")
		logFormat    = fs.String("log-format", "", "text or json (env VITALS_LOG_FORMAT; default text)")
		logLevel     = fs.String("log-level", "", "debug, info, warn or error (env VITALS_LOG_LEVEL; default info)")
		instances    instanceFlags
	)
	fs.Var(&instances, "instance", "an instance, repeatable: name=web,process=nginx[,data=/srv/www] (env VITALS_INSTANCES, ';'-separated); keys: name id pid process cmdline pidfile cgroup data")
	if err := fs.Parse(args); err != nil {
		return reporter.Config{}, logSettings{}, usageError{err}
	}
	if fs.NArg() > 0 {
		return reporter.Config{}, logSettings{}, usagef("unexpected argument %q (flags go after the mode: vitals-reporter %s --flag value)", fs.Arg(0), mode)
	}

	// The env file acts as if its lines were in the environment; like
	// systemd's EnvironmentFile= over Environment=, they win over the
	// process's own variables (the crontab's), and flags win over both.
	if path := first(*envFile, getenv("VITALS_ENV_FILE")); path != "" {
		vars, err := readEnvFile(path, stderr)
		if err != nil {
			return reporter.Config{}, logSettings{}, usageError{err}
		}
		delete(vars, "VITALS_ENV_FILE") // no chains of files
		processEnv := getenv
		getenv = func(k string) string {
			if v, ok := vars[k]; ok {
				return v
			}
			return processEnv(k)
		}
	}

	var s settings
	s.configPath = first(*configPath, getenv("VITALS_CONFIG"))
	if s.configPath != "" {
		fc, err := readConfigFile(s.configPath)
		if err != nil {
			return reporter.Config{}, logSettings{}, usageError{err}
		}
		s.fileConfig = fc
		s.instances = fc.Instances
	}
	envInstances, err := parseInstanceList(getenv("VITALS_INSTANCES"))
	if err != nil {
		return reporter.Config{}, logSettings{}, usagef("VITALS_INSTANCES: %v", err)
	}
	if len(envInstances) > 0 {
		s.instances = envInstances
	}
	if len(instances) > 0 {
		s.instances = instances
	}

	cfg := reporter.Config{
		IngestURL:    first(*ingestURL, getenv("VITALS_INGEST_URL"), s.IngestURL),
		ServerID:     first(*serverID, getenv("VITALS_SERVER_ID"), s.ServerID),
		StateDir:     first(*stateDir, getenv("VITALS_STATE_DIR"), s.StateDir, getenv("STATE_DIRECTORY"), defaultStateDir),
		MainDisk:     first(*mainDisk, getenv("VITALS_MAIN_DISK"), s.MainDisk),
		DockerSocket: first(*dockerSocket, getenv("VITALS_DOCKER_SOCKET"), s.DockerSocket),
		Instances:    s.instances,
		HostProc:     getenv("HOST_PROC"),
		HostSys:      getenv("HOST_SYS"),
		HostEtc:      getenv("HOST_ETC"),
		HostRoot:     getenv("HOST_ROOT"),
		Version:      version,
	}
	// systemd may pass several state directories separated by ':'.
	cfg.StateDir, _, _ = strings.Cut(cfg.StateDir, ":")
	idFromHostname := cfg.ServerID == ""
	if idFromHostname {
		h, err := os.Hostname()
		if err != nil {
			return reporter.Config{}, logSettings{}, usagef("server id: not configured and the hostname is unreadable: %v", err)
		}
		cfg.ServerID = h
	}

	if v := first(*interval, getenv("VITALS_INTERVAL"), s.Interval); v != "" {
		d, err := parseDuration(v)
		if err != nil {
			return reporter.Config{}, logSettings{}, usagef("interval: %v", err)
		}
		cfg.Interval = d
	}
	if v := first(*timeout, getenv("VITALS_TIMEOUT"), s.Timeout); v != "" {
		d, err := parseDuration(v)
		if err != nil {
			return reporter.Config{}, logSettings{}, usagef("timeout: %v", err)
		}
		cfg.Timeout = d
	}
	if v := first(*spoolAge, getenv("VITALS_SPOOL_MAX_AGE"), s.SpoolMaxAge); v != "" {
		d, err := parseDuration(v)
		if err != nil {
			return reporter.Config{}, logSettings{}, usagef("spool max age: %v", err)
		}
		cfg.SpoolMaxAge = d
	}
	if cfg.BatchSize, err = firstInt("batch size", int64(*batchSize), getenv("VITALS_BATCH_SIZE"), int64(s.BatchSize)); err != nil {
		return reporter.Config{}, logSettings{}, err
	}
	if cfg.SpoolMaxBytes, err = firstInt64("spool max bytes", *spoolBytes, getenv("VITALS_SPOOL_MAX_BYTES"), s.SpoolMaxBytes); err != nil {
		return reporter.Config{}, logSettings{}, err
	}
	if v := first(*docker, getenv("VITALS_DOCKER")); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return reporter.Config{}, logSettings{}, usagef("docker: %q is not true or false", v)
		}
		cfg.Docker = b
	} else if s.Docker != nil {
		cfg.Docker = *s.Docker
	}

	// The key: a file (flag, env, config file) or the key itself (env,
	// config file). Only print mode may go without.
	var keyPath, keyFileID string
	switch {
	case *keyFile != "" || getenv("VITALS_HOST_KEY_FILE") != "":
		keyPath = first(*keyFile, getenv("VITALS_HOST_KEY_FILE"))
		cfg.HostKey, keyFileID, err = readKeyFile(keyPath, stderr)
	case getenv("VITALS_HOST_KEY") != "":
		cfg.HostKey = []byte(strings.TrimSpace(getenv("VITALS_HOST_KEY")))
	case s.HostKeyFile != "":
		keyPath = s.HostKeyFile
		cfg.HostKey, keyFileID, err = readKeyFile(keyPath, stderr)
	case s.HostKey != "":
		cfg.HostKey = []byte(strings.TrimSpace(s.HostKey))
	}
	if err != nil {
		return reporter.Config{}, logSettings{}, usageError{err}
	}
	if keyFileID != "" && keyFileID != cfg.ServerID {
		// The key belongs to another server id: every batch would get a
		// 401. This is what the old cron recipe did on a host whose
		// hostname is not its enrolled id.
		from := ""
		if idFromHostname {
			from = " (the hostname; VITALS_SERVER_ID is not set)"
		}
		return reporter.Config{}, logSettings{}, usagef("host key file %s is the env file of server id %q, but this reporter's server id is %q%s: "+
			"read the whole file with --env-file %s (VITALS_ENV_FILE) rather than only its key", keyPath, keyFileID, cfg.ServerID, from, keyPath)
	}

	ls := logSettings{
		format: first(*logFormat, getenv("VITALS_LOG_FORMAT"), s.LogFormat, "text"),
		level:  first(*logLevel, getenv("VITALS_LOG_LEVEL"), s.LogLevel, "info"),
	}
	if err := ls.validate(); err != nil {
		return reporter.Config{}, logSettings{}, usageError{err}
	}
	return cfg, ls, nil
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func firstInt(what string, flagVal int64, env string, file int64) (int, error) {
	n, err := firstInt64(what, flagVal, env, file)
	return int(n), err
}

func firstInt64(what string, flagVal int64, env string, file int64) (int64, error) {
	switch {
	case flagVal != 0:
		if flagVal < 0 {
			return 0, usagef("%s: must be positive", what)
		}
		return flagVal, nil
	case env != "":
		n, err := strconv.ParseInt(env, 10, 64)
		if err != nil || n <= 0 {
			return 0, usagef("%s: %q is not a positive whole number", what, env)
		}
		return n, nil
	case file < 0:
		return 0, usagef("%s: must be positive", what)
	}
	return file, nil
}

// parseDuration takes Go durations ("10s", "1m30s"), days ("7d") and bare
// seconds ("10"), since cron-minded operators write all three.
func parseDuration(s string) (time.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 {
			return 0, fmt.Errorf("%q must be positive", s)
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := metric.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration like 10s, 5m or 7d", s)
	}
	return d, nil
}

func readConfigFile(path string) (fileConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return fileConfig{}, fmt.Errorf("config file: %w", err)
	}
	var fc fileConfig
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields() // a typo'd field should not be silently ignored
	if err := dec.Decode(&fc); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return fileConfig{}, fmt.Errorf("config file %s: malformed JSON at byte %d: %w", path, se.Offset, se)
		}
		return fileConfig{}, fmt.Errorf("config file %s: %w", path, err)
	}
	return fc, nil
}

// readKeyFile reads a host key file, warning when others can read it. The
// file holds the key alone, or is the env file `vitalsctl host add` prints
// (parsed as systemd would); then serverID is its VITALS_SERVER_ID, if any.
func readKeyFile(path string, stderr io.Writer) (key []byte, serverID string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("host key file: %w", err)
	}
	defer f.Close() //nolint:errcheck // read-only key file; a close error loses nothing
	if st, err := f.Stat(); err == nil && st.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(stderr, "warning: host key file %s is readable by other users (mode %o); chmod 600 it\n", path, st.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxEnvFileBytes))
	if err != nil {
		return nil, "", fmt.Errorf("host key file: %w", err)
	}
	key = bytes.TrimSpace(b)
	if vars, _ := parseEnvFile(b); len(vars) > 0 {
		key = nil
		for _, v := range vars {
			switch v.key {
			case "VITALS_HOST_KEY":
				key = []byte(strings.TrimSpace(v.value))
			case "VITALS_SERVER_ID":
				serverID = v.value
			}
		}
	}
	if len(key) == 0 {
		return nil, "", fmt.Errorf("host key file %s is empty or has no VITALS_HOST_KEY line", path)
	}
	return key, serverID, nil
}

// instanceFlags collects repeated --instance flags.
type instanceFlags []reporter.InstanceConfig

func (f *instanceFlags) String() string { return "" }

func (f *instanceFlags) Set(v string) error {
	ic, err := parseInstance(v)
	if err != nil {
		return err
	}
	*f = append(*f, ic)
	return nil
}

// parseInstanceList parses VITALS_INSTANCES: specs separated by ';'.
func parseInstanceList(s string) ([]reporter.InstanceConfig, error) {
	var out []reporter.InstanceConfig
	for spec := range strings.SplitSeq(s, ";") {
		if strings.TrimSpace(spec) == "" {
			continue
		}
		ic, err := parseInstance(spec)
		if err != nil {
			return nil, err
		}
		out = append(out, ic)
	}
	return out, nil
}

var instanceKeys = []string{"name", "id", "pid", "process", "cmdline", "pidfile", "cgroup", "data"}

// parseInstance parses "name=web,process=nginx,data=/srv/www". A value may
// contain commas (a cmdline pattern like "a{1,3}") as long as what follows
// the comma does not look like another "key=" (letters then '=').
func parseInstance(spec string) (reporter.InstanceConfig, error) {
	var ic reporter.InstanceConfig
	for _, part := range splitSpec(strings.TrimSpace(spec)) {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return ic, fmt.Errorf("instance %q: %q is not key=value", spec, part)
		}
		switch k {
		case "name":
			ic.Name = v
		case "id":
			ic.ID = v
		case "pid":
			pid, err := strconv.Atoi(v)
			if err != nil || pid <= 0 {
				return ic, fmt.Errorf("instance %q: pid %q is not a process id", spec, v)
			}
			ic.PID = pid
		case "process":
			ic.Process = v
		case "cmdline":
			ic.Cmdline = v
		case "pidfile":
			ic.PIDFile = v
		case "cgroup":
			ic.Cgroup = v
		case "data":
			ic.DataPath = v
		default:
			return ic, fmt.Errorf("instance %q: unknown key %q (known: %s)", spec, k, strings.Join(instanceKeys, ", "))
		}
	}
	if err := ic.Validate(); err != nil {
		return ic, err
	}
	return ic, nil
}

// splitSpec splits at each comma that starts a new "key=": a word of
// letters and an equals sign.
func splitSpec(spec string) []string {
	var parts []string
	start := 0
	for i := 0; i < len(spec); i++ {
		if spec[i] == ',' && startsKey(spec[i+1:]) {
			parts = append(parts, spec[start:i])
			start = i + 1
		}
	}
	return append(parts, spec[start:])
}

func startsKey(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		case c == '=':
			return i > 0
		default:
			return false
		}
	}
	return false
}
