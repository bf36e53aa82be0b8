//! Command-line arguments (clap derive structs only).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Audit OCI container images for Go-in-container anti-patterns: binaries that cannot
/// start, leaked toolchains and caches, shells, root users, broken entrypoints.
#[derive(Debug, Parser)]
#[command(
    name = "imgaudit",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
#[command(
    after_help = "IMAGE forms (transports named as in skopeo):\n  oci:PATH[:TAG|@DIGEST]         OCI image layout directory\n  oci-archive:PATH[:TAG]         tar of an OCI image layout\n  docker-archive:PATH[:REF|:@N]  docker save tarball (classic or Docker 25+); REF as docker load\n                                 matches it (app = app:latest = docker.io/library/app:latest)\n  dir:PATH                       skopeo dir: image (manifest.json, version, blobs by digest)\n  rootfs:PATH                    unpacked root filesystem (config rules do not apply)\n  PATH                           any of the above, detected; tarballs may be gzip or zstd\n                                 compressed (docker save | gzip)\n  docker-daemon:NAME             image in the Docker engine ($DOCKER_HOST, the docker context, else\n                                 /var/run/docker.sock); NAME is a reference, an image ID or ID prefix\n  podman:NAME                    image in Podman (its API service: $CONTAINER_HOST, else\n                                 $XDG_RUNTIME_DIR/podman/podman.sock, /run/podman/podman.sock);\n                                 containers-storage:NAME is the same\n  containerd:NAME                image in containerd, read from its content store (--containerd-address,\n                                 --containerd-namespace); NAME is a reference or NAME@DIGEST\n  REF                            myapp:dev, alpine, ghcr.io/org/app:tag, host:5000/ns/app@sha256:…: the\n                                 local engine's image when an engine has it, else the registry's\n                                 (--image-src sets the order; the report's image.source says which)\n  docker://REF                   always a registry image (a local path or engine image of the same\n                                 name wins otherwise)\n\nCredentials (first found wins): --creds/--registry-token, --authfile, $REGISTRY_AUTH_FILE,\n$DOCKER_CONFIG/config.json, ~/.docker/config.json (auths, credHelpers, credsStore).\n\nExit status: 0 no finding at or above --fail-on, 1 findings, 2 the image could not be audited."
)]
pub(crate) struct Cli {
    /// Subcommand.
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    /// Audit options.
    #[command(flatten)]
    pub(crate) audit: AuditArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// List the rules.
    Rules(RulesArgs),
    /// Print one rule's documentation.
    Explain {
        /// Rule id (GO001) or name (interpreter-missing).
        id: String,
    },
    /// Run the Kubernetes validating admission webhook (HTTPS): POST /validate takes
    /// admission.k8s.io/v1 AdmissionReviews for Pods and pod-template workloads.
    Serve(Box<ServeArgs>),
    /// Show, prune or clear the layer store (the disk cache of layer analyses).
    Cache(CacheArgs),
    /// Audit every image of a registry, of repositories or of a list: each manifest once,
    /// each layer once (through the layer store). One JSON report per line on stdout, the
    /// summary on stderr; sharded (--shard, or a Kubernetes Indexed Job) and resumable.
    Sweep(Box<SweepArgs>),
}

/// `imgaudit sweep`.
#[derive(Debug, Args)]
pub(crate) struct SweepArgs {
    /// What to sweep: REGISTRY (every repository of its catalog, every tag), REGISTRY/REPO
    /// (every tag), or an image REGISTRY/REPO:TAG or @DIGEST.
    #[arg(value_name = "REGISTRY[/REPO]")]
    pub(crate) targets: Vec<String>,
    /// File of more targets, one per line (# comments).
    #[arg(long, value_name = "FILE")]
    pub(crate) list: Option<std::path::PathBuf>,
    /// Take only this shard's images: I/N (default: $JOB_COMPLETION_INDEX/$JOB_COMPLETIONS
    /// in a Kubernetes Indexed Job, else all).
    #[arg(long, value_name = "I/N")]
    pub(crate) shard: Option<String>,
    /// Skip the images whose reports are already in FILE (the JSON Lines of an earlier run;
    /// append this run's output to it: `--resume out.jsonl >> out.jsonl`).
    #[arg(long, value_name = "FILE")]
    pub(crate) resume: Option<std::path::PathBuf>,
    /// Also write the summary (JSON) to FILE.
    #[arg(long, value_name = "FILE")]
    pub(crate) summary: Option<std::path::PathBuf>,
    /// Images audited (and tags resolved) at once.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub(crate) parallel: usize,
    /// Bytes of layer analyses kept in memory in front of the disk or Redis store.
    #[arg(long, value_name = "BYTES", default_value_t = 512 << 20)]
    pub(crate) layer_cache_bytes: u64,
    /// Log more to stderr (-v info, -vv debug).
    #[arg(long, short = 'v', action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// Policy, profile, platforms.
    #[command(flatten)]
    pub(crate) scope: ScopeArgs,
    /// Registry options.
    #[command(flatten)]
    pub(crate) registry: RegistryArgs,
    /// Layer store options.
    #[command(flatten)]
    pub(crate) store: StoreArgs,
}

