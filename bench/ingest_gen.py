"""Generate a distribution 2.8 JSON log (logrus ``formatter: json``) of realistic traffic.

The line shapes are copied from what Debian's ``docker-registry`` (2.8.2) writes for
real requests (see ``tests/ingest/test_real_registry.py``): an ``authorized request``
line then a ``response completed`` (or ``response completed with error``) line per
request, ``error authorizing context`` warnings for 401s, keys sorted as Go's
``encoding/json`` sorts them and ``&`` escaped as ``\\u0026``.

Usage::

    .venv/bin/python -m bench.ingest_gen --lines 1000000 --out /tmp/registry.log

The output is deterministic for a given ``--seed``.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

__all__ = ["generate", "main"]

_GO = "go1.19.8"
_HOST = "registry.example.internal:5000"
_AGENTS = (
    "docker/24.0.5 go/go1.20.6 git-commit/a61e2b4 kernel/6.1.0-13-amd64 os/linux arch/amd64",
    "containerd/1.6.20",
    "skopeo/1.13.3",
    "cri-o/1.27.1 go/go1.20.3 os/linux arch/amd64",
    "python-httpx/0.28.1",
)
_PROBE_AGENT = "registry-slo/0.1.0"
_REPOS = tuple(
    [f"team-{i}/service-{j}" for i in range(8) for j in range(6)] + ["library/nginx", "base/debian"]
)


@dataclass(frozen=True)
class _Kind:
    weight: int
    method: str
    route: str  # ping, catalog, tags, manifest, blob, upload_start, upload_chunk, upload_end
    status: int
    err: tuple[str, str] | None = None  # (err.code, err.message)
    auth_failure: str | None = None  # the "error authorizing context" reason; no response line


_KINDS = (
    _Kind(250, "GET", "manifest", 200),
    _Kind(100, "HEAD", "manifest", 200),
    _Kind(250, "GET", "blob", 200),
    _Kind(30, "GET", "manifest", 404, ("manifest unknown", "manifest unknown")),
    _Kind(50, "HEAD", "blob", 404, ("blob unknown", "blob unknown to registry")),
    _Kind(50, "POST", "upload_start", 202),
    _Kind(20, "PATCH", "upload_chunk", 202),
    _Kind(50, "PUT", "upload_end", 201),
    _Kind(30, "PUT", "manifest", 201),
    _Kind(30, "GET", "tags", 200),
    _Kind(50, "GET", "ping", 200),
    _Kind(10, "GET", "catalog", 200),
    _Kind(10, "DELETE", "manifest", 202),
    _Kind(10, "GET", "blob", 500, ("unknown", "unknown error")),
    _Kind(5, "PUT", "manifest", 400, ("manifest blob unknown", "blob unknown to registry")),
    _Kind(40, "GET", "ping", 401, auth_failure="authorization token required"),
    _Kind(10, "GET", "manifest", 401, auth_failure="invalid token"),
    _Kind(5, "GET", "manifest", 401, auth_failure="insufficient scope"),
)
_WEIGHTS = tuple(k.weight for k in _KINDS)


def _digest(rng: random.Random) -> str:
    return "sha256:" + rng.getrandbits(256).to_bytes(32, "big").hex()


def _duration(rng: random.Random, kind: _Kind) -> str:
    """A Go ``time.Duration`` string, as logrus prints ``http.response.duration``."""
    seconds = rng.lognormvariate(-4.5, 1.2) * (8 if kind.route in ("blob", "upload_end") else 1)
    if seconds < 1e-3:
        return f"{seconds * 1e6:.3f}µs"
    if seconds < 1:
        return f"{seconds * 1e3:.6f}ms"
    return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"


def _uri(rng: random.Random, kind: _Kind, repo: str) -> tuple[str, dict[str, str]]:
    route = kind.route
    if route == "ping":
        return "/v2/", {}
    if route == "catalog":
        return "/v2/_catalog", {}
    if route == "tags":
        return f"/v2/{repo}/tags/list", {"vars.name": repo}
    if route == "manifest":
        ref = _digest(rng) if kind.method == "DELETE" else rng.choice(("latest", "v1.2.3", "main"))
        return f"/v2/{repo}/manifests/{ref}", {"vars.name": repo, "vars.reference": ref}
    if route == "blob":
        digest = _digest(rng)
        return f"/v2/{repo}/blobs/{digest}", {"vars.name": repo, "vars.digest": digest}
    if route == "upload_start":
        return f"/v2/{repo}/blobs/uploads/", {"vars.name": repo}
    upload = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    state = base64.urlsafe_b64encode(rng.randbytes(135)).decode()
    query = f"?_state={state}"
    if route == "upload_end":
        query += "&digest=" + _digest(rng).replace(":", "%3A")
    return f"/v2/{repo}/blobs/uploads/{upload}{query}", {"vars.name": repo, "vars.uuid": upload}


def _line(fields: dict[str, object]) -> str:
    # Go's encoding/json sorts map keys and escapes &, < and >.
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _request_lines(rng: random.Random, when: datetime) -> list[str]:
    kind = rng.choices(_KINDS, weights=_WEIGHTS)[0]
    repo = rng.choice(_REPOS)
    uri, route_vars = _uri(rng, kind, repo)
    agent = _PROBE_AGENT if rng.random() < 0.02 else rng.choice(_AGENTS)
    base: dict[str, object] = {
        "go.version": _GO,
        "http.request.host": _HOST,
        "http.request.id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "http.request.method": kind.method,
        "http.request.remoteaddr": (
            f"10.{rng.randrange(256)}.{rng.randrange(256)}.7:{rng.randrange(1024, 65535)}"
        ),
        "http.request.uri": uri,
        "http.request.useragent": agent,
    }
    if kind.method in ("PUT", "PATCH") and kind.route != "manifest":
        base["http.request.contenttype"] = "application/octet-stream"
    elif kind.method == "PUT":
        base["http.request.contenttype"] = "application/vnd.oci.image.manifest.v1+json"
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.")
    stamp += f"{when.microsecond:06d}{rng.randrange(1000):03d}Z"
    if kind.auth_failure is not None:
        reason = kind.auth_failure
        return [_line({
            **base, **route_vars, "level": "warning",
            "msg": f"error authorizing context: {reason}", "time": stamp,
        })]
    authorized = _line({**base, **route_vars, "level": "info", "msg": "authorized request",
                        "time": stamp})
    written = 0
    if kind.status == 200 and kind.method == "GET":
        written = (
            rng.randrange(1, 60_000_000) if kind.route == "blob" else rng.randrange(200, 2_000)
        )
    response: dict[str, object] = {
        **base,
        "http.response.duration": _duration(rng, kind),
        "http.response.status": kind.status,
        "http.response.written": written,
        "time": stamp,
    }
    if kind.status == 200 and kind.method in ("GET", "HEAD"):
        response["http.response.contenttype"] = (
            "application/octet-stream" if kind.route == "blob"
            else "application/vnd.oci.image.manifest.v1+json" if kind.route == "manifest"
            else "application/json; charset=utf-8"
        )
    if kind.err is not None:
        code, message = kind.err
        response.update({
            **route_vars, "auth.user.name": "ci-bot", "err.code": code,
            "err.detail": "", "err.message": message, "level": "error",
            "msg": "response completed with error",
            "http.response.contenttype": "application/json; charset=utf-8",
        })
    else:
        response.update({"level": "info", "msg": "response completed"})
    return [authorized, _line(response)]


def generate(lines: int, seed: int = 1) -> Iterator[str]:
    """Yield ``lines`` log lines (without newlines), deterministic for ``seed``."""
    rng = random.Random(seed)
    when = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    produced = 0
    start = {"instance.id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "go.version": _GO,
             "service": "registry", "version": "2.8.2+ds1"}
    for msg in ("redis not configured", "using inmemory blob descriptor cache",
                "listening on [::]:5000"):
        if produced < lines:
            yield _line({**start, "level": "info", "msg": msg,
                         "time": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")})
            produced += 1
    while produced < lines:
        when += timedelta(microseconds=rng.randrange(50, 5_000))
        for line in _request_lines(rng, when):
            if produced == lines:
                return
            yield line
            produced += 1


def main(argv: list[str] | None = None) -> int:
    """Write the generated log to ``--out`` (or stdout)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    out = args.out.open("w", encoding="utf-8") if args.out else sys.stdout
    try:
        for line in generate(args.lines, args.seed):
            out.write(line + "\n")
    finally:
        if args.out:
            out.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
