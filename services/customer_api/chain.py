"""The API's connections to the chain: one for reads, a few for calls. A customer's calls
always use the same connection, so its nonces go out in order; other customers' calls and all
reads do not wait behind them."""

from __future__ import annotations

import zlib
from collections.abc import Callable

from services.common._chain import ChainClient, ChainMachine

__all__ = ["ChainGateway"]


class ChainGateway:
    def __init__(
        self,
        url: str,
        *,
        writers: int = 4,
        factory: Callable[[str], ChainClient] = lambda url: ChainClient(url, connect=False),
    ) -> None:
        self.url = url
        self.reader = factory(url)
        self._writers = [factory(url) for _ in range(writers)]

    def writer_for(self, address: str) -> ChainClient:
        return self._writers[zlib.crc32(address.encode()) % len(self._writers)]

    def machines(self, machine_ids: list[bytes]) -> dict[bytes, ChainMachine | None]:
        return self.reader.machines(machine_ids)

    def close(self) -> None:
        for client in (self.reader, *self._writers):
            client.close()
