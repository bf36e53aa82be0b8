//! Every bound the auditor enforces on hostile input, with its value and its reason.
//!
//! Each constant is the default of a field of [`Limits`]; tests lower them to prove the
//! behaviour at the edge without building huge inputs. Exceeding an image-level bound is a
//! hard error naming the bound; exceeding a file-level bound records an "unknown" for that
//! file and the audit goes on.

/// Largest manifest or index document read: 4 MiB. Real manifests are a few KiB; the
/// distribution registry itself refuses manifests over 4 MiB. Exceeding it is an error.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// Largest image config read: 16 MiB. Configs carry history and labels; tens of KiB is
/// typical. Exceeding it is an error.
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// How deep indexes may nest (index → index → manifest). OCI allows nesting; real images use
/// one or two levels. Deeper is an error (it could otherwise be a reference cycle).
pub const MAX_INDEX_DEPTH: usize = 4;

/// Most layers per image: 1024. Docker and containerd refuse more than 127/128 layers in
/// practice. Exceeding it is an error.
pub const MAX_LAYERS: usize = 1024;

/// Most tar entries in one layer: 2,000,000. Each entry costs ~100 bytes of metadata in the
/// merged view, so this caps that table at ~200 MiB for a pathological layer. Exceeding it
/// is an error naming the layer.
pub const MAX_ENTRIES_PER_LAYER: u64 = 2_000_000;

/// Bytes of tar metadata read between two entries beyond the headers themselves: 1 MiB.
/// The tar reader holds GNU long names and links and PAX records whole in memory before it
/// yields the entry they describe; real ones are a few hundred bytes (a long path, an
/// xattr). A layer that declares a bigger record is an error, not a buffer the size of the
/// layer.
pub const MAX_TAR_EXTENSION_BYTES: u64 = 1 << 20;

/// Longest path accepted in a layer: 4096 bytes (Linux `PATH_MAX`). Longer entries are
/// recorded as anomalies and skipped.
pub const MAX_PATH_BYTES: usize = 4096;

/// Symlinks followed while resolving one path: 40, the kernel's `ELOOP` limit. More is a
/// typed loop error for that lookup, never a hang.
pub const MAX_SYMLINK_HOPS: u32 = 40;

/// Uncompressed bytes one layer may expand to before the expansion ratio is checked:
/// 256 MiB. Below this, any ratio is fine.
pub const BOMB_MIN_BYTES: u64 = 256 << 20;

/// Largest accepted ratio of uncompressed to compressed layer bytes once a layer is past
/// [`BOMB_MIN_BYTES`]: 250. gzip's best ratio is about 1030:1 on zeros and real layers stay
/// under 20:1; a layer past both bounds is treated as a decompression bomb (error).
pub const BOMB_MAX_RATIO: u64 = 250;

/// Largest zstd window accepted: 2^25 = 32 MiB (`windowLog` 25). Default compression levels
/// use at most 8 MiB; `--long`/ultra levels up to 128 MiB. The decoder allocates the window
/// a frame declares, so this bounds memory per zstd layer; a larger window is an error.
pub const ZSTD_WINDOW_LOG_MAX: u32 = 25;

/// Largest uncompressed size of one layer: 64 GiB, whatever its ratio. Error when exceeded.
pub const MAX_LAYER_UNCOMPRESSED: u64 = 64 << 30;

/// A layer blob longer than its descriptor says is counted up to 64 MiB past the declared
/// size, so that the error can state its real size; past that it says "more than".
pub const SIZE_MISMATCH_COUNT_BYTES: u64 = 64 << 20;

/// Largest uncompressed size of a compressed image tarball (`docker save | gzip`): 256 GiB,
/// whatever its ratio; [`BOMB_MIN_BYTES`] and [`BOMB_MAX_RATIO`] apply to it as to a layer.
/// Error when exceeded.
pub const MAX_ARCHIVE_UNCOMPRESSED: u64 = 256 << 30;

