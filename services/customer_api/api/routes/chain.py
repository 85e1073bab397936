"""GET /v1/chain/info: the token and block time, read from the chain itself, so that clients
show prices per GPU-hour and amounts in tokens without hard-coding the runtime's constants.

Where each fact comes from (chain/runtime):
- block_time_ms: the Aura slot duration. The runtime sets Aura's SlotDuration to
  `MinimumPeriodTimesTwo` (configs.rs), i.e. twice the Timestamp pallet's MinimumPeriod constant
  (SLOT_DURATION / 2, lib.rs: MILLI_SECS_PER_BLOCK = 1000), so it is read as the metadata constant
  Aura.SlotDuration, or 2 * Timestamp.MinimumPeriod where that is not exposed. The dev chain
  (Chopsticks, Instant mode) builds blocks on demand, so there a block is not a fixed time; the
  runtime's target is still what a lease's blocks are priced by.
- existential_deposit: Balances.ExistentialDeposit (EXISTENTIAL_DEPOSIT = MILLI_UNIT).
- token_symbol / token_decimals: the chain spec's properties (system_properties; the chain spec
  writer sets tokenSymbol GLT, tokenDecimals 12); TOKEN_DECIMALS where a chain does not say.

Open without an API key (public facts), limited per address, and cached for a few minutes (the
constants change only with a runtime upgrade).
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal

from fastapi import APIRouter, Request

from services.common import TOKEN_DECIMALS
from services.common._chain import ChainUnavailable
from services.customer_api.api.deps import ChainDep
from services.customer_api.api.ratelimit import PUBLIC_READ_LIMITS
from services.customer_api.api.responses import errors
from services.customer_api.errors import ApiError
from services.customer_api.models import ChainInfoPublic

router = APIRouter(prefix="/chain", tags=["chain"])

CACHE_S = 300.0
_lock = threading.Lock()


def _block_time_ms(chain: ChainDep) -> int:
    try:
        return int(chain.reader.constant("SlotDuration", "Aura"))
    except ChainUnavailable:
        raise
    except Exception:  # metadata without Aura's constant: the runtime's own definition
        return 2 * int(chain.reader.constant("MinimumPeriod", "Timestamp"))


def read_chain_info(chain: ChainDep) -> ChainInfoPublic:
    props = chain.reader.properties()
    block_ms = _block_time_ms(chain)
    if block_ms <= 0:
        raise ChainUnavailable("the chain reports no block time")
    # Exact when block_ms divides 3_600_000; else rounded to 6 decimals (block_time_ms is the
    # exact figure: clients compute with it, as the CLI does).
    per_hour = (Decimal(3_600_000) / Decimal(block_ms)).quantize(Decimal("0.000001"))
    return ChainInfoPublic(
        token_symbol=str(props.get("tokenSymbol") or "GLT"),
        token_decimals=int(props.get("tokenDecimals") or TOKEN_DECIMALS),
        block_time_ms=block_ms,
        blocks_per_hour=f"{per_hour.normalize():f}",
        existential_deposit=str(int(chain.reader.constant("ExistentialDeposit", "Balances"))),
    )


@router.get(
    "/info",
    response_model=ChainInfoPublic,
    responses=errors(429, 503),
    dependencies=PUBLIC_READ_LIMITS,
)
def chain_info(request: Request, chain: ChainDep) -> ChainInfoPublic:
    """The token (symbol, decimals), the block time and the existential deposit."""
    state = request.app.state
    with _lock:
        cached: tuple[float, ChainInfoPublic] | None = getattr(state, "chain_info", None)
        if cached is not None and time.monotonic() - cached[0] < CACHE_S:
            return cached[1]
    try:
        info = read_chain_info(chain)
    except ChainUnavailable as exc:
        raise ApiError(503, "Chain unavailable") from exc
    with _lock:
        state.chain_info = (time.monotonic(), info)
    return info
