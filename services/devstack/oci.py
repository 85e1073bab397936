"""Container images without a registry: a single-layer image written as a Docker archive (the
`docker save` format: manifest.json, config, layer tar), which `ctr images import` and
`podman load` read. Used for the test cluster's real node (its pause image and a busybox image)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ImageFile", "write_image_archive"]


@dataclass(frozen=True)
class ImageFile:
    """One entry of the image's filesystem: a copy of `source` (a regular file on this machine)
    or, with `link`, a symbolic link to `link`."""

    source: Path | None = None
    link: str | None = None
    mode: int = 0o755


def _layer(files: Mapping[str, ImageFile]) -> bytes:
    buf = io.BytesIO()
    dirs: set[str] = set()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(files):
            parts = path.strip("/").split("/")
            for i in range(1, len(parts)):
                d = "/".join(parts[:i])
                if d not in dirs:
                    info = tarfile.TarInfo(d)
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    tar.addfile(info)
                    dirs.add(d)
            entry = files[path]
            info = tarfile.TarInfo(path.strip("/"))
            info.mode = entry.mode
            if entry.link is not None:
                info.type = tarfile.SYMTYPE
                info.linkname = entry.link
                tar.addfile(info)
            elif entry.source is not None:
                data = entry.source.read_bytes()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                raise ValueError(f"image file {path}: neither source nor link")
    return buf.getvalue()


def write_image_archive(
    dest: Path,
    ref: str,
    files: Mapping[str, ImageFile],
    entrypoint: Sequence[str],
    cmd: Sequence[str] = (),
) -> Path:
    """Writes a Docker archive of a linux/amd64 image named `ref` (e.g. "localhost/x/pause:1")
    whose one layer holds `files` (keys: absolute paths in the image). Returns `dest`.
    `OSError` if a source cannot be read or `dest` written; `ValueError` for an empty entry."""
    layer = _layer(files)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Entrypoint": list(entrypoint),
            "Cmd": list(cmd) or None,
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "services.devstack.oci"}],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    layer_name = diff_id.removeprefix("sha256:") + "/layer.tar"
    manifest = [{"Config": config_name, "RepoTags": [ref], "Layers": [layer_name]}]
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_suffix(".partial")
    with tarfile.open(partial, mode="w", format=tarfile.PAX_FORMAT) as out:
        for name, data in (
            (config_name, config_bytes),
            (layer_name, layer),
            ("manifest.json", json.dumps(manifest).encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            out.addfile(info, io.BytesIO(data))
    partial.replace(dest)
    return dest