/// Members of a compressed image tarball up to 4 MiB (manifests, configs, `index.json`,
/// small layers) are kept in memory from the indexing pass, so that reading them does not
/// decompress the archive again; others are read by decompressing the archive up to them.
pub const ARCHIVE_KEEP_MEMBER_BYTES: u64 = 4 << 20;
/// Total bytes kept from one compressed tarball: 32 MiB. Past it, members are read by
/// decompressing again (slower, same answer).
pub const ARCHIVE_KEEP_BUDGET_BYTES: u64 = 32 << 20;

/// An image archive streamed from an engine (`GET /images/{name}/get`) is read in one
/// pass, its manifest last (`docker save`); members up to 64 KiB (`VERSION` files, small
/// layers) and JSON documents up to [`MAX_CONFIG_BYTES`] are kept in memory until the
/// manifest says what they are; larger members are analysed as layers while they stream.
pub const STREAM_KEEP_MEMBER_BYTES: u64 = 64 << 10;
/// Total bytes kept in memory from one streamed archive: 64 MiB (the largest config and
/// manifests, and small layers). Error when exceeded: a stream is never spooled to disk.
pub const STREAM_KEEP_BUDGET_BYTES: u64 = 64 << 20;
/// Most members in a streamed archive: 65,536 (`docker save` writes about three per layer,
/// and [`MAX_LAYERS`] layers at most are audited). Error when exceeded.
pub const STREAM_MAX_MEMBERS: usize = 65_536;
/// Bytes of a layer in flight between the thread reading an engine's stream and the thread
/// analysing the layer: 4 MiB per layer analysed at once (the reader moves on to the next
/// layer while the previous one's tail is analysed).
pub const STREAM_LAYER_BUFFER_BYTES: usize = 4 << 20;
/// An engine that sends nothing for 120 s while an image streams (or while it answers a
/// request) has stalled: error. `docker save` of a large layer on the vfs driver can take a
/// while to start, hence more than the registry's idle bound.
pub const ENGINE_IDLE_TIMEOUT_SECS: u64 = 120;
/// Connecting to an engine's socket: 5 s. A local socket answers at once or not at all.
pub const ENGINE_CONNECT_TIMEOUT_SECS: u64 = 5;
/// Largest answer to an engine's JSON requests (`GET /images/{name}/json`, `/version`,
/// containerd's image records): 4 MiB.
pub const MAX_ENGINE_RESPONSE_BYTES: u64 = 4 << 20;

/// ELF files up to this size are captured whole: 1 MiB. Larger ones are captured sparsely:
/// only the byte ranges the inspectors need (headers, dynamic section, notes, build info,
/// pclntab header) become resident, so memory per binary does not grow with its size.
pub const ELF_FULL_CAPTURE_MAX: u64 = 1 << 20;

/// Largest ELF file inspected: 4 GiB (virtual address space reserved for the sparse capture,
/// not memory). Larger files are recorded as unknown ("too large").
pub const MAX_ELF_BYTES: u64 = 4 << 30;

/// Most bytes captured from one sparse ELF: 16 MiB. Bounds resident memory per binary even
/// if a hostile header points the inspectors at huge tables; ranges past the budget are
/// left out and the affected facts are reported as unknown.
pub const ELF_CAPTURE_BUDGET: u64 = 16 << 20;

/// Largest single table read from an ELF (dynamic section, string tables, section header
/// table, note segment, version tables): 4 MiB.
pub const MAX_ELF_TABLE_BYTES: u64 = 4 << 20;

/// Dynamic-section lists kept per ELF file: 1,024 `DT_NEEDED` names, 256 directories in
/// each of `DT_RPATH` and `DT_RUNPATH`, 4,096 symbol versions (needed and defined). Real
/// binaries have at most a few hundred libraries and libc defines ~50 versions; a 4 MiB
/// forged dynamic section could list hundreds of thousands. Past a bound the list is cut
/// and the file's facts are marked incomplete.
pub const MAX_ELF_NEEDED: usize = 1024;
/// See [`MAX_ELF_NEEDED`].
pub const MAX_ELF_SEARCH_DIRS: usize = 256;
/// See [`MAX_ELF_NEEDED`].
pub const MAX_ELF_VERSIONS: usize = 4096;

