"""The /v1 router: every resource router under one prefix."""

from __future__ import annotations

from fastapi import APIRouter

from services.customer_api.api.routes import account, auth, chain, leases, offers

api_router = APIRouter()
api_router.include_router(auth.router)
api_router.include_router(offers.router)
api_router.include_router(leases.router)
api_router.include_router(account.router)
api_router.include_router(chain.router)