/// `imgaudit cache`.
#[derive(Debug, Args)]
pub(crate) struct CacheArgs {
    /// What to do.
    #[command(subcommand)]
    pub(crate) action: CacheAction,
}

/// `imgaudit cache` actions.
#[derive(Debug, Subcommand)]
pub(crate) enum CacheAction {
    /// Directory, entries, bytes, bound.
    Info(StoreArgs),
    /// Remove entries of other analysis versions, corrupt entries, files left by killed
    /// writers, and the least recently used entries past --cache-max-bytes.
    Prune(StoreArgs),
    /// Remove every entry.
    Clear(StoreArgs),
}

/// Where layer analyses are kept between audits (the layer store).
#[derive(Debug, Args)]
#[command(next_help_heading = "Layer store")]
pub(crate) struct StoreArgs {
    /// Directory of the disk layer store (default: $XDG_CACHE_HOME/imgaudit, else
    /// ~/.cache/imgaudit).
    #[arg(long, value_name = "DIR")]
    pub(crate) cache_dir: Option<PathBuf>,
    /// Keep no layer analyses between runs.
    #[arg(long, conflicts_with_all = ["cache_dir", "cache"])]
    pub(crate) no_cache: bool,
    /// Size bound of the disk layer store; least recently used entries go first.
    #[arg(long, value_name = "BYTES", default_value_t = audit_core::limits::DISK_STORE_MAX_BYTES)]
    pub(crate) cache_max_bytes: u64,
    /// Shared layer store in Redis instead of the disk one: redis://[:PASSWORD@]HOST[:PORT][/DB]
    /// or rediss:// (TLS). Needs --cache-key-file.
    #[arg(long, value_name = "URL")]
    pub(crate) cache: Option<String>,
    /// File holding the shared key that seals Redis entries (HMAC-SHA256); every reader and
    /// writer needs the same key.
    #[arg(long, value_name = "FILE")]
    pub(crate) cache_key_file: Option<PathBuf>,
    /// Seconds a Redis entry lives.
    #[arg(long, value_name = "SECS", default_value_t = audit_core::limits::REDIS_ENTRY_TTL_SECS)]
    pub(crate) cache_entry_ttl: u64,
}

/// `imgaudit serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR:PORT", default_value = "0.0.0.0:8443")]
    pub(crate) listen: String,
    /// PEM certificate chain served (reloaded when the file changes).
    #[arg(long, value_name = "FILE")]
    pub(crate) tls_cert: PathBuf,
    /// PEM private key of the certificate (reloaded when the file changes).
    #[arg(long, value_name = "FILE")]
    pub(crate) tls_key: PathBuf,
    /// Seconds between checks of the certificate files for changes.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub(crate) tls_reload_interval: f64,
    /// Policy, profile, platforms.
    #[command(flatten)]
    pub(crate) scope: ScopeArgs,
    /// Answer within this many seconds, by the failure policy when an audit is not done
    /// (it goes on in the background). Keep it below the webhook's timeoutSeconds.
    #[arg(long, value_name = "SECS", default_value_t = 8.0)]
    pub(crate) deadline: f64,
    /// Seconds a tag's resolved digest is reused (0: a HEAD request on every admission).
    #[arg(long, value_name = "SECS", default_value_t = 0.0)]
    pub(crate) resolve_ttl: f64,
    /// Seconds an audit result is kept (by manifest digest).
    #[arg(long, value_name = "SECS", default_value_t = 3600.0)]
    pub(crate) cache_ttl: f64,
    /// Seconds a failed audit is remembered before it is tried again.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub(crate) error_ttl: f64,
    /// Bytes of audit results kept (estimated; least recently used go first).
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20)]
    pub(crate) cache_bytes: u64,
    /// Bytes of per-layer analyses kept, so images sharing base layers audit fast.
    #[arg(long, value_name = "BYTES", default_value_t = 512 << 20)]
    pub(crate) layer_cache_bytes: u64,
    /// Audits run at once.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub(crate) max_audits: usize,
    /// Audits waiting or running at most; more are answered by the failure policy.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub(crate) max_queued_audits: usize,
    /// Client connections served at once (more wait to be accepted).
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub(crate) max_connections: usize,
    /// Largest request body accepted (413 above).
    #[arg(long, value_name = "BYTES", default_value_t = 4 << 20)]
    pub(crate) max_body_bytes: u64,
    /// Image references to audit at start-up, one per line (# comments); /readyz answers
    /// 200 once they are done.
    #[arg(long, value_name = "FILE")]
    pub(crate) prefetch: Option<PathBuf>,
    /// Seconds given to open requests after SIGTERM.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub(crate) shutdown_grace: f64,
    /// Answer Gatekeeper's external-data requests (POST /gatekeeper/images) within this many
    /// seconds; keep it below the Provider's timeout.
    #[arg(long, value_name = "SECS", default_value_t = 2.5)]
    pub(crate) provider_deadline: f64,
    /// Harbor's scanner adapter.
    #[command(flatten)]
    pub(crate) harbor: HarborArgs,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Json)]
    pub(crate) log_format: LogFormat,
    /// More logging (-v debug, -vv trace); the default is info.
    #[arg(long, short = 'v', action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// Registry options.
    #[command(flatten)]
    pub(crate) registry: RegistryArgs,
    /// Layer store behind the in-memory one: Redis (--cache, shared by replicas, which then
    /// also share verdicts) or a disk directory (--cache-dir); none by default.
    #[command(flatten)]
    pub(crate) store: StoreArgs,
}