/// Records followed in each symbol-version chain of an ELF file: 4,096 `Elf_Verneed`
/// entries (one per needed library) and 4,096 `Elf_Verdef` entries, whatever
/// `DT_VERNEEDNUM`/`DT_VERDEFNUM` claim. A record's `vn_next`/`vd_next` may point a few bytes
/// ahead, so a forged 64 KiB table could otherwise chain ~16,000 overlapping records. Past the
/// bound the chain is cut and the versions are marked incomplete.
pub const MAX_ELF_VERSION_RECORDS: u64 = 4096;

/// Longest `PT_INTERP` path read: 4,096 bytes, Linux's `PATH_MAX`, the most the kernel's ELF
/// loader accepts (`load_elf_binary` in fs/binfmt_elf.c). A longer one is not read: the
/// file's facts name it as an interpreter problem (`exec` would fail with `ENOEXEC`).
pub const MAX_ELF_INTERP_BYTES: u64 = 4096;

/// Most program headers or section headers parsed: 65,535 (the `PN_XNUM` escape is
/// honoured, but not beyond this). More marks the file malformed.
pub const MAX_ELF_HEADERS: u64 = 65_535;

/// Largest Go build info (version + modinfo) read: 4 MiB. Kubernetes-sized binaries carry
/// ~30 KiB. Larger blobs are reported as unreadable build info.
pub const MAX_GO_BUILDINFO_BYTES: u64 = 4 << 20;

/// Small files whose content rules need (`/etc/passwd`, `ld.so.conf`, `os-release`, dpkg
/// status …) are captured up to 8 MiB each; the rest of a larger file is not kept and the
/// capture is marked truncated. Every declared read ([`crate::inspect::reads`]) is cut here.
pub const MAX_CAPTURED_FILE_BYTES: u64 = 8 << 20;

/// Configuration fragments whose content is read (`/etc/ld.so.conf.d/*`,
/// `/var/lib/dpkg/status.d/*`, `/etc/ld-musl-<arch>.path`) are captured up to 64 KiB each:
/// real ones are a line or a dpkg paragraph of a few KiB. The rest is not kept.
pub const CAPTURED_FRAGMENT_BYTES: u64 = 64 << 10;

/// Marker files whose first line is all that is read (a Go toolchain's `VERSION`, the Go
/// build cache's `README`) are captured up to 4 KiB each; such files are found by name
/// anywhere in the image, so a small bound keeps a tree full of them cheap.
pub const CAPTURED_MARKER_BYTES: u64 = 4096;

/// A Go module cache is recognised by a `@v` directory among the first 10,000 entries under
/// a `pkg/mod` directory (a real cache has one within its first few dozen); a forged tree
/// without one costs at most this many steps per `pkg/mod` directory.
pub const MAX_MODULE_CACHE_SCAN: usize = 10_000;

/// A UPX-packed executable carries the `UPX!` marker right after its ELF and program
/// headers; only the first kilobyte of a file is searched for it.
pub const UPX_MAGIC_WINDOW_BYTES: u64 = 1024;

/// Characters of a malformed digest or image reference quoted back in an error message.
pub const MAX_QUOTED_DIGEST_CHARS: usize = 100;
/// See [`MAX_QUOTED_DIGEST_CHARS`]; references are longer (registry, repository, tag).
pub const MAX_QUOTED_REFERENCE_CHARS: usize = 300;

/// `/etc/ld.so.cache` entries read: 65,536 (a Debian system with every library package
/// has a few thousand), each name at most 4,096 bytes (`PATH_MAX`), and at most 8 MiB of
/// names kept in all. A forged cache whose entries all point at one long unterminated
/// string would otherwise cost entries × length in time and memory.
pub const MAX_LD_CACHE_ENTRIES: usize = 1 << 16;
/// See [`MAX_LD_CACHE_ENTRIES`].
pub const MAX_LD_CACHE_NAME_BYTES: usize = 4096;
/// See [`MAX_LD_CACHE_ENTRIES`].
pub const MAX_LD_CACHE_KEPT_BYTES: usize = 8 << 20;

