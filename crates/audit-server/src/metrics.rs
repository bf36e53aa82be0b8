//! Counters and histograms, rendered in the Prometheus text format (version 0.0.4).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A histogram with fixed upper bounds (seconds).
pub(crate) struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub(crate) fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        if let Some(i) = self.bounds.iter().position(|b| s <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cum = 0;
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            cum += c.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cum}");
        }
        let n = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {n}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {n}");
    }
}

/// Labelled counters with a fixed label set.
pub(crate) struct Family {
    labels: &'static [&'static str],
    counts: Vec<AtomicU64>,
}

impl Family {
    fn new(labels: &'static [&'static str]) -> Self {
        Self {
            labels,
            counts: labels.iter().map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Counts one under `label` (which must be one of the set).
    pub(crate) fn inc(&self, label: &str) {
        if let Some(i) = self.labels.iter().position(|l| *l == label) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    fn render(&self, out: &mut String, name: &str, key: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (l, c) in self.labels.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}{{{key}=\"{l}\"}} {}", c.load(Ordering::Relaxed));
        }
    }
}

const LATENCY: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const AUDIT: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// Decisions counted per admission request.
pub(crate) const DECISIONS: &[&str] = &["allow", "warn", "deny", "exempt"];
/// Registry failure classes.
pub(crate) const REGISTRY_ERRORS: &[&str] = &[
    "unreachable",
    "timeout",
    "unauthorized",
    "not_found",
    "tls",
    "rate_limited",
    "other",
];
/// HTTP status classes answered.
pub(crate) const CODES: &[&str] = &[
    "200", "202", "302", "400", "401", "404", "405", "413", "415", "422", "429", "500", "501",
    "503",
];

pub(crate) struct Metrics {
    pub(crate) requests: Family,
    pub(crate) http: Family,
    pub(crate) registry_errors: Family,
    pub(crate) audits: Family,
    pub(crate) verdict_hits: AtomicU64,
    pub(crate) verdict_misses: AtomicU64,
    pub(crate) resolve_hits: AtomicU64,
    pub(crate) resolve_misses: AtomicU64,
    pub(crate) deadline_exceeded: AtomicU64,
    pub(crate) audit_seconds: Histogram,
    pub(crate) validate_seconds: Histogram,
    pub(crate) provider_seconds: Histogram,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        Self {
            requests: Family::new(DECISIONS),
            http: Family::new(CODES),
            registry_errors: Family::new(REGISTRY_ERRORS),
            audits: Family::new(&["ok", "shared", "error"]),
            verdict_hits: AtomicU64::new(0),
            verdict_misses: AtomicU64::new(0),
            resolve_hits: AtomicU64::new(0),
            resolve_misses: AtomicU64::new(0),
            deadline_exceeded: AtomicU64::new(0),
            audit_seconds: Histogram::new(AUDIT),
            validate_seconds: Histogram::new(LATENCY),
            provider_seconds: Histogram::new(LATENCY),
        }
    }

    /// Renders everything, with gauges supplied by the caller (`name`, help, value).
    pub(crate) fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let mut o = String::with_capacity(4096);
        self.requests.render(
            &mut o,
            "imgaudit_admission_requests_total",
            "decision",
            "Admission requests answered, by decision.",
        );
        self.http.render(
            &mut o,
            "imgaudit_http_responses_total",
            "code",
            "HTTP responses, by status code.",
        );
        self.audits.render(
            &mut o,
            "imgaudit_audits_total",
            "result",
            "Image audits finished, by result.",
        );
        self.registry_errors.render(
            &mut o,
            "imgaudit_registry_errors_total",
            "kind",
            "Registry failures (resolutions and audits), by kind.",
        );
        for (name, help, v) in [
            (
                "imgaudit_verdict_cache_hits_total",
                "Image lookups answered from the audit-result cache.",
                &self.verdict_hits,
            ),
            (
                "imgaudit_verdict_cache_misses_total",
                "Image lookups that needed an audit (started or joined).",
                &self.verdict_misses,
            ),
            (
                "imgaudit_resolve_cache_hits_total",
                "Tag resolutions answered from the resolution cache.",
                &self.resolve_hits,
            ),
            (
                "imgaudit_resolve_cache_misses_total",
                "Tag resolutions that asked the registry (or joined a request).",
                &self.resolve_misses,
            ),
            (
                "imgaudit_deadline_exceeded_total",
                "Images answered by the failure policy because the deadline passed.",
                &self.deadline_exceeded,
            ),
        ] {
            let _ = writeln!(
                o,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
        self.audit_seconds.render(
            &mut o,
            "imgaudit_audit_duration_seconds",
            "Time to audit one image (resolve excluded).",
        );
        self.validate_seconds.render(
            &mut o,
            "imgaudit_validate_duration_seconds",
            "Time to answer one /validate request.",
        );
        self.provider_seconds.render(
            &mut o,
            "imgaudit_provider_duration_seconds",
            "Time to answer one Gatekeeper external-data request.",
        );
        for (name, help, v) in gauges {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text() {
        let m = Metrics::new();
        m.requests.inc("deny");
        m.requests.inc("bogus");
        m.audit_seconds.observe(Duration::from_millis(300));
        m.validate_seconds.observe(Duration::from_micros(800));
        let t = m.render(&[("imgaudit_verdict_cache_entries", "Entries.", 3.0)]);
        assert!(
            t.contains("imgaudit_admission_requests_total{decision=\"deny\"} 1\n"),
            "{t}"
        );
        assert!(t.contains("imgaudit_audit_duration_seconds_bucket{le=\"0.25\"} 0\n"));
        assert!(t.contains("imgaudit_audit_duration_seconds_bucket{le=\"0.5\"} 1\n"));
        assert!(t.contains("imgaudit_audit_duration_seconds_bucket{le=\"+Inf\"} 1\n"));
        assert!(t.contains("imgaudit_validate_duration_seconds_bucket{le=\"0.001\"} 1\n"));
        assert!(t.contains("imgaudit_audit_duration_seconds_sum 0.3\n"));
        assert!(t.contains(
            "# TYPE imgaudit_verdict_cache_entries gauge\nimgaudit_verdict_cache_entries 3\n"
        ));
        // Every sample line is `name{labels} value` or `name value`.
        for l in t.lines().filter(|l| !l.starts_with('#')) {
            let (_, v) = l.rsplit_once(' ').unwrap();
            assert!(v.parse::<f64>().is_ok(), "{l}");
        }
    }
}
