package config

import "go.yaml.in/yaml/v3"

// The raw types mirror the YAML. Durations and sizes stay strings until validation
// so a bad value is reported with its path, and optional values are pointers so a
// per-instance override can tell "not set" from "set to zero".
type rawConfig struct {
	Interval      *string        `yaml:"interval"`
	Timeouts      *rawTimeouts   `yaml:"timeouts"`
	ConfigRefresh *string        `yaml:"config_refresh"`
	InfoRefresh   *string        `yaml:"info_refresh"`
	FastPoll      *string        `yaml:"fast_poll"`
	Mode          *string        `yaml:"mode"`
	StateDir      *string        `yaml:"state_dir"`
	RuntimeDir    *string        `yaml:"runtime_dir"`
	MetricsListen *string        `yaml:"metrics_listen"`
	Thresholds    *rawThresholds `yaml:"thresholds"`
	Remedies      yaml.Node      `yaml:"remedies"`
	Ignore        []string       `yaml:"ignore_findings"`
	Instances     []rawInstance  `yaml:"instances"`
	Preflight     *rawPreflight  `yaml:"preflight"`
}

type rawPreflight struct {
	FixTruncatedTail *bool   `yaml:"fix_truncated_tail"`
	MaxTruncateBytes *string `yaml:"max_truncate_bytes"`
}

type rawTimeouts struct {
	Connect *string `yaml:"connect"`
	Command *string `yaml:"command"`
}

type rawInstance struct {
	Name          string         `yaml:"name"`
	Addr          string         `yaml:"addr"`
	Username      string         `yaml:"username"`
	Password      string         `yaml:"password"`
	PasswordFile  string         `yaml:"password_file"`
	TLS           *rawTLS        `yaml:"tls"`
	ConfigCommand *string        `yaml:"config_command"`
	HostChecks    *string        `yaml:"host_checks"`
	LogFile       string         `yaml:"log_file"`
	Ignore        []string       `yaml:"ignore_findings"`
	Thresholds    *rawThresholds `yaml:"thresholds"`
	Remedies      yaml.Node      `yaml:"remedies"`
}

type rawTLS struct {
	CA                 string `yaml:"ca"`
	Cert               string `yaml:"cert"`
	Key                string `yaml:"key"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

type rawThresholds struct {
	FragmentationRatio    *float64 `yaml:"fragmentation_ratio"`
	FragmentationMinBytes *string  `yaml:"fragmentation_min_bytes"`
	MaxmemoryUsedPercent  *float64 `yaml:"maxmemory_used_percent"`
	AOFGrowthRatio        *float64 `yaml:"aof_growth_ratio"`
	AOFBufferBytes        *string  `yaml:"aof_buffer_bytes"`
	DiskUsedPercent       *float64 `yaml:"disk_used_percent"`
	ForkSlow              *string  `yaml:"fork_slow"`
	CgroupForkFactor      *float64 `yaml:"cgroup_fork_factor"`
	ForkHeadroomFactor    *float64 `yaml:"fork_headroom_factor"`
	SwapBytes             *string  `yaml:"swap_bytes"`
	ReplLinkDownGrace     *string  `yaml:"repl_link_down_grace"`
	StaleTempMinAge       *string  `yaml:"stale_temp_min_age"`
}
