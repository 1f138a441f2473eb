"""Square-shaped errors.

Every rejection the engine or the simulator produces is a :class:`SquareError`. Its body is
always ``{"errors": [{code, detail, field, category}]}`` (the key order Square's Payments and
Orders APIs use on the wire), optionally with extra top-level keys (a declined CreatePayment
also carries the FAILED ``payment``).
"""

from __future__ import annotations

from dataclasses import dataclass, field as dc_field
from typing import Any

__all__ = ["ErrorDetail", "SquareError"]


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    """One entry of Square's ``errors`` array."""

    category: str
    code: str
    detail: str | None = None
    field: str | None = None

    def to_json(self) -> dict[str, str]:
        out: dict[str, str] = {"code": self.code}
        if self.detail is not None:
            out["detail"] = self.detail
        if self.field is not None:
            out["field"] = self.field
        out["category"] = self.category
        return out


@dataclass(eq=False)
class SquareError(Exception):
    """A rejected request: HTTP status plus Square's error list.

    ``rule_id`` names the catalog rule that produced it (None for plain input validation that
    is not a business rule). ``extra`` holds additional top-level body keys.
    """

    status: int
    errors: list[ErrorDetail]
    rule_id: str | None = None
    extra: dict[str, Any] = dc_field(default_factory=dict)

    def __post_init__(self) -> None:
        Exception.__init__(self, self.status, self.errors)

    @classmethod
    def single(
        cls,
        status: int,
        category: str,
        code: str,
        detail: str | None = None,
        field: str | None = None,
        *,
        rule_id: str | None = None,
    ) -> "SquareError":
        return cls(status, [ErrorDetail(category, code, detail, field)], rule_id=rule_id)

    @property
    def first(self) -> ErrorDetail:
        return self.errors[0]

    @property
    def code(self) -> str:
        return self.errors[0].code

    @property
    def field(self) -> str | None:
        return self.errors[0].field

    @property
    def detail(self) -> str | None:
        return self.errors[0].detail

    @property
    def category(self) -> str:
        return self.errors[0].category

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"errors": [e.to_json() for e in self.errors]}
        out.update(self.extra)
        return out

    def __str__(self) -> str:
        e = self.errors[0]
        where = f" ({e.field})" if e.field else ""
        rule = f" [{self.rule_id}]" if self.rule_id else ""
        return f"{self.status} {e.category}/{e.code}{where}: {e.detail}{rule}"
