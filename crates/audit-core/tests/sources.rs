//! Every form real tools write an image in, read as that image — and everything that looks
//! like an image but cannot be read as one refused with a one-line error, never audited as
//! "nothing". Inputs come from the real tools (skopeo 1.9.3, dockerd 20.10 through
//! testdata/realbuild.py, the gzip, zstd and pzstd CLIs, mkfifo); the few forms no tool here
//! writes (Docker 25.0's `"manifests": null`, Jib's lower-case `manifest.json` keys, index
//! entries of unknown media types, a compressed-archive bomb) are forged from real outputs
//! and say so. See: issue #12.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use audit_core::content_plan;
use audit_core::layer::{analyze_blob, LayerSpec};
use audit_core::source::{self, PlatformChoice};
use audit_core::Auditor;
use audit_core::Digest;
use audit_core::Limits;
use audit_core::Report;

fn audit_all(spec: &str, platform: PlatformChoice) -> Result<Vec<Report>, String> {
    let src = source::open_local(spec).map_err(|e| e.to_string())?;
    Auditor::builder()
        .platform(platform)
        .today("2026-11-27")
        .build()
        .audit(&src, spec)
        .map_err(|e| e.to_string())
}

fn audit(spec: &str) -> Result<Report, String> {
    audit_all(spec, PlatformChoice::Default).map(|mut r| r.remove(0))
}

fn ok(spec: &str) -> Report {
    audit(spec).unwrap_or_else(|e| panic!("{spec}: {e}"))
}

fn err(spec: &str) -> String {
    match audit(spec) {
        Ok(r) => panic!(
            "{spec} was audited ({} files, {} layers) instead of refused",
            r.image.files,
            r.layers.len()
        ),
        Err(e) => {
            assert!(!e.contains('\n'), "{spec}: multi-line error {e:?}");
            e
        }
    }
}

fn image(name: &str) -> String {
    common::out(&format!("images/{name}")).display().to_string()
}

/// The bytes of member `name` of the tar archive at `path`.
fn member(path: &str, name: &str) -> Vec<u8> {
    let mut ar = tar::Archive::new(std::fs::File::open(path).unwrap());
    let mut e = ar
        .entries()
        .unwrap()
        .map(Result::unwrap)
        .find(|e| e.path().unwrap().as_os_str() == name)
        .unwrap_or_else(|| panic!("{path} has no {name}"));
    let mut out = Vec::new();
    e.read_to_end(&mut out).unwrap();
    out
}

fn archive(name: &str) -> PathBuf {
    common::out(&format!("archives/{name}"))
}

fn paths(r: &Report) -> BTreeSet<String> {
    r.binaries.iter().map(|b| b.path.clone()).collect()
}

/// Runs a tool; panics (the test fails, never skips) when it is missing or fails.
fn tool(cmd: &mut Command) -> Vec<u8> {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?} (.ci/run installs it): {e}"));
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

fn skopeo(args: &[&str]) {
    tool(Command::new("skopeo").arg("--insecure-policy").args(args));
}

/// `skopeo copy -q oci:FIXTURE:latest DEST` (`dir:PATH`, `oci-archive:PATH:latest` …).
fn skopeo_copy(fixture: &str, dest: &str) {
    skopeo(&[
        "copy",
        "-q",
        &format!("oci:{}:latest", image(fixture)),
        dest,
    ]);
}

/// Same image, same answer: files, binaries, findings and identity.
fn assert_same(a: &Report, b: &Report, what: &str) {
    assert_eq!(a.image.files, b.image.files, "{what}: files");
    assert_eq!(paths(a), paths(b), "{what}: binaries");
    assert_eq!(a.findings.len(), b.findings.len(), "{what}: findings");
    assert_eq!(
        a.image.config_digest, b.image.config_digest,
        "{what}: config"
    );
    assert_eq!(a.image.platform, b.image.platform, "{what}: platform");
}

