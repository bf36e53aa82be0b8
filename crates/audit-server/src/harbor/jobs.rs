//! Scan jobs and finished results, kept where every replica finds them.
//!
//! A job is written by the replica that accepted it, at each step (queued, running, done or
//! failed), to its own memory and, with `--cache redis://…`, to Redis (sealed with the shared
//! key like layer entries, so a writer without the key cannot plant a clean report). A report
//! poll looks in memory first (this replica's jobs, always the newest copy), then in Redis
//! (another replica's). Finished results are also kept by manifest digest and scope, so a
//! second scan of an image audited before is answered without an audit.
//!
//! Names (after the store's `imgaudit::` prefix): `harbor:job:<uuid>` and
//! `harbor:result:<scope>:<digest>`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use audit_core::cache::Lru;
use audit_core::store::RedisStore;
use serde::{Deserialize, Serialize};

use super::report::Scanned;

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum State {
    /// Accepted, waiting for an audit slot.
    Queued,
    /// Being audited.
    Running,
    /// Finished: `result` holds the report.
    Done,
    /// Finished without a report: `error` says why.
    Failed,
}

/// The artifact of a scan request, echoed in its reports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Artifact {
    pub(crate) repository: String,
    pub(crate) digest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) mime_type: Option<String>,
}

/// One scan job as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Job {
    pub(crate) state: State,
    pub(crate) artifact: Artifact,
    /// Unix seconds after which a queued or running job counts as abandoned (the replica that
    /// held it stopped): polls then answer 500 so Harbor stops waiting.
    pub(crate) deadline: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) result: Option<Scanned>,
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Jobs and results: this replica's memory, and Redis when configured.
pub(crate) struct Jobs {
    memory: Mutex<Lru<String, (Instant, Vec<u8>)>>,
    redis: Option<Arc<RedisStore>>,
    /// How long a job's record and a result by digest are kept.
    ttl: Duration,
}

impl Jobs {
    /// At most `max_bytes` of serialized jobs in memory; records live for `ttl`.
    pub(crate) fn new(max_bytes: u64, redis: Option<Arc<RedisStore>>, ttl: Duration) -> Self {
        Self {
            memory: Mutex::new(Lru::new(max_bytes)),
            redis,
            ttl: ttl.max(Duration::from_secs(1)),
        }
    }

    fn job_name(id: &str) -> String {
        format!("harbor:job:{id}")
    }

    fn result_name(scope: &str, digest: &str) -> String {
        format!("harbor:result:{scope}:{digest}")
    }

    fn put(&self, name: String, bytes: Vec<u8>) {
        if let Some(r) = &self.redis {
            r.put_sealed(&name, &bytes, Some(self.ttl));
        }
        let w = 128 + name.len() as u64 + bytes.len() as u64;
        self.memory
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name, (Instant::now() + self.ttl, bytes), w);
    }

    fn get(&self, name: &str) -> Option<Vec<u8>> {
        {
            let mut m = self.memory.lock().unwrap_or_else(PoisonError::into_inner);
            match m.get(&name.to_string()) {
                Some((until, b)) if *until > Instant::now() => return Some(b.clone()),
                Some(_) => {
                    m.remove(&name.to_string());
                }
                None => {}
            }
        }
        self.redis.as_ref()?.get_sealed(name)
    }

    /// Writes a job's current state.
    pub(crate) fn put_job(&self, id: &str, job: &Job) {
        if let Ok(b) = serde_json::to_vec(job) {
            self.put(Self::job_name(id), b);
        }
    }

    /// The job `id`, from this replica or another.
    pub(crate) fn job(&self, id: &str) -> Option<Job> {
        serde_json::from_slice(&self.get(&Self::job_name(id))?).ok()
    }

    /// Keeps a finished result under its manifest digest.
    pub(crate) fn put_result(&self, scope: &str, digest: &str, s: &Scanned) {
        if let Ok(b) = serde_json::to_vec(s) {
            self.put(Self::result_name(scope, digest), b);
        }
    }

    /// A result kept for `digest` by any replica with the same scope.
    pub(crate) fn result(&self, scope: &str, digest: &str) -> Option<Scanned> {
        serde_json::from_slice(&self.get(&Self::result_name(scope, digest))?).ok()
    }

    /// Entries and bytes in memory.
    pub(crate) fn occupancy(&self) -> (usize, u64) {
        let m = self.memory.lock().unwrap_or_else(PoisonError::into_inner);
        (m.len(), m.bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(state: State) -> Job {
        Job {
            state,
            artifact: Artifact {
                repository: "library/app".into(),
                digest: format!("sha256:{}", "a".repeat(64)),
                ..Artifact::default()
            },
            deadline: unix_now() + 60,
            error: None,
            result: None,
        }
    }

    #[test]
    fn memory_keeps_the_newest_state_within_its_bound() {
        let j = Jobs::new(4096, None, Duration::from_secs(60));
        j.put_job("one", &job(State::Queued));
        j.put_job("one", &job(State::Running));
        assert_eq!(j.job("one").unwrap().state, State::Running);
        assert!(j.job("two").is_none());
        for i in 0..100 {
            j.put_job(&format!("id{i}"), &job(State::Done));
        }
        let (n, bytes) = j.occupancy();
        assert!(bytes <= 4096 && n < 100, "{n} entries, {bytes} bytes");
        assert!(j.job("id99").is_some() && j.job("id0").is_none());
    }

    #[test]
    fn records_expire() {
        let j = Jobs::new(1 << 20, None, Duration::from_secs(1));
        j.put_job("x", &job(State::Done));
        assert!(j.job("x").is_some());
        std::thread::sleep(Duration::from_millis(1100));
        assert!(j.job("x").is_none());
    }
}
