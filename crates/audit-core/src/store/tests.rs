//! Codec and disk store: round trips, and every kind of bad entry is a miss.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::codec::{decode, encode, Reject, Seal};
use super::*;
use crate::audit::content_plan;
use crate::layer::{analysis_fingerprint, analyze_blob, LayerSpec};
use crate::limits::{Limits, MAX_STORE_ENTRY_BYTES};
use crate::testutil::{fixture, gzip, Tar, XorShift};

/// A layer with every kind of fact: a Go binary (ELF, build info), captured files, a
/// credential file, a script, links and a whiteout.
fn analysis() -> LayerAnalysis {
    let go = std::fs::read(fixture("bin/app-static")).expect("fixture binary");
    let tar = Tar::default()
        .dir("etc/", 0o755)
        .file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 0o644)
        .file("etc/os-release", b"ID=debian\n", 0o644)
        .file("app/server", &go, 0o755)
        .file("app/run.sh", b"#!/bin/sh\nexec /app/server\n", 0o755)
        .file(
            "root/.netrc",
            b"machine example.com login u password hunter2x\n",
            0o600,
        )
        .symlink("bin/sh", "busybox")
        .hardlink("app/server2", "app/server")
        .file("old/.wh.gone", b"", 0o644)
        .finish();
    let blob = gzip(&tar);
    let spec = LayerSpec {
        index: 0,
        digest: crate::digest::Digest::sha256_of(&blob),
        size: blob.len() as u64,
        diff_id: Some(crate::digest::Digest::sha256_of(&tar)),
        verify_digest: true,
        media_type: String::new(),
    };
    analyze_blob(&blob[..], &spec, &Limits::default(), content_plan()).expect("analysis")
}

fn key(a: &LayerAnalysis) -> LayerKey {
    LayerKey::new(
        a.digest.clone(),
        &analysis_fingerprint(&Limits::default(), content_plan()),
    )
}

fn cbor(a: &LayerAnalysis) -> Vec<u8> {
    let mut v = Vec::new();
    ciborium::into_writer(a, &mut v).unwrap();
    v
}

#[test]
fn entries_round_trip_exactly() {
    let a = analysis();
    assert!(a.entries.iter().any(|e| e.facts.as_ref().is_some_and(|f| f
        .elf
        .as_ref()
        .is_some_and(|e| e.go.is_some() && e.architecture.is_some()))));
    assert!(a
        .entries
        .iter()
        .any(|e| e.facts.as_ref().is_some_and(|f| f.content.is_some())));
    assert!(a.entries.iter().any(|e| e
        .facts
        .as_ref()
        .is_some_and(|f| f.credential_file.is_some())));
    for seal in [Seal::Checksum, Seal::Hmac(Arc::from(&b"k"[..]))] {
        let k = key(&a);
        let bytes = encode(&k, &a, &seal).unwrap();
        let back = decode(&k, &bytes, &seal).unwrap();
        assert_eq!(cbor(&back), cbor(&a), "{seal:?}");
        assert_eq!(format!("{back:?}"), format!("{a:?}"));
    }
}

#[test]
fn bad_entries_are_rejected_never_a_panic() {
    let a = analysis();
    let k = key(&a);
    let good = encode(&k, &a, &Seal::Checksum).unwrap();
    // Truncated anywhere.
    for n in [0, 4, 8, 12, 30, good.len() / 2, good.len() - 1] {
        assert!(
            decode(&k, &good[..n], &Seal::Checksum).is_err(),
            "cut at {n}"
        );
    }
    // Padded.
    let mut padded = good.clone();
    padded.push(0);
    assert_eq!(
        decode(&k, &padded, &Seal::Checksum).unwrap_err(),
        Reject::Truncated
    );
    // Every single bit flip, sampled.
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..2000 {
        let mut b = good.clone();
        let i = rng.below(b.len());
        b[i] ^= 1 << rng.below(8);
        assert!(decode(&k, &b, &Seal::Checksum).is_err(), "flip at {i}");
    }
    // Another key's entry, another format, garbage.
    let other = LayerKey::new(
        crate::digest::Digest::sha256_of(b"other"),
        &analysis_fingerprint(&Limits::default(), content_plan()),
    );
    assert_eq!(
        decode(&other, &good, &Seal::Checksum).unwrap_err(),
        Reject::WrongKey
    );
    let limits = Limits {
        secret_scan_max_bytes: 1,
        ..Limits::default()
    };
    let other_limits = LayerKey::new(
        a.digest.clone(),
        &analysis_fingerprint(&limits, content_plan()),
    );
    assert_eq!(
        decode(&other_limits, &good, &Seal::Checksum).unwrap_err(),
        Reject::WrongKey
    );
    let mut v2 = good.clone();
    v2[8] = 2;
    assert!(matches!(
        decode(&k, &v2, &Seal::Checksum).unwrap_err(),
        Reject::Foreign { format: 2, .. }
    ));
    assert_eq!(
        decode(&k, b"garbage", &Seal::Checksum).unwrap_err(),
        Reject::NotAnEntry
    );
    // A well-sealed entry whose payload is not an analysis (a writer with the key but
    // another build).
    let junk = {
        let name = k.name();
        let mut e = good[..14 + name.len()].to_vec();
        let p = zstd::encode_all(&b"\xa1\x61x\x01"[..], 1).unwrap();
        e.extend_from_slice(&(p.len() as u64).to_le_bytes());
        let tag: [u8; 32] = {
            use sha2::Digest as _;
            let mut h = sha2::Sha256::new();
            h.update(&e);
            h.update(&p);
            h.finalize().into()
        };
        e.extend_from_slice(&tag);
        e.extend_from_slice(&p);
        e
    };
    assert!(matches!(
        decode(&k, &junk, &Seal::Checksum).unwrap_err(),
        Reject::Payload(_)
    ));
}

