"""No two services of the dev stack sign for one chain account: two signers of one account
race for its nonce (the dev stack's faucet and GPU node once both used //Alice)."""

from __future__ import annotations

from pathlib import Path

from services.common import keypair_from_secret
from services.devstack.stack import SIGNERS, Stack


def test_each_service_signs_with_its_own_account(tmp_path: Path) -> None:
    stack = Stack(root=tmp_path)
    used = {
        "api faucet": stack.api_env()["GRIDLEASE_API_FAUCET_SECRET"],
        "node provider": stack.node_env()["GRIDLEASE_NODE_PROVIDER_SECRET"],
    }
    assert used == SIGNERS
    addresses = {keypair_from_secret(secret).ss58_address for secret in used.values()}
    assert len(addresses) == len(used)