/// Copies a tar archive, replacing (or dropping, with `None`) the members `edit` names.
fn rewrite_tar(src: &Path, dst: &Path, edit: impl Fn(&str, &[u8]) -> Option<Option<Vec<u8>>>) {
    let mut ar = tar::Archive::new(std::fs::File::open(src).unwrap());
    let mut out = tar::Builder::new(std::fs::File::create(dst).unwrap());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        let mut h = e.header().clone();
        let data = match edit(&name, &data) {
            Some(None) => continue,
            Some(Some(new)) => new,
            None => data,
        };
        h.set_size(data.len() as u64);
        h.set_cksum();
        out.append(&h, &data[..]).unwrap();
    }
    out.finish().unwrap();
}

#[test]
fn skopeo_dir_images_are_read_as_the_image_they_are() {
    let tmp = tempfile::tempdir().unwrap();
    let one = tmp.path().join("one");
    skopeo_copy("clean", &format!("dir:{}", one.display()));
    let clean = ok(&image("clean"));
    for spec in [format!("dir:{}", one.display()), one.display().to_string()] {
        let r = ok(&spec);
        assert_eq!(r.image.source, "dir", "{spec}");
        assert_eq!(r.layers.len(), clean.layers.len(), "{spec}");
        assert_eq!(r.image.manifest_digest, clean.image.manifest_digest);
        assert_same(&r, &clean, &spec);
    }
    // `skopeo copy --all`: the index in manifest.json, each platform's manifest beside it.
    let all = tmp.path().join("all");
    skopeo(&[
        "copy",
        "-q",
        "--all",
        &format!("oci:{}:latest", image("clean-multiarch")),
        &format!("dir:{}", all.display()),
    ]);
    let reports = audit_all(&format!("dir:{}", all.display()), PlatformChoice::All).unwrap();
    let platforms: Vec<_> = reports
        .iter()
        .map(|r| r.image.platform.clone().unwrap())
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    // A blob gone missing is an error, not fewer layers.
    let blob = clean.layers[0].digest.as_ref().unwrap().hex().to_string();
    std::fs::remove_file(one.join(blob)).unwrap();
    assert!(err(&one.display().to_string()).contains("is missing"));
}

#[test]
fn unpacked_root_filesystems_have_their_own_transport() {
    let rootfs = common::out("rootfs/clean");
    let r = ok(&format!("rootfs:{}", rootfs.display()));
    assert_eq!(r.image.source, "rootfs");
    assert!(r.binaries.iter().any(|b| b.path == "/app"));
    // Detected without a transport.
    assert_eq!(ok(&rootfs.display().to_string()).image.source, "rootfs");
    // `dir:` is skopeo's image directory now.
    let e = err(&format!("dir:{}", rootfs.display()));
    assert!(
        e.contains("not a skopeo dir: image") && e.contains("rootfs:"),
        "{e}"
    );
    // An empty directory is nothing to audit.
    let tmp = tempfile::tempdir().unwrap();
    assert!(err(&tmp.path().display().to_string()).contains("the directory is empty"));
    // A layout that lost its index.json is not a root filesystem.
    let broken = tmp.path().join("broken");
    std::fs::create_dir_all(broken.join("blobs/sha256")).unwrap();
    let e = err(&broken.display().to_string());
    assert!(e.contains("no index.json"), "{e}");
}

#[test]
fn explicit_transports_refuse_other_formats_and_say_what_they_are() {
    let tmp = tempfile::tempdir().unwrap();
    let skdir = tmp.path().join("skopeo-dir");
    skopeo_copy("clean", &format!("dir:{}", skdir.display()));
    let oci_tar = tmp.path().join("skopeo-oci.tar");
    skopeo_copy(
        "clean",
        &format!("oci-archive:{}:latest", oci_tar.display()),
    );
    let docker_tar = archive("real-docker-classic.tar");
    let cases: Vec<(String, &str)> = vec![
        (
            format!("oci:{}", skdir.display()),
            "not an OCI image layout: no index.json; it is a skopeo dir: image",
        ),
        (
            format!("oci:{}", docker_tar.display()),
            "not an OCI image layout: not a directory (for a tarball of a layout write oci-archive:PATH)",
        ),
        (
            format!("oci:{}", common::out("rootfs/clean").display()),
            "not an OCI image layout: no index.json, oci-layout or blobs/",
        ),
        (
            format!("oci-archive:{}", docker_tar.display()),
            "not an oci-archive: it has no index.json; it is a docker save archive",
        ),
        (
            format!("docker-archive:{}", oci_tar.display()),
            "not a docker-archive: it has no manifest.json; it is an OCI archive",
        ),
        (
            format!("dir:{}", docker_tar.display()),
            "not a skopeo dir: image: not a directory",
        ),
        (
            format!("rootfs:{}", docker_tar.display()),
            "not a root filesystem directory: not a directory",
        ),
        (
            "ostree:alpine:latest".to_string(),
            "transport ostree: is not supported",
        ),
    ];
    for (spec, want) in cases {
        let e = match spec.strip_prefix("ostree:") {
            Some(_) => source::open(&spec, &source::SourceOptions::default())
                .unwrap_err()
                .to_string(),
            None => err(&spec),
        };
        assert!(e.contains(want), "{spec}:\n  got  {e}\n  want …{want}…");
    }
    // The right transport reads them.
    ok(&format!("oci-archive:{}", oci_tar.display()));
    ok(&format!("docker-archive:{}", docker_tar.display()));
}

