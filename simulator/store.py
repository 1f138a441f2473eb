"""Merchants: one per access token, each with its own engine, clock and idempotency store."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Mapping

from orderfsm.clock import ManualClock
from orderfsm.coverage import Coverage, Observer
from orderfsm.engine import Engine
from orderfsm.rules import Variants

from .idempotency import IdempotencyStore

__all__ = ["SimulatorConfig", "Merchant", "Store"]


@dataclass
class SimulatorConfig:
    """How a simulator behaves. ``variants`` holds rule variants (``NAME=VALUE``)."""

    variants: Mapping[str, str] | None = None
    seed: int = 0
    refund_settle_seconds: float = 10.0
    clock_start: datetime | None = None
    log_requests: bool = True
    webhooks: bool = True
    #: CatalogObjects every merchant starts with (``orderfsm serve --catalog FILE``).
    catalog: list[dict[str, Any]] | None = None
    #: Largest request body accepted, in bytes (413 REQUEST_ENTITY_TOO_LARGE above it).
    max_body_bytes: int | None = 1024 * 1024
    #: Hosts webhook deliveries may go to besides loopback ("*" allows any host).
    webhook_allow: tuple[str, ...] = ()

    def resolved_variants(self) -> Variants:
        return Variants(self.variants)


@dataclass
class Merchant:
    token: str
    engine: Engine
    idempotency: IdempotencyStore = field(default_factory=IdempotencyStore)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def clock(self) -> ManualClock:
        return self.engine.clock  # type: ignore[return-value]


class Store:
    """Token -> merchant, created on first use with one ACTIVE main location."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.variants = config.resolved_variants()
        self.merchants: dict[str, Merchant] = {}
        self.on_new_merchant: list = []  # callbacks(merchant), e.g. the webhook outbox
        self.coverage: dict[str, Coverage] = {}  # per token; a reset keeps it

    def coverage_for(self, token: str) -> Coverage:
        cov = self.coverage.get(token)
        if cov is None:
            cov = self.coverage[token] = Coverage()
        return cov

    def observe(self, engine: Engine, token: str) -> Engine:
        """Give ``engine`` a fresh observer that counts into the token's coverage."""
        engine.observer = Observer(self.coverage_for(token))
        return engine

    def _seed_for(self, token: str) -> str:
        digest = hashlib.blake2b(token.encode(), digest_size=8).hexdigest()
        return f"{self.config.seed}:{digest}"

    def new_engine(self, token: str) -> Engine:
        engine = self._engine(token)
        if self.config.catalog:
            from .routes.catalog import seed_objects

            seed_objects(engine, self.config.catalog, emit=False)
        return engine

    def _engine(self, token: str) -> Engine:
        return self.observe(Engine(
            clock=ManualClock(self.config.clock_start),
            seed=self._seed_for(token),
            variants=Variants(dict(self.variants)),
            refund_settle_delay=timedelta(seconds=self.config.refund_settle_seconds),
            record_events=self.config.webhooks,
        ), token)

    def merchant(self, token: str) -> Merchant:
        m = self.merchants.get(token)
        if m is None:
            m = self.merchants[token] = Merchant(token=token, engine=self.new_engine(token))
            for callback in self.on_new_merchant:
                callback(m)
        return m

    def reset(self, token: str) -> Merchant:
        self.merchants.pop(token, None)
        return self.merchant(token)
