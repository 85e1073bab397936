"""Build the lease image `localhost/gridlease-sshd:1` locally: a Debian rootfs with openssh-server.

No registry is reachable from provider test machines, so the image is made from a debootstrap
rootfs (the Debian mirror is reachable) and `podman import`ed. The rootfs tar is cached outside
the clone, keyed by a hash of everything that goes into it, so a fresh clone reuses it.

Run `python -m services.gpu_node.runtime.images` to build (needs root, debootstrap and podman).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from services.gpu_node.runtime.podman_cli import PodmanCli

__all__ = [
    "SSHD_CAPABILITIES",
    "SSHD_CONTAINER_PORT",
    "SSHD_IMAGE",
    "ImageBuildError",
    "ImageRecipe",
    "ensure_sshd_image",
    "image_cache_dir",
]

log = logging.getLogger(__name__)

SSHD_IMAGE = "localhost/gridlease-sshd:1"
# Label on the imported image: lets `ensure_sshd_image` notice a stale image after a recipe change.
RECIPE_LABEL = "gridlease.image-recipe"
# Port sshd listens on inside the image (see image/sshd_config).
SSHD_CONTAINER_PORT = 2222
# Capabilities the image's sshd needs, and all a lease container gets: SETUID/SETGID for privilege
# separation to become the `sshd` user, SYS_CHROOT to jail the pre-auth child in /run/sshd.
# Checked with podman: with any one of them missing, logins fail.
SSHD_CAPABILITIES = ("SETUID", "SETGID", "SYS_CHROOT")


class ImageBuildError(RuntimeError):
    """A step of the image build failed; the message names the step and its output."""


def image_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gridlease" / "images"


@dataclass(frozen=True)
class ImageRecipe:
    """Everything that decides the rootfs content; its digest names the cached tar."""

    suite: str = "bookworm"
    mirror: str = "http://deb.debian.org/debian"
    packages: tuple[str, ...] = ("openssh-server",)

    def _files(self) -> dict[str, bytes]:
        image_dir = resources.files("services.gpu_node.runtime") / "image"
        return {name: (image_dir / name).read_bytes() for name in ("entrypoint.sh", "sshd_config")}

    def digest(self) -> str:
        h = hashlib.sha256()
        h.update(f"{self.suite}\n{self.mirror}\n{','.join(self.packages)}\n".encode())
        for name, content in sorted(self._files().items()):
            h.update(name.encode() + b"\0" + content)
        return h.hexdigest()[:16]


def _run(step: str, cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-2000:]
        raise ImageBuildError(f"{step} failed (exit {proc.returncode}): {tail}")


def build_rootfs_tar(recipe: ImageRecipe, dest: Path) -> None:
    """debootstrap a minimal Debian with the recipe's packages and pack it into `dest`."""
    if shutil.which("debootstrap") is None:
        raise ImageBuildError("debootstrap is not installed (apt-get install -y debootstrap)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gridlease-rootfs-", dir=dest.parent) as tmp:
        rootfs = Path(tmp) / "rootfs"
        _run(
            "debootstrap",
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(recipe.packages)}",
                recipe.suite,
                str(rootfs),
                recipe.mirror,
            ],
        )
        files = recipe._files()
        entrypoint = rootfs / "usr/local/bin/gridlease-entrypoint"
        entrypoint.write_bytes(files["entrypoint.sh"])
        entrypoint.chmod(0o755)
        (rootfs / "etc/ssh/sshd_config.d/gridlease.conf").write_bytes(files["sshd_config"])
        # Host keys made by the package's postinst would be shared by every container.
        for key in (rootfs / "etc/ssh").glob("ssh_host_*"):
            key.unlink()
        shutil.rmtree(rootfs / "var/lib/apt/lists", ignore_errors=True)
        shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
        partial = dest.with_suffix(".partial")
        _run("tar", ["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(partial), "."])
        partial.replace(dest)


def ensure_sshd_image(
    podman: PodmanCli, recipe: ImageRecipe | None = None, image: str = SSHD_IMAGE
) -> str:
    """Make sure `image` exists and was built from `recipe`; build or import it if not."""
    recipe = recipe or ImageRecipe()
    digest = recipe.digest()
    if podman.image_label(image, RECIPE_LABEL) == digest:
        return image
    tar = image_cache_dir() / f"gridlease-sshd-{digest}.tar"
    if not tar.exists():
        started = time.monotonic()
        log.info("building rootfs %s (debootstrap, takes minutes once)", tar)
        build_rootfs_tar(recipe, tar)
        log.info("rootfs built in %.0f s", time.monotonic() - started)
    podman.run_checked(
        [
            "import",
            "--change",
            'ENTRYPOINT ["/usr/local/bin/gridlease-entrypoint"]',
            "--change",
            f"EXPOSE {SSHD_CONTAINER_PORT}",
            "--change",
            f"LABEL {RECIPE_LABEL}={digest}",
            str(tar),
            image,
        ]
    )
    return image


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    started = time.monotonic()
    image = ensure_sshd_image(PodmanCli())
    log.info("%s ready after %.0f s", image, time.monotonic() - started)


if __name__ == "__main__":
    main()