#[test]
fn docker_archive_references_match_like_docker_and_skopeo() {
    // Two images in one real `docker save`.
    let multi = archive("real-docker-multi.tar").display().to_string();
    let e = err(&multi);
    assert!(
        e.contains("holds several images")
            && e.contains("imgaudit/real-classic:latest")
            && e.contains("imgaudit/real-buildkit:latest"),
        "{e}"
    );
    let classic = ok(&archive("real-docker-classic.tar").display().to_string());
    let buildkit = ok(&archive("real-docker-buildkit.tar").display().to_string());
    // `docker save` writes the images in no fixed order (the daemon walks a Go map): `@N`
    // is the Nth entry of this archive's manifest.json.
    let manifest: serde_json::Value =
        serde_json::from_slice(&member(&multi, "manifest.json")).expect("manifest.json is JSON");
    let classic_at = manifest
        .as_array()
        .and_then(|a| {
            a.iter()
                .position(|m| m["RepoTags"][0] == "imgaudit/real-classic:latest")
        })
        .expect("real-classic is in the multi-image archive");
    let classic_n = format!("@{classic_at}");
    for name in [
        "imgaudit/real-classic",
        "imgaudit/real-classic:latest",
        "docker.io/imgaudit/real-classic:latest",
        "index.docker.io/imgaudit/real-classic",
        &classic_n,
    ] {
        let r = ok(&format!("docker-archive:{multi}:{name}"));
        assert_eq!(
            r.image.config_digest, classic.image.config_digest,
            "{name} picks real-classic"
        );
    }
    let r = ok(&format!("docker-archive:{multi}:imgaudit/real-buildkit"));
    assert_eq!(r.image.config_digest, buildkit.image.config_digest);
    let r = ok(&format!("{multi}:@{}", 1 - classic_at));
    assert_eq!(r.image.config_digest, buildkit.image.config_digest);
    for name in ["latest", "real-classic", "imgaudit/real-classic:v2", "@2"] {
        let e = err(&format!("docker-archive:{multi}:{name}"));
        assert!(e.contains("not found in"), "{name}: {e}");
    }
    // `docker save IMAGE_ID`: RepoTags null; only `@N` names it.
    let untagged = archive("real-docker-untagged.tar").display().to_string();
    assert_eq!(
        ok(&untagged).image.config_digest,
        classic.image.config_digest
    );
    assert_eq!(
        ok(&format!("docker-archive:{untagged}:@0"))
            .image
            .config_digest,
        classic.image.config_digest
    );
    let e = err(&format!("docker-archive:{untagged}:imgaudit/real-classic"));
    assert!(e.contains("untagged"), "{e}");
    // skopeo writes the normalised name (`docker.io/imgaudit/clean:latest`); the familiar
    // one selects it.
    let sk = archive("clean-skopeo.tar").display().to_string();
    ok(&format!("docker-archive:{sk}:imgaudit/clean"));
    // Docker 25+ archives (an OCI layout inside): the same rules over io.containerd.image.name.
    let d25 = archive("clean-docker25.tar").display().to_string();
    ok(&format!("docker-archive:{d25}:imgaudit/clean"));
    ok(&format!(
        "docker-archive:{d25}:docker.io/imgaudit/clean:latest"
    ));
    assert!(err(&format!("docker-archive:{d25}:imgaudit/other")).contains("not found"));
}