/// `include` directives followed in `/etc/ld.so.conf` and the files it includes: 64, and
/// library directories taken from them: 1,024 (real images have one include and a handful
/// of directories). Every directory is searched for every needed library of every binary,
/// and every include lists a directory, so both bound the loader check's time.
pub const MAX_LD_CONF_INCLUDES: usize = 64;
/// See [`MAX_LD_CONF_INCLUDES`].
pub const MAX_LD_CONF_DIRS: usize = 1024;

/// Longest `#!` line read from a script: 256 bytes (Linux `BINPRM_BUF_SIZE`).
pub const MAX_SHEBANG_BYTES: usize = 256;

/// Bytes of each text-like file scanned for credentials: 4 MiB. Secrets sit in config
/// files, scripts and key files of a few KiB; the keyword prefilter runs at several GB/s,
/// so 4 MiB bounds the worst case per file to about a millisecond. The rest of a larger file
/// is not scanned (trivy scans whole files and only warns above 10 MB). 0 turns content
/// scanning off.
pub const SECRET_SCAN_MAX_BYTES: u64 = 4 << 20;

/// Bytes of a credential file known by path (`.netrc`, `.docker/config.json`, `.npmrc` …)
/// kept and parsed: 64 KiB. Real ones are a few hundred bytes; entries past the bound are
/// not parsed (token formats in them are still found by the content scan).
pub const CREDENTIAL_FILE_MAX_BYTES: u64 = 64 << 10;

/// A file whose first 8,000 bytes contain a NUL byte is binary and not scanned for
/// credentials (git's and ripgrep's heuristic). ELF files never reach the scanner.
pub const SECRET_SNIFF_BYTES: usize = 8000;

/// Right context a credential match may need past its keyword: 1 KiB (a PEM header and its
/// first body line, a long registry identity token). Also the overlap carried between the
/// chunks of a streamed file, so matches across chunk seams are found.
pub const SECRET_CONTEXT_BYTES: usize = 1024;

/// Credential hits recorded per file: 64. A dump of thousands of keys is one finding with
/// the first 64; memory per file stays small.
pub const MAX_SECRET_HITS_PER_FILE: usize = 64;

/// Depth of the library dependency walk when proving a binary can start: 64 levels. The
/// walk also never visits a library twice, so cycles end.
pub const MAX_LIBRARY_DEPTH: usize = 64;

/// Library lookups (one directory × one name) in the proof that one binary can start:
/// 1,000,000. A real dependency tree needs a few thousand (a hundred objects, ten names
/// each, a dozen directories); a forged one — thousands of needed names times thousands of
/// distinct `RPATH` directories down a deep chain — stops here, about a second of work,
/// with the binary's runnability reported as not fully examined.
pub const MAX_LOADER_LOOKUPS: usize = 1_000_000;

/// Directories listed per missing library in a report: 64 (the search order is the
/// loader's, so the first ones are the ones that matter); the count of the rest is given.
pub const MAX_SEARCHED_LISTED: usize = 64;

// ---- Registry pulls (feature `registry`; fields of `source::RegistryLimits`) ----

/// Longest wait for a TCP + TLS connection to a registry: 10 s. Each attempt that exceeds
/// it counts as a failed attempt and is retried.
pub const REGISTRY_CONNECT_TIMEOUT_SECS: u64 = 10;

/// Longest wait for one request's response headers (and the whole body of a manifest,
/// config or token response): 60 s. Exceeding it fails the attempt (retried).
pub const REGISTRY_REQUEST_TIMEOUT_SECS: u64 = 60;

/// Longest silence while a blob body streams: 60 s without a byte fails the attempt, which
/// is resumed with a `Range` request.
pub const REGISTRY_IDLE_TIMEOUT_SECS: u64 = 60;