/// `imgaudit serve`'s Harbor scanner adapter (docs/harbor.md).
#[derive(Debug, Args)]
pub(crate) struct HarborArgs {
    /// Serve Harbor's Pluggable Scanner API v1.2 on this address (its own listener).
    #[arg(long, value_name = "ADDR:PORT")]
    pub(crate) harbor_listen: Option<String>,
    /// Plain HTTP on --harbor-listen instead of HTTPS with --tls-cert (for in-cluster traffic
    /// that a network policy or a service mesh protects).
    #[arg(long, requires = "harbor_listen")]
    pub(crate) harbor_plain_http: bool,
    /// How Harbor authenticates to the adapter, as registered in Harbor.
    #[arg(long, value_enum, default_value_t = HarborAuthArg::None, requires = "harbor_listen")]
    pub(crate) harbor_auth: HarborAuthArg,
    /// The credential of --harbor-auth: `USER:PASSWORD` (basic), the token (bearer) or the
    /// key (api-key); one line.
    #[arg(long, value_name = "FILE")]
    pub(crate) harbor_auth_file: Option<PathBuf>,
    /// Scans accepted and not finished at most (per replica); more are refused with 429.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub(crate) harbor_max_queue: usize,
    /// Seconds a scan job and its report are kept (in Redis with --cache, else in memory).
    #[arg(long, value_name = "SECS", default_value_t = 3600.0)]
    pub(crate) harbor_job_ttl: f64,
    /// Bytes of scan jobs and reports kept in memory.
    #[arg(long, value_name = "BYTES", default_value_t = 256 << 20)]
    pub(crate) harbor_job_memory_bytes: u64,
}

/// Harbor's adapter authentication choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum HarborAuthArg {
    /// None.
    None,
    /// HTTP Basic.
    Basic,
    /// A Bearer token.
    Bearer,
    /// The X-ScannerAdapter-API-Key header.
    ApiKey,
}

/// Log formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Text,
}

/// `imgaudit rules`.
#[derive(Debug, Args)]
pub(crate) struct RulesArgs {
    /// Write the rule docs as Markdown into this directory (one page per rule + README.md).
    #[arg(long, value_name = "DIR")]
    pub(crate) markdown: Option<PathBuf>,
}

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum FormatArg {
    /// Human-readable.
    Text,
    /// Stable JSON (schema in docs/report-schema.md).
    Json,
    /// SARIF 2.1.0 for GitHub code scanning and other SARIF viewers.
    Sarif,
    /// CycloneDX 1.6 JSON SBOM: Go binaries with their modules and stdlib, OS packages.
    Cyclonedx,
    /// A compact Markdown summary for pull-request comments.
    Markdown,
}

/// When to colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorArg {
    /// When stdout is a terminal and NO_COLOR is unset.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Options of an audit.