/// Forged: Docker 25.0 writes `"manifests": null` into index.json for some images; no tool
/// here does, so the mkimage Docker 25 archive gets that index.json.
#[test]
fn docker25_archive_with_null_manifests_reads_manifest_json() {
    let tmp = tempfile::tempdir().unwrap();
    let forged = tmp.path().join("docker25-null.tar");
    rewrite_tar(&archive("clean-docker25.tar"), &forged, |name, _| {
        (name == "index.json").then(|| {
            Some(br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":null}"#.to_vec())
        })
    });
    let clean = ok(&image("clean"));
    for spec in [
        forged.display().to_string(),
        format!("docker-archive:{}", forged.display()),
        format!("docker-archive:{}:imgaudit/clean", forged.display()),
    ] {
        let r = ok(&spec);
        assert_eq!(r.image.source, "docker-archive");
        assert_same(&r, &clean, &spec);
    }
    // As an oci-archive there is nothing: an error.
    let e = err(&format!("oci-archive:{}", forged.display()));
    assert!(e.contains("no image manifests"), "{e}");
}

/// Forged: Jib writes `config`, `repoTags`, `layers`; no tool here does, so the real
/// `docker save` archive's manifest.json is rewritten with those keys.
#[test]
fn lower_case_manifest_json_keys_load_like_docker_load() {
    let tmp = tempfile::tempdir().unwrap();
    let forged = tmp.path().join("jib.tar");
    rewrite_tar(
        &archive("real-docker-classic.tar"),
        &forged,
        |name, data| {
            (name == "manifest.json").then(|| {
                let s = String::from_utf8(data.to_vec()).unwrap();
                Some(
                    s.replace("\"Config\"", "\"config\"")
                        .replace("\"RepoTags\"", "\"repoTags\"")
                        .replace("\"Layers\"", "\"layers\"")
                        .into_bytes(),
                )
            })
        },
    );
    let want = ok(&archive("real-docker-classic.tar").display().to_string());
    let got = ok(&format!(
        "docker-archive:{}:imgaudit/real-classic",
        forged.display()
    ));
    assert_same(&got, &want, "jib keys");
    assert_eq!(got.layers.len(), want.layers.len());
}

#[test]
fn compressed_archives_are_read_transparently() {
    let tmp = tempfile::tempdir().unwrap();
    let oci_tar = tmp.path().join("oci.tar");
    skopeo_copy(
        "clean",
        &format!("oci-archive:{}:latest", oci_tar.display()),
    );
    let inputs = [
        (archive("real-docker-buildkit.tar"), "docker-archive"),
        (archive("clean-docker25.tar"), "docker-archive"),
        (oci_tar, "oci-archive"),
    ];
    for (plain, transport) in &inputs {
        let want = ok(&plain.display().to_string());
        let name = plain.file_name().unwrap().to_str().unwrap();
        for (ext, cmd) in [
            ("gz", vec!["gzip", "-c"]),
            ("zst", vec!["zstd", "-q", "-c"]),
            // pzstd starts with a skippable frame and writes several frames.
            ("pzst", vec!["pzstd", "-q", "-p", "2", "-c"]),
        ] {
            let out = tool(Command::new(cmd[0]).args(&cmd[1..]).arg(plain));
            let packed = tmp.path().join(format!("{name}.{ext}"));
            std::fs::write(&packed, out).unwrap();
            for spec in [
                packed.display().to_string(),
                format!("{transport}:{}", packed.display()),
            ] {
                let got = ok(&spec);
                assert_eq!(got.image.source, *transport, "{spec}");
                assert_eq!(got.image.manifest_digest, want.image.manifest_digest);
                assert_same(&got, &want, &spec);
            }
        }
    }
    // Compressions docker load knows but imgaudit does not read: a clear error.
    let xz = tmp.path().join("x.tar.xz");
    std::fs::write(&xz, tool(Command::new("xz").arg("-c").arg(&inputs[0].0))).unwrap();
    assert!(err(&xz.display().to_string()).contains("xz-compressed"));
}

/// Forged: a zstd-compressed tar whose one member is 300 MiB of zeros (ratio far over
/// BOMB_MAX_RATIO once past BOMB_MIN_BYTES).
#[test]
fn compressed_archive_bombs_stop_at_the_bound() {
    let tmp = tempfile::tempdir().unwrap();
    let bomb = tmp.path().join("bomb.tar.zst");
    let enc = zstd::stream::write::Encoder::new(std::fs::File::create(&bomb).unwrap(), 1).unwrap();
    let mut b = tar::Builder::new(enc.auto_finish());
    let size = 300u64 << 20;
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "zeros", std::io::repeat(0).take(size))
        .unwrap();
    b.into_inner().unwrap().flush().unwrap();
    let e = err(&bomb.display().to_string());
    assert!(e.contains("decompression bomb"), "{e}");
}