#[test]
fn hmac_entries_need_the_key() {
    let a = analysis();
    let k = key(&a);
    let right = Seal::Hmac(Arc::from(&b"shared secret"[..]));
    let wrong = Seal::Hmac(Arc::from(&b"guessed"[..]));
    let forged = encode(&k, &a, &wrong).unwrap();
    assert_eq!(decode(&k, &forged, &right).unwrap_err(), Reject::BadSeal);
    // A checksum-sealed entry is not accepted where an HMAC is required.
    let plain = encode(&k, &a, &Seal::Checksum).unwrap();
    assert!(matches!(
        decode(&k, &plain, &right).unwrap_err(),
        Reject::Foreign { .. }
    ));
    assert!(decode(&k, &encode(&k, &a, &right).unwrap(), &right).is_ok());
}

#[test]
fn oversized_entries_are_rejected_at_the_bound() {
    let a = analysis();
    let k = key(&a);
    // A 100 MiB value: refused before any parsing.
    let mut big = encode(&k, &a, &Seal::Checksum).unwrap();
    big.resize(100 << 20, 0);
    assert_eq!(
        decode(&k, &big, &Seal::Checksum).unwrap_err(),
        Reject::Oversized(100 << 20)
    );
    const { assert!(MAX_STORE_ENTRY_BYTES < 100 << 20) };
    // On disk: a planted 100 MiB file is read no further than the bound, and is a miss.
    let dir = tempfile::tempdir().unwrap();
    let store = DiskStore::open(dir.path(), 1 << 30).unwrap();
    let path = store.path_of(&k);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &big).unwrap();
    assert!(store.get(&k).is_none());
    assert_eq!(store.stats().rejected, 1);
    assert!(!path.exists(), "a bad entry is removed");
}

#[test]
fn disk_store_round_trip_and_bad_files_are_misses_then_replaced() {
    let a = Arc::new(analysis());
    let k = key(&a);
    let dir = tempfile::tempdir().unwrap();
    let store = DiskStore::open(dir.path(), 1 << 30).unwrap();
    assert!(store.get(&k).is_none());
    store.put(&k, &a);
    let hit = store.get(&k).expect("hit");
    assert_eq!(cbor(&hit), cbor(&a));
    let path = store.path_of(&k);
    let good = std::fs::read(&path).unwrap();
    for bad in [
        good[..good.len() / 3].to_vec(),
        {
            let mut b = good.clone();
            let n = b.len() - 10;
            b[n] ^= 0x40;
            b
        },
        Vec::new(),
    ] {
        std::fs::write(&path, &bad).unwrap();
        assert!(store.get(&k).is_none());
        assert!(!path.exists());
        store.put(&k, &a);
        assert!(store.get(&k).is_some(), "replaced");
    }
    let s = store.stats();
    assert_eq!((s.rejected, s.writes), (3, 4), "{s:?}");
    let info = store.info().unwrap();
    assert_eq!((info.entries, info.temp_files), (1, 0));
    assert!(info.bytes > 0);
}

