"""The auth probe: how long it takes to obtain credentials (M11, F7)."""

from __future__ import annotations

from registry_slo.probes._base import Outcome, Probe
from registry_slo.probes._region import RegionState


class AuthProbe(Probe):
    """Fetch a fresh pull token (Bearer registries) or make an authenticated ``/v2/`` call."""

    kind = "auth"

    def __init__(self, state: RegionState) -> None:
        super().__init__(state.name)
        self.state = state

    async def run(self) -> Outcome:
        await self.state.client.authenticate(self.state.repository, "pull")
        return Outcome(repository=self.state.repository)