#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    /// Images to audit.
    #[arg(value_name = "IMAGE", required = true)]
    pub(crate) images: Vec<String>,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = FormatArg::Text)]
    pub(crate) format: FormatArg,
    /// Write the report to FILE instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// Exit 1 when a finding is at or above this severity (default: the policy file's
    /// fail_on, else never).
    #[arg(long, value_name = "SEVERITY")]
    pub(crate) fail_on: Option<String>,
    /// Policy, profile, platforms.
    #[command(flatten)]
    pub(crate) scope: ScopeArgs,
    /// Ignore a rule (repeatable, added to the policy file's ignores): RULE or RULE:PATH-GLOB.
    #[arg(long, value_name = "RULE[:GLOB]")]
    pub(crate) ignore: Vec<String>,
    /// Oldest supported Go minor version for GO003 (e.g. 25 for go1.25).
    #[arg(long, value_name = "N")]
    pub(crate) go_min: Option<u32>,
    /// Bytes of each text file scanned for credentials (default 4 MiB; 0 turns content
    /// scanning off, for timing or when another scanner does it).
    #[arg(long, value_name = "BYTES")]
    pub(crate) secret_scan_bytes: Option<u64>,
    /// In text output, list every ELF binary, not only Go and broken ones.
    #[arg(long)]
    pub(crate) all_binaries: bool,
    /// Colour.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
    pub(crate) color: ColorArg,
    /// Log progress and decisions to stderr (-vv for more).
    #[arg(long, short = 'v', action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// No progress bars (they are drawn only when stderr is a terminal).
    #[arg(long, short = 'q')]
    pub(crate) quiet: bool,
    /// Registry options.
    #[command(flatten)]
    pub(crate) registry: RegistryArgs,
    /// Where a bare reference is looked for: comma-separated sources tried in order
    /// (docker, podman, containerd, remote); an engine that is not running or lacks the
    /// image is skipped.
    #[arg(
        long,
        value_name = "LIST",
        env = "IMGAUDIT_IMAGE_SRC",
        default_value = "docker,podman,containerd,remote",
        help_heading = "Registry"
    )]
    pub(crate) image_src: String,
    /// containerd's socket, for containerd:NAME (as `ctr --address`).
    #[arg(
        long,
        value_name = "PATH",
        env = "CONTAINERD_ADDRESS",
        default_value = "/run/containerd/containerd.sock",
        help_heading = "Engines"
    )]
    pub(crate) containerd_address: String,
    /// containerd namespace images are looked up in (as `ctr -n`; a Kubernetes node's
    /// images are in k8s.io).
    #[arg(
        long,
        value_name = "NS",
        env = "CONTAINERD_NAMESPACE",
        default_value = "default",
        help_heading = "Engines"
    )]
    pub(crate) containerd_namespace: String,
    /// Layer store options.
    #[command(flatten)]
    pub(crate) store: StoreArgs,
}

/// What an audit judges against and which platforms it reads: shared by the audit and
/// `serve`.
#[derive(Debug, Args)]
pub(crate) struct ScopeArgs {
    /// Policy file (default: ./imgaudit.toml when it exists; see docs/policy.md). `serve`
    /// also reads its [admission] table: thresholds, exemptions, allowed registries, failure
    /// policy.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Compare with a distroless profile (DL rules): auto, static, base, cc, NAME:nonroot, or a
    /// profile of the policy file. Without one (here or in the policy file) DL rules do not run.
    #[arg(long, value_name = "NAME")]
    pub(crate) profile: Option<String>,
    /// Platform to audit in a multi-platform image (default: the host's).
    #[arg(
        long,
        value_name = "OS/ARCH[/VARIANT]",
        conflicts_with = "all_platforms"
    )]
    pub(crate) platform: Option<String>,
    /// Audit every platform of a multi-platform image (for `serve`: any platform's findings
    /// count).
    #[arg(long)]
    pub(crate) all_platforms: bool,
    /// Layers analysed in parallel per audit (default: number of CPUs).
    #[arg(long, short = 'j', value_name = "N")]
    pub(crate) jobs: Option<usize>,
}

/// How to reach registries.
#[derive(Debug, Args)]
#[command(next_help_heading = "Registry")]
pub(crate) struct RegistryArgs {
    /// Registry user name and password (or access token) for every registry image.
    #[arg(long, value_name = "USER:PASS", conflicts_with = "registry_token")]
    pub(crate) creds: Option<String>,
    /// Bearer token sent as is to every registry.
    #[arg(long, value_name = "TOKEN")]
    pub(crate) registry_token: Option<String>,
    /// Docker/containers auth file to read credentials from (instead of $REGISTRY_AUTH_FILE,
    /// $DOCKER_CONFIG/config.json and ~/.docker/config.json).
    #[arg(long, value_name = "PATH")]
    pub(crate) authfile: Option<PathBuf>,
    /// PEM file of CA certificates to trust in addition to the system's (repeatable).
    #[arg(long, value_name = "PATH")]
    pub(crate) ca_file: Vec<PathBuf>,
    /// Directory whose *.crt files are CA certificates to trust (like skopeo --cert-dir).
    #[arg(long, value_name = "DIR")]
    pub(crate) cert_dir: Option<PathBuf>,
    /// Allow plain HTTP or unverified TLS for this registry host[:port] (repeatable).
    #[arg(long, value_name = "HOST")]
    pub(crate) insecure: Vec<String>,
    /// Give up pulling one image after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = audit_core::limits::REGISTRY_TOTAL_TIMEOUT_SECS)]
    pub(crate) timeout: u64,
}