fn sha256_file(p: &Path) -> Digest {
    Digest::sha256_of(&std::fs::read(p).unwrap())
}

/// The uncompressed tar of the clean image's largest layer (the Go binary).
fn largest_clean_layer() -> (Vec<u8>, Digest, Vec<String>) {
    let r = ok(&image("clean"));
    let l = r.layers.iter().max_by_key(|l| l.uncompressed_size).unwrap();
    let blob = common::out(&format!(
        "images/clean/blobs/sha256/{}",
        l.digest.as_ref().unwrap().hex()
    ));
    let tar = tool(Command::new("gzip").arg("-dc").arg(&blob));
    let entries = analyze(&tar, None).0;
    (tar, l.diff_id.clone().unwrap(), entries)
}

/// Streams a blob through the layer pipeline: (entry paths, diff_id).
fn analyze(blob: &[u8], diff_id: Option<&Digest>) -> (Vec<String>, Digest) {
    let spec = LayerSpec {
        index: 0,
        digest: Digest::sha256_of(blob),
        size: blob.len() as u64,
        diff_id: diff_id.cloned(),
        verify_digest: true,
        media_type: String::new(),
    };
    let a = analyze_blob(blob, &spec, &Limits::default(), content_plan())
        .unwrap_or_else(|e| panic!("{e}"));
    (
        a.entries.iter().map(|e| e.path.to_string()).collect(),
        a.diff_id,
    )
}

#[test]
fn zstd_layers_with_skippable_frames_and_several_frames() {
    let (tar, diff_id, entries) = largest_clean_layer();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().join("layer.tar");
    std::fs::write(&t, &tar).unwrap();
    // pzstd: a skippable frame first, then a frame per chunk.
    let p = tool(Command::new("pzstd").args(["-q", "-p", "2", "-c"]).arg(&t));
    assert_eq!(
        &p[..4],
        b"\x50\x2a\x4d\x18",
        "pzstd starts with a skippable frame"
    );
    assert_eq!(
        analyze(&p, Some(&diff_id)),
        (entries.clone(), diff_id.clone())
    );
    // Two frames from the zstd CLI, concatenated (RFC 8878 §3: a stream of frames).
    let half = (tar.len() / 2) & !511;
    std::fs::write(tmp.path().join("a"), &tar[..half]).unwrap();
    std::fs::write(tmp.path().join("b"), &tar[half..]).unwrap();
    let mut two = tool(
        Command::new("zstd")
            .args(["-q", "-c"])
            .arg(tmp.path().join("a")),
    );
    two.extend(tool(
        Command::new("zstd")
            .args(["-q", "-c"])
            .arg(tmp.path().join("b")),
    ));
    assert_eq!(analyze(&two, Some(&diff_id)), (entries, diff_id));
}