#[test]
fn disk_store_eviction_keeps_the_bound_and_prune_cleans() {
    let a = analysis();
    let one = {
        let k = key(&a);
        encode(&k, &a, &Seal::Checksum).unwrap().len() as u64
    };
    let dir = tempfile::tempdir().unwrap();
    let max = one * 5 + one / 2;
    let store = DiskStore::open(dir.path(), max).unwrap();
    let mut keys = Vec::new();
    for i in 0..20u32 {
        // The same analysis under 20 digests (the store does not re-check contents against
        // the key beyond the digest field, so give each its own digest).
        let d = crate::digest::Digest::sha256_of(&i.to_le_bytes());
        let mut ai = a.clone();
        ai.digest = d.clone();
        let k = LayerKey::new(d, &analysis_fingerprint(&Limits::default(), content_plan()));
        store.put(&k, &Arc::new(ai));
        keys.push(k);
        let info = store.info().unwrap();
        assert!(info.bytes <= max, "{i}: {} > {max}", info.bytes);
        // Distinct modification times for a strict LRU order.
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(store.stats().evictions >= 14);
    // The newest survive.
    assert!(store.get(keys.last().unwrap()).is_some());
    assert!(store.get(&keys[0]).is_none());

    // A killed writer's temp file, an entry of another version, a corrupt entry.
    let sub = store.path_of(&keys[19]).parent().unwrap().to_path_buf();
    let temp = sub.join(".tmp-999999-0");
    std::fs::write(&temp, b"half an entry").unwrap();
    let fresh_temp = sub.join(".tmp-999999-1");
    std::fs::write(&fresh_temp, b"a write in progress").unwrap();
    let old =
        SystemTime::now() - Duration::from_secs(crate::limits::DISK_STORE_STALE_TEMP_SECS + 5);
    std::fs::File::options()
        .append(true)
        .open(&temp)
        .unwrap()
        .set_modified(old)
        .unwrap();
    std::fs::write(sub.join("layer_v0_ab_sha256_cd"), b"old version").unwrap();
    let victim = store.path_of(&keys[19]);
    let mut b = std::fs::read(&victim).unwrap();
    b[40] ^= 1;
    std::fs::write(&victim, b).unwrap();
    let before = store.info().unwrap();
    assert_eq!((before.temp_files, before.foreign_entries), (2, 1));
    let pruned = store.prune().unwrap();
    assert_eq!(pruned.temp_files, 1, "only the stale temp file goes");
    assert_eq!(pruned.entries, 2, "the old version and the corrupt entry");
    assert!(fresh_temp.exists() && !temp.exists());
    let cleared = store.clear().unwrap();
    assert!(cleared.entries >= 3);
    assert_eq!(store.info().unwrap().entries, 0);
}

#[test]
fn tiered_copies_back_hits_to_the_front() {
    let a = Arc::new(analysis());
    let k = key(&a);
    let dir = tempfile::tempdir().unwrap();
    let back = Arc::new(DiskStore::open(dir.path(), 1 << 30).unwrap());
    back.put(&k, &a);
    let front = Arc::new(MemoryStore::new(64 << 20));
    let t = Tiered::new(
        Arc::clone(&front) as Arc<dyn LayerStore>,
        Arc::clone(&back) as Arc<dyn LayerStore>,
    );
    assert!(t.get(&k).is_some());
    assert!(t.get(&k).is_some());
    assert_eq!((back.stats().hits, front.stats().hits), (1, 1));
    assert_eq!(t.stats().hits, 2);
}

#[test]
fn single_flight_lets_one_lookup_miss_and_the_others_wait() {
    let a = Arc::new(analysis());
    let k = key(&a);
    let s = SingleFlight::new(
        Arc::new(MemoryStore::new(64 << 20)),
        Duration::from_secs(30),
    );
    assert!(s.get(&k).is_none(), "the first lookup misses: it analyses");
    std::thread::scope(|t| {
        let waiter = t.spawn(|| s.get(&k));
        std::thread::sleep(Duration::from_millis(100));
        assert!(!waiter.is_finished(), "a second lookup waits for the first");
        s.put(&k, &a);
        assert!(waiter.join().unwrap().is_some(), "and gets its analysis");
    });
    assert_eq!((s.stats().hits, s.stats().misses), (1, 1));

    // A released key lets the waiter go: it misses and analyses itself.
    let other = LayerKey::new(crate::digest::Digest::sha256_of(b"x"), "f");
    assert!(s.get(&other).is_none());
    std::thread::scope(|t| {
        let waiter = t.spawn(|| s.get(&other));
        std::thread::sleep(Duration::from_millis(50));
        s.release(&other);
        assert!(waiter.join().unwrap().is_none());
    });
    s.release(&other);

    // A lookup waits no longer than the bound.
    let short = SingleFlight::new(
        Arc::new(MemoryStore::new(1 << 20)),
        Duration::from_millis(200),
    );
    assert!(short.get(&other).is_none());
    let t0 = std::time::Instant::now();
    assert!(short.get(&other).is_none());
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(190) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert_eq!(short.stats().misses, 2);
}
