"""Build small OCI images in skopeo's ``dir:`` layout and drive skopeo against 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ImageDir", "Skopeo", "make_image_dir"]


@dataclass(frozen=True)
class ImageDir:
    """An image written in skopeo's ``dir:`` transport layout."""

    path: Path
    manifest_digest: str
    blob_digests: tuple[str, ...]  # config, then layers


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_image_dir(path: Path, content: bytes = b"hello\n", layers: int = 1) -> ImageDir:
    """Write a minimal OCI image (one config, ``layers`` tar layers) for ``skopeo copy dir:``.

    Args:
        path: the directory to create.
        content: what each layer's file holds (vary it to get different digests).
        layers: how many layers.

    Returns:
        The image's digests.
    """
    path.mkdir(parents=True, exist_ok=True)

    def put(data: bytes) -> str:
        hexdigest = hashlib.sha256(data).hexdigest()
        (path / hexdigest).write_bytes(data)
        return f"sha256:{hexdigest}"

    layer_blobs = [_tar({f"layer{i}.txt": content + str(i).encode()}) for i in range(layers)]
    layer_digests = [put(blob) for blob in layer_blobs]
    config = json.dumps({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {
            "type": "layers",
            "diff_ids": [f"sha256:{hashlib.sha256(b).hexdigest()}" for b in layer_blobs],
        },
    }).encode()
    config_digest = put(config)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": len(config)},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": len(b)}
            for d, b in zip(layer_digests, layer_blobs, strict=True)
        ],
    }).encode()
    (path / "manifest.json").write_bytes(manifest)
    (path / "version").write_text("Directory Transport Version: 1.1\n")
    return ImageDir(path, f"sha256:{hashlib.sha256(manifest).hexdigest()}",
                    (config_digest, *layer_digests))


class Skopeo:
    """Run skopeo against a plain-HTTP registry on 127.0.0.1, with no ambient config.

    Args:
        binary: the skopeo executable.
        home: a private HOME (no auth files or registries.conf of the machine's user).
    """

    def __init__(self, binary: str, home: Path) -> None:
        self.binary = binary
        home.mkdir(parents=True, exist_ok=True)
        (home / "run").mkdir(exist_ok=True)
        self.env = {**os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(home / "run")}

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``skopeo ARGS`` (60 s at most)."""
        done = subprocess.run(
            [self.binary, *args], capture_output=True, text=True, env=self.env, timeout=60,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"skopeo {' '.join(args)} failed: {done.stderr.strip()}")
        return done

    def push(self, image: ImageDir, ref: str, creds: str) -> None:
        """``skopeo copy dir:IMAGE docker://REF``."""
        self.run("copy", "--dest-tls-verify=false", "--dest-creds", creds,
                 f"dir:{image.path}", f"docker://{ref}")

    def pull(self, ref: str, dest: Path, creds: str) -> None:
        """``skopeo copy docker://REF dir:DEST``."""
        self.run("copy", "--src-tls-verify=false", "--src-creds", creds,
                 f"docker://{ref}", f"dir:{dest}")

    def inspect(self, ref: str, creds: str) -> subprocess.CompletedProcess[str]:
        """``skopeo inspect docker://REF`` (not checked: wrong passwords fail)."""
        return self.run("inspect", "--tls-verify=false", "--creds", creds,
                        f"docker://{ref}", check=False)

    def delete(self, ref: str, creds: str) -> None:
        """``skopeo delete docker://REF``."""
        self.run("delete", "--tls-verify=false", "--creds", creds, f"docker://{ref}")