/// skopeo 1.9.3 writes zstd:chunked layers (frames per file, skippable frames with the
/// table of contents at the end). Each decompresses to what the zstd CLI says; where
/// skopeo's tar differs from the config's diff_id (it drops the tar's trailing padding and
/// keeps the diff_ids: containers/storage#1771) the audit is an error naming that layer,
/// as `podman pull` fails on such an image.
#[test]
fn zstd_chunked_layers_from_skopeo() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("chunked");
    skopeo(&[
        "copy",
        "-q",
        "--dest-compress-format",
        "zstd:chunked",
        "--dest-compress",
        &format!("oci:{}:latest", image("clean")),
        &format!("oci:{}:latest", dest.display()),
    ]);
    let clean = ok(&image("clean"));
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dest.join("index.json")).unwrap()).unwrap();
    let blob = |d: &str| {
        dest.join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    let mut mismatches = Vec::new();
    for (i, l) in manifest["layers"].as_array().unwrap().iter().enumerate() {
        let d = l["digest"].as_str().unwrap();
        assert!(l["annotations"]["io.containers.zstd-chunked.manifest-checksum"].is_string());
        let p = blob(d);
        let bytes = std::fs::read(&p).unwrap();
        let (got_entries, got) = analyze(&bytes, None);
        let oracle = Digest::sha256_of(&tool(Command::new("zstd").args(["-dc"]).arg(&p)));
        assert_eq!(got, oracle, "layer {i}: diff_id vs zstd -dc");
        let want = clean.layers[i].diff_id.clone().unwrap();
        if got != want {
            mismatches.push(format!("layer {i} ({d}, "));
        }
        assert!(!got_entries.is_empty());
        assert_eq!(sha256_file(&p).to_string(), d);
    }
    // Layers are streamed largest first and the first failure stops the audit: the error
    // names one of the layers the zstd CLI says differ.
    match audit(&format!("oci:{}", dest.display())) {
        Ok(r) if mismatches.is_empty() => assert_same(&r, &clean, "zstd:chunked"),
        Err(e) => assert!(
            mismatches.iter().any(|m| e.starts_with(m.as_str()))
                && e.contains("does not match diff_id"),
            "{e} (zstd -dc differs in {mismatches:?})"
        ),
        Ok(_) => panic!("audited, but zstd -dc differs from the diff_ids in {mismatches:?}"),
    }
}

/// Forged: index entries of media types no tool here writes for images.
#[test]
fn an_index_of_unknown_media_types_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = |name: &str| {
        let dst = tmp.path().join(name);
        tool(Command::new("cp").arg("-r").arg(image("clean")).arg(&dst));
        dst
    };
    let set_type = |layout: &Path, mt: &str| {
        let p = layout.join("index.json");
        let mut idx: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        for m in idx["manifests"].as_array_mut().unwrap() {
            m["mediaType"] = serde_json::Value::from(mt);
        }
        std::fs::write(&p, serde_json::to_vec(&idx).unwrap()).unwrap();
    };
    let one = copy("one");
    set_type(&one, "application/vnd.example.sbom.v1+json");
    let e = err(&one.display().to_string());
    assert!(
        e.contains("no image manifests") && e.contains("application/vnd.example.sbom.v1+json"),
        "{e}"
    );
    // Named by its tag, it is still not an image.
    let e = err(&format!("oci:{}:latest", one.display()));
    assert!(e.contains("not an image manifest or index"), "{e}");
    // Every entry of a real multi-platform index made unknown.
    let multi = tmp.path().join("multi");
    tool(
        Command::new("cp")
            .arg("-r")
            .arg(image("clean-multiarch-flat"))
            .arg(&multi),
    );
    set_type(&multi, "application/vnd.example.unknown");
    for platform in [PlatformChoice::Default, PlatformChoice::All] {
        let e = audit_all(&multi.display().to_string(), platform).unwrap_err();
        assert!(e.contains("no image manifests"), "{e}");
    }
}

/// Runs `f` on a thread and fails the test if it has not returned after 30 s.
fn within_30s<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("{what}: still blocked after 30 s"))
}

