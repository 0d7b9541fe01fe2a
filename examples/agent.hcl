# An agent configuration for one node. Start it with
#   hush agent -config /etc/hush/agent.hcl
# Flags given on the command line override these settings.

# Where the store, its keyring and the first root token live. Back it up;
# the keyring is the only key to the secrets in the store.
data_dir = "/var/lib/hush"

# The HTTP API. On an address other than loopback the agent serves HTTPS
# (the tls block below), or plain HTTP only with insecure_http = true.
bind = "127.0.0.1:4747"

# tls {
#   cert_file       = "/etc/hush/hush-server.pem"      # hush tls cert create -server
#   key_file        = "/etc/hush/hush-server-key.pem"
#   ca_file         = "/etc/hush/hush-ca.pem"
#   verify_incoming = true                         # mutual TLS
#   min_version     = "tls12"
# }

cluster   = "default"
node_name = "gpu-node-1"

log_level = "info"
log_json  = false

# Each run's sealed log is capped on disk: past the cap its oldest output
# is dropped, and readers see a line saying how much. A run spec may ask
# for less with max_log_size, never more. Default "64MiB".
max_log_size = "64MiB"

# Runs outlive the agent: when it stops (SIGTERM for an upgrade, or a
# crash), its runs go on, and the next agent on this data dir adopts them.
# Set false to stop every run when the agent shuts down. Default true
# (a -dev agent without a data dir always stops its runs).
leave_runs_on_shutdown = true

# After `hush operator keyring rotate`, at most this many records a second
# are sealed again under the new key in the background. Default 2000.
# keyring_reseal_rate = 2000

# Replace each secret value with *** in the logs of runs whose spec does
# not set mask_secrets. Default false: a run that prints a secret shows it.
# mask_secrets = true

# An audit log: a JSON line as each authenticated request comes and ends,
# as runs start and as references resolve; tokens HMAC'd, never a value.
# Requests are refused while it cannot be written. SIGHUP reopens it.
# audit {
#   path = "/var/log/hush/audit.log"
# }

# The key that wraps the keyring, kept outside the data dir, so that a copy
# of the data dir alone opens nothing. Default: seal "file" with its key
# beside the data dir, at <data_dir>.seal.key. Also seal "env" { var = ... }
# and seal "transit" { address, token, key_name, mount_path } (Vault).
# seal "file" {
#   path = "/etc/hush/seal.key"
# }

# Prometheus metrics: the API serves /v1/metrics to management tokens;
# metrics_bind serves them here to anyone, for a Prometheus without a
# token (see examples/prometheus.yml). Default: none.
# metrics_bind = "127.0.0.1:9747"

# How long the API waits on a client, how many it serves at once, and how
# fast one token may ask (past that: 429 with Retry-After). These are the
# defaults; a followed log or a blocking query is never cut by them.
http {
  read_header_timeout = "10s"
  read_timeout        = "30s"
  write_timeout       = "60s"
  idle_timeout        = "2m"
  max_connections     = 1024
  rate_limit          = 100
  rate_burst          = 1000
}

# Provider plugins: executables named hush-provider-NAME.
plugin_dir = "/opt/hush/plugins"

# plugin "vault" {
#   path   = "/opt/hush/plugins/hush-provider-vault"
#   sha256 = "<output of sha256sum>"
#   config {
#     address = "https://vault.internal:8200"
#   }
#   # Which references users may name (without allow blocks: management
#   # tokens only). ${user} is the user's own name; * is any run of characters.
#   allow {
#     users = ["*"]
#     refs  = ["secret/data/${user}/*"]
#   }
# }

# What runs may ask for in total with compute: {cpus, memory}: a run that
# asks for more is refused, one that asks for more than is free waits, in
# submit order. Default: the host's CPUs and memory.
# node_cpus   = 30
# node_memory = "120GiB"

runtime "containerd" {
  address    = "/run/containerd/containerd.sock"
  namespace  = "hush"
  stop_grace = "10s"

  # GPUs, each given whole to one run at a time: the devices of these CDI
  # kinds (but "all") in the Container Device Interface specs of these
  # dirs, such as the one `nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml`
  # writes. These are the defaults; cdi_spec_dirs = [] finds none.
  cdi_spec_dirs = ["/etc/cdi", "/var/run/cdi"]
  gpu_kinds     = ["nvidia.com/gpu"]
  # On a host without CDI specs, list the device nodes instead; each
  # appears at its own path in the run's container, and nothing else does.
  # gpu_devices = ["/dev/nvidia0", "/dev/nvidia1"]
}

# Without containerd, runs execute on the host through the exec runtime
# (delete the containerd block above to use it). As root, the agent then
# needs to know which users runs execute as: uid_range gives each active
# run a uid of its own, so that runs cannot read each other's secrets;
# reserve the range for this agent. user = "NAME" runs every run as one
# account instead, which does not keep runs apart.
# runtime "exec" {
#   uid_range  = "700000000-700065535"
#   # user     = "hush-run"
#   stop_grace = "10s"
# }