/// Slowest accepted blob transfer: fewer than 1 KiB per second over a 30 s window
/// ([`REGISTRY_RATE_WINDOW_SECS`]) fails the attempt like a stall, so a server that drips one
/// byte at a time cannot hold a worker for ever.
pub const REGISTRY_MIN_BYTES_PER_SEC: u64 = 1024;

/// Window over which [`REGISTRY_MIN_BYTES_PER_SEC`] is measured: 30 s.
pub const REGISTRY_RATE_WINDOW_SECS: u64 = 30;

/// Whole pull of one image (every manifest, config and layer): 30 minutes. Past it the
/// audit stops with a timeout error. The CLI's `--timeout` sets it.
pub const REGISTRY_TOTAL_TIMEOUT_SECS: u64 = 30 * 60;

/// Attempts per request: 5 (so 4 retries) on connection failures, resets, timeouts, HTTP
/// 429 and 5xx. After the last one the error is reported.
pub const REGISTRY_MAX_ATTEMPTS: u32 = 5;

/// First retry delay: 250 ms, doubled on each retry up to [`REGISTRY_BACKOFF_MAX_MS`].
pub const REGISTRY_BACKOFF_BASE_MS: u64 = 250;

/// Longest delay between retries: 8 s.
pub const REGISTRY_BACKOFF_MAX_MS: u64 = 8_000;

/// Longest `Retry-After` honoured: 60 s. A 429 asking for a longer wait fails at once with
/// a rate-limit error naming the wait, rather than hanging the audit.
pub const REGISTRY_MAX_RETRY_AFTER_SECS: u64 = 60;

/// Largest token-service response read: 1 MiB (real ones are a few KiB). Larger is an error.
pub const MAX_TOKEN_RESPONSE_BYTES: u64 = 1 << 20;

/// Most bytes of an error response body read for its message: 64 KiB; the rest is ignored.
pub const MAX_ERROR_BODY_BYTES: u64 = 64 << 10;

/// Redirects followed per request: 5 (blob downloads are commonly redirected once to
/// object storage). More is an error.
pub const REGISTRY_MAX_REDIRECTS: usize = 5;

/// Entries asked for per page of a registry listing (`/v2/_catalog`, `/v2/<name>/tags/list`,
/// the `n` parameter): 1,000. Registries may send fewer; the `Link` header gives the next page.
pub const REGISTRY_LIST_PAGE_SIZE: usize = 1000;

/// Largest page of a registry listing read: 4 MiB (1,000 names of 255 bytes are 260 KiB).
/// Larger is an error.
pub const MAX_LIST_PAGE_BYTES: u64 = 4 << 20;

/// Most names one registry listing yields (repositories of a catalog, tags of a
/// repository): 100,000. A listing that goes on past it is an error naming the bound (sweep
/// the repositories one by one, or give `--list`), never a silently shortened sweep.
pub const MAX_LIST_ENTRIES: usize = 100_000;

/// Most image references one sweep takes (after listing catalogs and tags): 1,000,000 (a few
/// hundred bytes each while the sweep runs). More is an error before anything is pulled:
/// split the sweep by repository.
pub const MAX_SWEEP_REFERENCES: usize = 1_000_000;

/// Most images a sweep audits (and references it resolves) at once: 64. Each audit also
/// analyses up to `jobs` layers at once.
pub const MAX_SWEEP_PARALLEL: usize = 64;

/// Largest layer-store entry read or written: 64 MiB (encoded, compressed). The analysis of a
/// layer of 100,000 files with a dpkg status file is about 2 MiB. A larger stored value (a
/// forged Redis value, a planted file) is a miss, read no further than this bound; a larger
/// analysis is not stored.
pub const MAX_STORE_ENTRY_BYTES: u64 = 64 << 20;

/// Largest decompressed payload of a layer-store entry: 512 MiB (the merged view of a layer
/// at [`MAX_ENTRIES_PER_LAYER`] with its captured files). A zstd frame that expands past it is
/// a miss.
pub const MAX_STORE_PAYLOAD_BYTES: u64 = 512 << 20;