#[test]
fn fifos_in_place_of_files_are_errors_not_hangs() {
    let tmp = tempfile::tempdir().unwrap();
    let mkfifo = |p: &Path| {
        if p.exists() {
            std::fs::remove_file(p).unwrap();
        }
        tool(Command::new("mkfifo").arg(p));
    };
    let layout = tmp.path().join("layout");
    tool(
        Command::new("cp")
            .arg("-r")
            .arg(image("clean"))
            .arg(&layout),
    );
    let r = ok(&image("clean"));
    let big = r.layers[0].digest.as_ref().unwrap().hex().to_string();
    mkfifo(&layout.join("blobs/sha256").join(&big));
    let skdir = tmp.path().join("skdir");
    skopeo_copy("clean", &format!("dir:{}", skdir.display()));
    mkfifo(&skdir.join(&big));
    let index_fifo = tmp.path().join("index-fifo");
    tool(
        Command::new("cp")
            .arg("-r")
            .arg(image("clean"))
            .arg(&index_fifo),
    );
    mkfifo(&index_fifo.join("index.json"));
    let tar_fifo = tmp.path().join("image.tar");
    mkfifo(&tar_fifo);
    let rootfs = tmp.path().join("rootfs");
    std::fs::create_dir(&rootfs).unwrap();
    std::fs::write(rootfs.join("app"), b"#!/bin/sh\n").unwrap();
    mkfifo(&rootfs.join("pipe"));
    for spec in [
        layout.display().to_string(),
        format!("dir:{}", skdir.display()),
        index_fifo.display().to_string(),
        tar_fifo.display().to_string(),
        format!("docker-archive:{}", tar_fifo.display()),
    ] {
        let s = spec.clone();
        let e = within_30s(&spec, move || err(&s));
        assert!(e.contains("a FIFO, not a regular file"), "{spec}: {e}");
        assert_eq!(e.matches("a FIFO").count(), 1, "said once: {e}");
    }
    // In a root filesystem a FIFO is an entry like any other, never opened.
    let s = format!("rootfs:{}", rootfs.display());
    let r = within_30s(&s.clone(), move || ok(&s));
    assert_eq!(r.image.files, 2);
}

/// What skopeo 1.9.3 says about an image name: `Err` with its message when it refuses it.
fn skopeo_parse(name: &str) -> Result<(), String> {
    let o = Command::new("skopeo")
        .args(["inspect", "--retry-times", "0", name])
        .output()
        .unwrap_or_else(|e| panic!("cannot run skopeo (.ci/run installs it): {e}"));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    if err.contains("unknown transport") {
        Err(err)
    } else {
        Ok(())
    }
}

/// The README's transport names are skopeo's: each one it lists as skopeo's is a transport
/// skopeo itself parses, the one it says skopeo lacks (`rootfs:`) is not, and imgaudit reads
/// every local one (a missing path is "not found", not an unknown transport).
#[test]
fn readme_transport_names_are_skopeos() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let start = readme
        .find("The transport names are skopeo's")
        .expect("README names the transports");
    let para = &readme[start..start + readme[start..].find("\n\n").unwrap()];
    let (theirs, ours) = para.split_once("skopeo has none").unwrap();
    let names = |s: &str| -> Vec<String> {
        s.split('`')
            .skip(1)
            .step_by(2)
            .filter(|n| n.ends_with(':') || n.ends_with("://"))
            .map(str::to_string)
            .collect()
    };
    // Only the sentence about skopeo's missing transport: the rest of the paragraph quotes
    // skopeo's names again.
    let ours = ours.split_once(". ").map_or(ours, |(sentence, _)| sentence);
    let (theirs, ours) = (names(theirs), names(ours));
    assert_eq!(
        theirs,
        [
            "oci:",
            "oci-archive:",
            "docker-archive:",
            "dir:",
            "docker-daemon:",
            "containers-storage:",
            "docker://"
        ]
    );
    assert_eq!(ours, ["rootfs:"]);
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    for t in &theirs {
        // docker:// to a closed loopback port: parsed, then refused without a network.
        // Engine transports take an image reference, not a path.
        let name = match t.as_str() {
            "docker://" => "docker://127.0.0.1:9/imgaudit/x:1".to_string(),
            "docker-daemon:" | "containers-storage:" => format!("{t}imgaudit/missing:1"),
            _ => format!("{t}{}", missing.display()),
        };
        if let Err(e) = skopeo_parse(&name) {
            panic!("README calls {t} skopeo's, but skopeo refuses {name}: {e}");
        }
    }
    for t in &ours {
        let name = format!("{t}{}", missing.display());
        assert!(skopeo_parse(&name).is_err(), "skopeo knows {t} after all");
    }
    // The local ones; the engine transports have their own tests (tests/engines.rs).
    let engine =
        |t: &str| t.ends_with("://") || t == "docker-daemon:" || t == "containers-storage:";
    for t in theirs.iter().chain(&ours).filter(|t| !engine(t)) {
        let e = err(&format!("{t}{}", missing.display()));
        assert!(
            !e.contains("not supported") && !e.contains("transport"),
            "{t}: {e}"
        );
    }
}
