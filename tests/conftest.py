"""Shared fixtures: real registries (plain, htpasswd, token, no-delete), fault proxies.

Every fixture that needs a real component calls `require_binary`, which skips the test
locally (naming the Debian package) and fails it under CI (``CI=true``).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator

import pytest
from harness import (
    PROBER,
    READER,
    FaultProxy,
    TokenRegistry,
    TokenServer,
    require_binary,
)

from registry_slo.devenv import HtpasswdAuth, LocalRegistry, TokenAuth

FaultProxyFactory = Callable[[LocalRegistry | str], FaultProxy]
"""Start a `FaultProxy` in front of a registry (or an upstream URL)."""


@pytest.fixture(autouse=True, scope="session")
def _private_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Exporters started by tests keep their SLO state in a temp dir, never in the
    user's ``~/.local/state`` (where a running exporter would hold the lock)."""
    previous = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("state"))
    yield
    if previous is None:
        os.environ.pop("XDG_STATE_HOME", None)
    else:
        os.environ["XDG_STATE_HOME"] = previous


@pytest.fixture
def registry() -> Iterator[LocalRegistry]:
    """A started registry without auth, delete enabled."""
    require_binary("docker-registry")
    with LocalRegistry() as reg:
        yield reg


@pytest.fixture
def htpasswd_registry() -> Iterator[LocalRegistry]:
    """A started registry with htpasswd (bcrypt) auth for `PROBER` and `READER`.

    The credentials are ``harness.PROBER`` / ``harness.READER`` and also
    ``registry.auth.users``.
    """
    require_binary("docker-registry")
    auth = HtpasswdAuth({PROBER.username: PROBER.password, READER.username: READER.password})
    with LocalRegistry(auth=auth) as reg:
        yield reg


@pytest.fixture
def token_server() -> Iterator[TokenServer]:
    """A started token server: `PROBER` may pull/push/delete ``registry-slo/*``,
    `READER` may pull everything."""
    server = TokenServer(
        {PROBER.username: PROBER.password, READER.username: READER.password},
        {
            PROBER.username: {"registry-slo/*": ["pull", "push", "delete"]},
            READER.username: {"*": ["pull"]},
        },
    )
    with server:
        yield server


@pytest.fixture
def token_registry(token_server: TokenServer) -> Iterator[TokenRegistry]:
    """A started ``auth.token`` registry trusting `token_server`."""
    require_binary("docker-registry")
    auth = TokenAuth(
        realm=token_server.realm,
        service=token_server.service,
        issuer=token_server.issuer,
        rootcertbundle=token_server.rootcertbundle,
    )
    with LocalRegistry(auth=auth) as reg:
        yield TokenRegistry(reg, token_server)


@pytest.fixture
def nodelete_registry() -> Iterator[LocalRegistry]:
    """A started registry without auth and with ``storage.delete.enabled: false``."""
    require_binary("docker-registry")
    with LocalRegistry(delete_enabled=False) as reg:
        yield reg


@pytest.fixture
def stopped_registry_url() -> str:
    """``http://127.0.0.1:PORT`` where nothing listens (a port bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def fault_proxy() -> Iterator[FaultProxyFactory]:
    """Factory: ``fault_proxy(registry_or_url)`` starts a `FaultProxy` (stopped at teardown)."""
    proxies: list[FaultProxy] = []

    def make(upstream: LocalRegistry | str) -> FaultProxy:
        url = upstream.url if isinstance(upstream, LocalRegistry) else upstream
        proxy = FaultProxy(url).start()
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.stop()
