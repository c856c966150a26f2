#!/usr/bin/env python3
"""Writes the binary seeds of the fuzz corpus (tar layers and image archives).

The text seeds are files written by hand; these are generated because a tar or an archive of
tars is easier to get right with Python's tarfile than by hand. Run from this directory:
`python3 make-seeds.py`. Output is deterministic (fixed mtimes, owners and order), so the
committed seeds only change when this script does.
"""
import gzip
import hashlib
import io
import json
import tarfile

MTIME = 1700000000


def info(name, kind=tarfile.REGTYPE, size=0, mode=0o644, **kw):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.size = size
    ti.mode = mode
    ti.mtime = MTIME
    ti.uid = kw.pop("uid", 0)
    ti.gid = kw.pop("gid", 0)
    ti.uname = ti.gname = ""
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti


def tar_bytes(entries, fmt=tarfile.PAX_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for ti, data in entries:
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    # tarfile pads to 10 KiB records; keep only the two-block end marker (as docker does).
    data = buf.getvalue().rstrip(b"\0")
    return data + b"\0" * (-len(data) % 512 + 1024)


def file(name, data, mode=0o644, **kw):
    return info(name, size=len(data), mode=mode, **kw), data


def layer_seeds():
    long_dir = "usr/share/" + "d" * 90 + "/" + "e" * 60
    out = {}
    out["ustar-basic.tar"] = tar_bytes([
        (info("etc/", tarfile.DIRTYPE, mode=0o755), None),
        file("etc/hostname", b"fuzz\n"),
        (info("bin/", tarfile.DIRTYPE, mode=0o755), None),
        file("bin/tool", b"#!/bin/sh\necho hi\n", mode=0o4755),
        (info("bin/sh", tarfile.SYMTYPE, linkname="busybox", mode=0o777), None),
        (info("bin/tool-link", tarfile.LNKTYPE, linkname="bin/tool"), None),
        (info("tmp/", tarfile.DIRTYPE, mode=0o1777), None),
        (info("dev/", tarfile.DIRTYPE, mode=0o755), None),
        (info("dev/fifo", tarfile.FIFOTYPE), None),
    ], tarfile.USTAR_FORMAT)
    out["gnu-longname.tar"] = tar_bytes([
        (info(long_dir + "/", tarfile.DIRTYPE, mode=0o755), None),
        file(long_dir + "/" + "f" * 120, b"long\n"),
        (info("lnk", tarfile.SYMTYPE, linkname="../" * 40 + "etc/passwd"), None),
        (info("hl", tarfile.LNKTYPE, linkname=long_dir + "/" + "f" * 120), None),
    ], tarfile.GNU_FORMAT)
    pax_file, pax_data = file("opt/app/config.yaml", b"key: value\n", uid=1000, gid=1000)
    pax_file.pax_headers = {
        "SCHILY.xattr.user.comment": "fuzz",
        "SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x04\x00\x00",
        "mtime": "1700000000.123456789",
        "atime": "1700000001.5",
        "path": "opt/app/" + "p" * 150 + ".yaml",
    }
    out["pax-xattrs.tar"] = tar_bytes([
        (info("opt/", tarfile.DIRTYPE, mode=0o755), None),
        (info("opt/app/", tarfile.DIRTYPE, mode=0o755), None),
        (pax_file, pax_data),
        (info("opt/app/dev-null", tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666), None),
    ])
    out["whiteouts.tar"] = tar_bytes([
        (info("etc/", tarfile.DIRTYPE, mode=0o755), None),
        file("etc/.wh.shadow", b""),
        (info("var/", tarfile.DIRTYPE, mode=0o755), None),
        (info("var/cache/", tarfile.DIRTYPE, mode=0o755), None),
        file("var/cache/.wh..wh..opq", b""),
        file("var/cache/new", b"x"),
        file("./etc/./resolv.conf", b"nameserver 10.0.0.1\n"),
    ], tarfile.PAX_FORMAT)
    # Large uid/gid and size fields in base-256 (GNU), as docker writes for big ids.
    big = info("home/", tarfile.DIRTYPE, mode=0o700, uid=3_000_000_000, gid=2_100_000)
    out["gnu-base256.tar"] = tar_bytes([(big, None), file("home/f", b"data", uid=4_000_000_000)],
                                       tarfile.GNU_FORMAT)
    return out


def sha(b):
    return hashlib.sha256(b).hexdigest()


def docker_save_archive():
    layer = layer_seeds()["ustar-basic.tar"]
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["/bin/sh"], "User": "1000"},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha(layer)]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "ADD rootfs /"}],
    }, separators=(",", ":")).encode()
    layer_id = sha(b"layer-id")
    manifest = json.dumps([{
        "Config": sha(config) + ".json",
        "RepoTags": ["example/app:1.0"],
        "Layers": [layer_id + "/layer.tar"],
    }]).encode()
    repositories = json.dumps({"example/app": {"1.0": layer_id}}).encode()
    entries = [
        (info(layer_id + "/", tarfile.DIRTYPE, mode=0o755), None),
        file(layer_id + "/VERSION", b"1.0"),
        file(layer_id + "/layer.tar", layer),
        file(sha(config) + ".json", config),
        file("manifest.json", manifest),
        file("repositories", repositories),
    ]
    return tar_bytes(entries, tarfile.USTAR_FORMAT)


def oci_archive():
    layer = gzip.compress(layer_seeds()["whiteouts.tar"], mtime=0)
    diff = sha(gzip.decompress(layer))
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff]},
    }).encode()
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": "sha256:" + sha(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": "sha256:" + sha(layer), "size": len(layer)}],
    }).encode()
    index = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": "sha256:" + sha(manifest), "size": len(manifest),
                       "annotations": {"io.containerd.image.name": "docker.io/example/app:1.0",
                                       "org.opencontainers.image.ref.name": "1.0"}}],
    }).encode()
    entries = [
        file("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
        file("index.json", index),
        (info("blobs/", tarfile.DIRTYPE, mode=0o755), None),
        (info("blobs/sha256/", tarfile.DIRTYPE, mode=0o755), None),
        file("blobs/sha256/" + sha(layer), layer),
        file("blobs/sha256/" + sha(config), config),
        file("blobs/sha256/" + sha(manifest), manifest),
    ]
    return tar_bytes(entries, tarfile.PAX_FORMAT)


def main():
    for name, data in layer_seeds().items():
        with open("tar/" + name, "wb") as f:
            f.write(data)
    with open("archive/docker-save.tar", "wb") as f:
        f.write(docker_save_archive())
    with open("archive/oci-archive.tar", "wb") as f:
        f.write(oci_archive())


main()