/// Default size bound of the disk layer store: 2 GiB (`--cache-max-bytes`). Past it the least
/// recently used entries (by modification time, refreshed on every hit) are removed.
pub const DISK_STORE_MAX_BYTES: u64 = 2 << 30;

/// Age after which a temporary file left in the disk store (a writer killed mid-write) is
/// removed: 10 minutes. A write takes milliseconds; the margin covers slow disks.
pub const DISK_STORE_STALE_TEMP_SECS: u64 = 600;

/// Redis layer store: connect, read and write timeouts, each 500 ms. A slow Redis costs an
/// audit at most this per request before the circuit opens ([`REDIS_RETRY_AFTER_SECS`]).
pub const REDIS_TIMEOUT_MS: u64 = 500;

/// After a Redis failure, requests are not tried for 30 s (the circuit is open): a dead
/// Redis costs one timeout per period, not one per layer.
pub const REDIS_RETRY_AFTER_SECS: u64 = 30;

/// Default lifetime of a Redis layer-store entry: 7 days (`EX`), renewed by nothing: an
/// entry is rewritten when a layer is analysed again after it expired.
pub const REDIS_ENTRY_TTL_SECS: u64 = 7 * 24 * 3600;

/// The bounds in force for one audit. `Default` gives the documented constants.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// See [`MAX_MANIFEST_BYTES`].
    pub max_manifest_bytes: u64,
    /// See [`MAX_CONFIG_BYTES`].
    pub max_config_bytes: u64,
    /// See [`MAX_INDEX_DEPTH`].
    pub max_index_depth: usize,
    /// See [`MAX_LAYERS`].
    pub max_layers: usize,
    /// See [`MAX_ENTRIES_PER_LAYER`].
    pub max_entries_per_layer: u64,
    /// See [`MAX_PATH_BYTES`].
    pub max_path_bytes: usize,
    /// See [`BOMB_MIN_BYTES`].
    pub bomb_min_bytes: u64,
    /// See [`BOMB_MAX_RATIO`].
    pub bomb_max_ratio: u64,
    /// See [`MAX_LAYER_UNCOMPRESSED`].
    pub max_layer_uncompressed: u64,
    /// See [`ELF_FULL_CAPTURE_MAX`].
    pub elf_full_capture_max: u64,
    /// See [`MAX_ELF_BYTES`].
    pub max_elf_bytes: u64,
    /// See [`ELF_CAPTURE_BUDGET`].
    pub elf_capture_budget: u64,
    /// See [`MAX_CAPTURED_FILE_BYTES`].
    pub max_captured_file_bytes: u64,
    /// See [`SECRET_SCAN_MAX_BYTES`].
    pub secret_scan_max_bytes: u64,
    /// See [`CREDENTIAL_FILE_MAX_BYTES`].
    pub credential_file_max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_manifest_bytes: MAX_MANIFEST_BYTES,
            max_config_bytes: MAX_CONFIG_BYTES,
            max_index_depth: MAX_INDEX_DEPTH,
            max_layers: MAX_LAYERS,
            max_entries_per_layer: MAX_ENTRIES_PER_LAYER,
            max_path_bytes: MAX_PATH_BYTES,
            bomb_min_bytes: BOMB_MIN_BYTES,
            bomb_max_ratio: BOMB_MAX_RATIO,
            max_layer_uncompressed: MAX_LAYER_UNCOMPRESSED,
            elf_full_capture_max: ELF_FULL_CAPTURE_MAX,
            max_elf_bytes: MAX_ELF_BYTES,
            elf_capture_budget: ELF_CAPTURE_BUDGET,
            max_captured_file_bytes: MAX_CAPTURED_FILE_BYTES,
            secret_scan_max_bytes: SECRET_SCAN_MAX_BYTES,
            credential_file_max_bytes: CREDENTIAL_FILE_MAX_BYTES,
        }
    }
}
