#!/usr/bin/env python3
"""Compares imgaudit's JSON report with readelf and `go version -m` on the same files.
Usage: compare.py REPORT.json ROOTFS GO-BINARY. Prints counts; exits 1 on any disagreement."""
import json, os, re, subprocess, sys

report, root, go = sys.argv[1], sys.argv[2], sys.argv[3]
r = json.load(open(report))
bad, elf_ok, go_ok, go_recovered = [], 0, 0, 0

def readelf(p):
    out = subprocess.run(["readelf", "-hldSVnW", p], capture_output=True, text=True).stdout
    f = {"needed": [], "rpath": [], "runpath": [], "soname": None, "interp": None, "symtab": False,
         "dwarf": False, "build_id": None, "type": None, "verneed": {}}
    sect, cur = None, None
    for line in out.splitlines():
        t = line.strip()
        if t.startswith("Version needs section"): sect = "vn"; continue
        if t.startswith(("Version definition", "Version symbols", "Displaying notes")) or not t: sect = None
        if t.startswith("Type:"): f["type"] = t.split()[1]
        m = re.search(r"\[Requesting program interpreter: (.*)\]", t)
        if m: f["interp"] = m.group(1)
        for tag, key in (("(NEEDED)", "needed"), ("(RPATH)", "rpath"), ("(RUNPATH)", "runpath")):
            if tag in t:
                v = t[t.index("[") + 1:t.rindex("]")]
                f[key] += [v] if key == "needed" else v.split(":")
        if "(SONAME)" in t: f["soname"] = t[t.index("[") + 1:t.rindex("]")]
        m = re.match(r"\[\s*\d+\]\s+(\S+)\s+(\S+)", t)
        if m:
            if m.group(2) == "SYMTAB": f["symtab"] = True
            if m.group(1).startswith((".debug_", ".zdebug_")): f["dwarf"] = True
        if "Build ID: " in t: f["build_id"] = t.split("Build ID: ")[1].strip()
        if sect == "vn":
            if "File: " in t: cur = t.split("File: ")[1].split()[0]; f["verneed"][cur] = []
            elif "Name: " in t and cur: f["verneed"][cur].append(t.split("Name: ")[1].split()[0])
    return f

def unquote(v):
    return json.loads(v) if v.startswith('"') else v

def govm(p):
    o = subprocess.run([go, "version", "-m", p], capture_output=True, text=True)
    if o.returncode != 0 or not o.stdout: return None
    lines = o.stdout.splitlines()
    info = {"go": lines[0].split(": ", 1)[1], "path": None, "mod": None, "dep": [], "build": {}}
    last = None
    for line in lines[1:]:
        c = line.split("\t")[1:]
        if not c or c == [""]: continue
        if c[0] == "path": info["path"] = c[1]
        elif c[0] in ("mod", "dep"):
            m = {"path": c[1], "version": c[2]}
            if len(c) > 3 and c[3]: m["sum"] = c[3]
            if c[0] == "mod": info["mod"] = m
            else: info["dep"].append(m)
            last = m
        elif c[0] == "=>":
            m = {"path": c[1], "version": c[2]}
            if len(c) > 3 and c[3]: m["sum"] = c[3]
            last.pop("sum", None); last["replace"] = m
        elif c[0] == "build":
            k, _, v = c[1].partition("=")
            info["build"][unquote(k)] = unquote(v)
    return info

for b in r["binaries"]:
    p = os.path.join(root, b["path"].lstrip("/"))
    e = readelf(p)
    ours = {"needed": b["needed"], "rpath": b.get("rpath", []), "runpath": b.get("runpath", []),
            "soname": b.get("soname"), "interp": b.get("interpreter"), "symtab": not b["stripped"],
            "dwarf": b["dwarf"], "build_id": b.get("build_id")}
    for k, v in ours.items():
        if v != e[k]: bad.append(f"{b['path']}: {k}: imgaudit {v!r} vs readelf {e[k]!r}")
    elf_ok += 1
    g = govm(p)
    ours_go = b.get("go")
    if g is not None:
        if not ours_go: bad.append(f"{b['path']}: go version -m reads it, imgaudit says not Go"); continue
        mine = {k: ours_go.get(k) for k in ("go", "path", "mod", "dep", "build")}
        if mine["dep"] is None: mine["dep"] = []
        for k in g:
            if (mine[k] or None) != (g[k] or None):
                bad.append(f"{b['path']}: go {k}: imgaudit {mine[k]!r} vs go version -m {g[k]!r}")
        if ours_go.get("build_info_source") not in ("section", "segment"):
            bad.append(f"{b['path']}: build_info_source {ours_go.get('build_info_source')}")
        go_ok += 1
    elif ours_go and ours_go.get("build_info_source") == "rodata":
        go_recovered += 1
        print(f"  {b['path']}: go version -m cannot read it; imgaudit recovered {ours_go.get('go')} {ours_go.get('path')} "
              f"({len(ours_go.get('dep', []))} deps) from .rodata")
    elif ours_go and ours_go.get("build_info_source") in ("section", "segment"):
        bad.append(f"{b['path']}: imgaudit read build info go version -m does not")

print(f"{report}: {elf_ok} ELF files agree with readelf, {go_ok} Go binaries agree with go version -m, "
      f"{go_recovered} recovered where go version -m fails; {len(bad)} disagreements")
for x in bad: print("  " + x)
sys.exit(1 if bad else 0)
