"""The catalog: one merchant's items, variations, modifiers, taxes, discounts, categories,
pricing rules, product sets and time periods, and the step that prices order lines from it.

Objects are stored flat, one record per id, the way Square versions them: an ITEM's variations,
a MODIFIER_LIST's modifiers and an ITEM_OPTION's values are records of their own that point at
their parent (``item_id``, ``modifier_list_id``, ``item_option_id``) and are nested back into
the parent when it is rendered. Every write stamps the objects it touches with a new catalog
version (milliseconds, strictly increasing) and ``updated_at``; deletes keep the record with
``is_deleted`` so SearchCatalogObjects can still return it. Each version of an object is kept,
so ``catalog_version`` reads see the catalog as it was.

:meth:`Catalog.resolve_order` runs before pricing: it turns ``catalog_object_id`` references on
line items, modifiers, taxes and discounts into the names, prices and rates Square copies onto
the order, and applies the item's taxes and the pricing rules that ``pricing_options`` asks for.
Pricing itself (:mod:`orderfsm.pricing`) never sees the catalog.

Errors are raised only through :func:`orderfsm.rules.violation`.
"""

from __future__ import annotations

import bisect
import copy
import re
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from .clock import parse_rfc3339, rfc3339
from .rules import violation

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Engine

__all__ = ["Catalog", "DATA_FIELDS", "TOP_LEVEL_TYPES", "LIMITS"]

#: Object type -> the field holding its data.
DATA_FIELDS: dict[str, str] = {
    "ITEM": "item_data",
    "ITEM_VARIATION": "item_variation_data",
    "MODIFIER_LIST": "modifier_list_data",
    "MODIFIER": "modifier_data",
    "TAX": "tax_data",
    "DISCOUNT": "discount_data",
    "CATEGORY": "category_data",
    "PRICING_RULE": "pricing_rule_data",
    "PRODUCT_SET": "product_set_data",
    "TIME_PERIOD": "time_period_data",
    "ITEM_OPTION": "item_option_data",
    "ITEM_OPTION_VAL": "item_option_value_data",
}
#: What ListCatalog and SearchCatalogObjects return when no types are asked for (the spec's
#: default list, restricted to the types this server stores).
TOP_LEVEL_TYPES = ("ITEM", "CATEGORY", "TAX", "DISCOUNT", "MODIFIER_LIST", "PRICING_RULE",
                   "PRODUCT_SET", "TIME_PERIOD", "ITEM_OPTION")
#: Nested children: parent type -> (list field in the parent's data, child type, back-reference).
CHILDREN: dict[str, tuple[str, str, str]] = {
    "ITEM": ("variations", "ITEM_VARIATION", "item_id"),
    "MODIFIER_LIST": ("modifiers", "MODIFIER", "modifier_list_id"),
    "ITEM_OPTION": ("values", "ITEM_OPTION_VAL", "item_option_id"),
}
_PARENT_OF = {child: (parent, back) for parent, (_, child, back) in CHILDREN.items()}

# Where objects name other objects: type -> [(path, attr label)]. A path is a list of keys
# inside the object's data; "[]" walks a list, and the last key holds an id or a list of ids.
_REFS: dict[str, list[tuple[tuple[str, ...], str]]] = {
    "ITEM": [(("category_id",), "category_id"), (("categories", "[]", "id"), "categories"),
             (("tax_ids",), "tax_ids"),
             (("modifier_list_info", "[]", "modifier_list_id"), "modifier_list_info"),
             (("item_options", "[]", "item_option_id"), "item_options"),
             (("reporting_category", "id"), "reporting_category")],
    "ITEM_VARIATION": [(("item_id",), "item_id"),
                       (("item_option_values", "[]", "item_option_id"), "item_option_values"),
                       (("item_option_values", "[]", "item_option_value_id"),
                        "item_option_values")],
    "MODIFIER": [(("modifier_list_id",), "modifier_list_id")],
    "ITEM_OPTION_VAL": [(("item_option_id",), "item_option_id")],
    "TAX": [(("applies_to_product_set_id",), "applies_to_product_set_id")],
    "CATEGORY": [(("parent_category", "id"), "parent_category")],
    "PRICING_RULE": [(("discount_id",), "discount_id"), (("match_products_id",), "match_products_id"),
                     (("apply_products_id",), "apply_products_id"),
                     (("exclude_products_id",), "exclude_products_id"),
                     (("time_period_ids",), "time_period_ids")],
    "PRODUCT_SET": [(("product_ids_any",), "product_ids_any"),
                    (("product_ids_all",), "product_ids_all")],
}
#: Attributes SearchCatalogObjects can match (CatalogQuery in the spec), by data type.
SEARCHABLE = {
    "name": ("ITEM", "ITEM_VARIATION", "CATEGORY", "TAX", "DISCOUNT", "MODIFIER", "MODIFIER_LIST",
             "ITEM_OPTION", "ITEM_OPTION_VAL"),
    "description": ("ITEM", "ITEM_OPTION_VAL"),
    "abbreviation": ("ITEM",),
    "upc": ("ITEM_VARIATION",),
    "sku": ("ITEM_VARIATION",),
    "display_name": ("ITEM_OPTION",),
}
#: Numeric attributes a range query can compare (money compares its amount).
RANGE_ATTRIBUTES = ("price_money", "ordinal", "inventory_alert_threshold")
_COMBINABLE = frozenset({"exact_query", "prefix_query", "range_query", "sorted_attribute_query",
                         "text_query"})
#: CatalogInfo limits (the values the spec's CatalogInfo example reports).
LIMITS = {
    "batch_upsert_max_objects_per_batch": 1000,
    "batch_upsert_max_total_objects": 10000,
    "batch_retrieve_max_object_ids": 1000,
    "search_max_page_limit": 1000,
    "batch_delete_max_object_ids": 200,
    "update_item_taxes_max_item_ids": 1000,
    "update_item_taxes_max_taxes_to_enable": 1000,
    "update_item_taxes_max_taxes_to_disable": 1000,
    "update_item_modifier_lists_max_item_ids": 1000,
    "update_item_modifier_lists_max_modifier_lists_to_enable": 1000,
    "update_item_modifier_lists_max_modifier_lists_to_disable": 1000,
}
# Fields the server owns: a client's value is replaced.
_SERVER_FIELDS = ("updated_at", "version", "is_deleted", "created_at")
_WORD = re.compile(r"[0-9A-Za-z]+")


def _walk_refs(data: Any, path: tuple[str, ...], fix: Callable[[str], str]) -> None:
    """Apply ``fix`` to every id found at ``path`` inside ``data`` (in place)."""
    if not isinstance(data, dict) or not path:
        return
    key, rest = path[0], path[1:]
    value = data.get(key)
    if value is None:
        return
    if rest and rest[0] == "[]":
        if isinstance(value, list) and rest[1:]:
            for entry in value:
                _walk_refs(entry, rest[1:], fix)
        return
    if rest:
        _walk_refs(value, rest, fix)
        return
    if isinstance(value, str):
        data[key] = fix(value)
    elif isinstance(value, list):
        data[key] = [fix(v) if isinstance(v, str) else v for v in value]


def _refs_of(obj: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(referenced id, attr label) pairs of an object."""
    found: list[tuple[str, str]] = []
    data = obj.get(DATA_FIELDS.get(obj.get("type"), ""), None)
    for path, attr in _REFS.get(obj.get("type"), ()):
        _walk_refs(copy.deepcopy(data), path, lambda v, a=attr: found.append((v, a)) or v)
    return found


_INT64 = (-(2 ** 63), 2 ** 63 - 1)


def _check_int64(value: Any, where: str) -> None:
    """Nothing computed may leave int64: reject any integer in an object that is outside it."""
    if isinstance(value, dict):
        for k, v in value.items():
            _check_int64(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_int64(v, f"{where}[{i}]")
    elif isinstance(value, int) and not isinstance(value, bool) and not (
            _INT64[0] <= value <= _INT64[1]):
        raise violation("api.invalid_value", field=where,
                        reason="The value does not fit in a 64-bit integer.")


def _amount(money: Any) -> int | None:
    if isinstance(money, dict) and isinstance(money.get("amount"), int):
        return money["amount"]
    return None


def _matches(words: list[str], data: Mapping[str, Any], fields: Iterable[str]) -> bool:
    """Every (case-folded) keyword starts some word of the given text fields."""
    tokens = [t.casefold() for t in _WORD.findall(" ".join(str(data.get(f) or "") for f in fields))]
    return all(any(t.startswith(w) for t in tokens) for w in words)


def _quantity(text: Any) -> Decimal:
    try:
        q = Decimal(str(text if text is not None else "1"))
    except InvalidOperation:
        return Decimal(0)
    return q if q.is_finite() else Decimal(0)


class Catalog:
    """One merchant's catalog. Commands run inside the engine's transaction so a rejected
    command changes nothing and each change records a ``catalog.version.updated`` event."""

    def __init__(self, engine: "Engine") -> None:
        self._engine = engine
        self.objects: dict[str, dict[str, Any]] = {}
        # id -> every stored version of the object, oldest first (for catalog_version reads).
        self.history: dict[str, list[dict[str, Any]]] = {}
        self.version = 0
        self.updated_at: str | None = None
        # Ids whose history changed since a durable store last took them (see store.records).
        self.dirty: set[str] = set()
        # parent id -> child ids (insertion order), so rendering a parent does not scan.
        self._kids: dict[str, dict[str, None]] = {}
        self._parent_of: dict[str, str] = {}

    # ================================================================ plumbing
    def _new_version(self) -> tuple[int, str]:
        now = self._engine.now()
        millis = int(now.timestamp() * 1000)
        return max(millis, self.version + 1), rfc3339(now)

    def _live(self, object_id: Any) -> dict[str, Any] | None:
        obj = self.objects.get(object_id) if isinstance(object_id, str) else None
        return obj if obj is not None and not obj.get("is_deleted") else None

    def _at_version(self, object_id: str, version: int | None) -> dict[str, Any] | None:
        if version is None:
            return self._live(object_id)
        versions = self.history.get(object_id) or []
        keys = [v["version"] for v in versions]
        i = bisect.bisect_right(keys, version)
        if i == 0:
            return None
        obj = versions[i - 1]
        return None if obj.get("is_deleted") else obj

    def _children(self, parent: Mapping[str, Any], version: int | None = None,
                  deleted: bool = False) -> list[dict[str, Any]]:
        spec = CHILDREN.get(parent["type"])
        if spec is None:
            return []
        _, child_type, back = spec
        out = []
        for oid in self._kids.get(parent["id"], ()):
            rec = self.objects[oid]
            if rec["type"] != child_type or rec[DATA_FIELDS[child_type]].get(back) != parent["id"]:
                continue
            if version is not None:
                rec = self._at_version(oid, version)
                if rec is None:
                    continue
            elif rec.get("is_deleted") and not deleted:
                continue
            out.append(rec)
        out.sort(key=lambda r: (r[DATA_FIELDS[child_type]].get("ordinal") is None,
                                r[DATA_FIELDS[child_type]].get("ordinal") or 0))
        return out

    def render(self, obj: Mapping[str, Any], *, version: int | None = None,
               path_to_root: bool = False) -> dict[str, Any]:
        """The Square JSON of a stored object, children nested."""
        out = copy.deepcopy(dict(obj))
        spec = CHILDREN.get(obj["type"])
        if spec is not None:
            kids = self._children(obj, version, deleted=bool(obj.get("is_deleted")))
            if kids:
                out[DATA_FIELDS[obj["type"]]][spec[0]] = [copy.deepcopy(k) for k in kids]
        if path_to_root and obj["type"] == "CATEGORY":
            path = []
            seen = {obj["id"]}
            parent = (obj["category_data"].get("parent_category") or {}).get("id")
            while parent and parent not in seen:
                seen.add(parent)
                rec = self._live(parent)
                if rec is None:
                    break
                path.append({"category_id": parent, "category_name": rec["category_data"].get("name")})
                parent = (rec["category_data"].get("parent_category") or {}).get("id")
            if path:
                out["category_data"]["path_to_root"] = path
        return out

    def _related(self, objects: Iterable[Mapping[str, Any]], exclude: set[str],
                 version: int | None = None) -> list[dict[str, Any]]:
        """Objects the given ones reference, one level deep, each once."""
        out: dict[str, dict[str, Any]] = {}
        for obj in objects:
            refs = _refs_of(obj)
            for kid in self._children(obj, version):
                refs.extend(_refs_of(kid))
            for ref, _ in refs:
                if ref in exclude or ref in out:
                    continue
                rec = self._at_version(ref, version)
                if rec is not None:
                    out[ref] = self.render(rec, version=version)
        return list(out.values())

    def _commit(self, changed: Mapping[str, dict[str, Any]], version: int, stamp: str,
                *, emit: bool = True) -> None:
        tx = self._engine._tx
        for oid, rec in changed.items():
            self.objects[oid] = rec
            self.history.setdefault(oid, []).append(rec)
            self.dirty.add(oid)
            self._index(rec)
        if changed:
            self.version = version
            self.updated_at = stamp
            if emit and tx is not None:
                self._engine._emit(tx, "catalog.version.updated", "", updated_at=stamp)

    def _index(self, rec: Mapping[str, Any]) -> None:
        parent_type = _PARENT_OF.get(rec["type"])
        if parent_type is None:
            return
        parent = rec[DATA_FIELDS[rec["type"]]].get(parent_type[1])
        old = self._parent_of.get(rec["id"])
        if old is not None and old != parent:
            self._kids.get(old, {}).pop(rec["id"], None)
        if isinstance(parent, str):
            self._parent_of[rec["id"]] = parent
            self._kids.setdefault(parent, {})[rec["id"]] = None

    # ================================================================ writes
    def _flatten(self, obj: Any, where: str, out: list[tuple[dict, str]]) -> None:
        """Split a request object into records: the object, then its nested children."""
        if not isinstance(obj, dict):
            raise violation("catalog.data_required", field=where, detail="Expected an object value.")
        otype = obj.get("type")
        if otype not in DATA_FIELDS:
            raise violation("catalog.type_unsupported", type=otype, field=f"{where}.type")
        data_field = DATA_FIELDS[otype]
        data = obj.get(data_field)
        if not isinstance(data, dict):
            raise violation("catalog.data_required", field=f"{where}.{data_field}",
                            detail="Field must be set")
        if not isinstance(obj.get("id"), str) or not obj["id"]:
            raise violation("catalog.data_required", field=f"{where}.id", detail="Field must be set")
        _check_int64(obj, where)
        if obj.get("is_deleted") is True:
            raise violation("api.invalid_value", field=f"{where}.is_deleted",
                            reason="`is_deleted` must be false for objects being written.")
        rec = {k: copy.deepcopy(v) for k, v in obj.items()
               if v is not None and k not in _SERVER_FIELDS}
        rec["_version_given"] = obj.get("version")
        out.append((rec, where))
        spec = CHILDREN.get(otype)
        if spec is None:
            return
        list_field, child_type, back = spec
        kids = rec[data_field].pop(list_field, None)
        rec["_children_given"] = kids is not None
        rec["_child_ids"] = []
        for i, kid in enumerate(kids or []):
            kwhere = f"{where}.{data_field}.{list_field}[{i}]"
            if not isinstance(kid, dict) or kid.get("type") != child_type:
                raise violation("catalog.child_type", parent=otype, expected=child_type,
                                field=f"{kwhere}.type")
            before = len(out)
            self._flatten(kid, kwhere, out)
            child = out[before][0]
            child[DATA_FIELDS[child_type]][back] = obj["id"]
            rec["_child_ids"].append(child["id"])

    def _stage(self, objects: list[Any], prefix: str, *, seeding: bool = False,
               version: int, stamp: str,
               staged: dict[str, dict[str, Any]] | None = None,
               mappings: list[dict[str, str]] | None = None) -> tuple[list[str], dict]:
        """Validate ``objects`` and return (top-level ids, changed records). Nothing is written."""
        staged = staged if staged is not None else {}
        records: list[tuple[dict, str]] = []
        top_positions: list[int] = []
        for i, obj in enumerate(objects):
            top_positions.append(len(records))
            self._flatten(obj, prefix if prefix == "object" else f"{prefix}[{i}]", records)
        # Ids: temporary ids get new ones; fixed ids must exist (unless seeding).
        temp: dict[str, str] = {}
        seen: set[str] = set()
        for rec, where in records:
            oid = rec["id"]
            if oid in seen:
                raise violation("catalog.duplicate_id", id=oid, field=f"{where}.id")
            seen.add(oid)
            if oid.startswith("#"):
                temp[oid] = self._engine.ids.catalog_id()
                if mappings is not None:
                    mappings.append({"client_object_id": oid, "object_id": temp[oid]})
                continue
            current = staged.get(oid) or self.objects.get(oid)
            if current is None or current.get("is_deleted"):
                if seeding:
                    continue
                raise violation("catalog.new_object_id", id=oid, type=rec["type"],
                                field=f"{where}.id")
            if current["type"] != rec["type"]:
                raise violation("catalog.type_mismatch", id=oid, current=current["type"],
                                type=rec["type"], field=f"{where}.type")
            given = rec.get("_version_given")
            if given is not None and given != current.get("version"):
                raise violation("catalog.version_mismatch", id=oid, field=f"{where}.version")

        def resolve(ref: str, rec: dict, attr: str) -> str:
            if ref in temp:
                return temp[ref]
            if ref in seen or ref in staged or self._live(ref) is not None:
                return ref
            raise violation("catalog.reference_unknown", token=rec["id"], type=rec["type"],
                            ref=ref, attr=attr)

        changed: dict[str, dict[str, Any]] = {}
        tops: list[str] = []
        for pos, (rec, where) in enumerate(records):
            data = rec[DATA_FIELDS[rec["type"]]]
            for path, attr in _REFS.get(rec["type"], ()):
                _walk_refs(data, path, lambda ref, r=rec, a=attr: resolve(ref, r, a))
            if rec["type"] == "ITEM" and not rec.get("_child_ids") and (
                    rec.get("_children_given") or rec["id"].startswith("#")
                    or not self._children(self.objects.get(rec["id"]) or rec)):
                raise violation("catalog.item_needs_variation", name=data.get("name"),
                                token=rec["id"])
            final_id = temp.get(rec["id"], rec["id"])
            existing = staged.get(final_id) or self.objects.get(final_id)
            out = {k: v for k, v in rec.items() if not k.startswith("_")}
            out["id"] = final_id
            if "present_at_location_ids" not in out:
                out.setdefault("present_at_all_locations", True)
            out.update(updated_at=stamp, version=version, is_deleted=False)
            if existing is not None and existing.get("created_at"):
                out["created_at"] = existing["created_at"]
            else:
                out["created_at"] = stamp
            changed[final_id] = out
            if pos in top_positions:
                tops.append(final_id)
            # Children left out of a parent that lists its children are deleted with it.
            if rec.get("_children_given") and existing is not None:
                keep = {temp.get(c, c) for c in rec["_child_ids"]}
                for kid in self._children(existing):
                    if kid["id"] not in keep:
                        changed[kid["id"]] = dict(copy.deepcopy(kid), is_deleted=True,
                                                  updated_at=stamp, version=version)
        return tops, changed

    def upsert(self, batches: list[list[Any]], *, prefix: str = "batches",
               partial: bool | None = None, seeding: bool = False,
               emit: bool = True) -> dict[str, Any]:
        """BatchUpsertCatalogObjects (and UpsertCatalogObject with one batch of one).

        A batch is all or nothing; a failing batch does not stop the others (rule
        catalog.batch_upsert_partial). When no batch is written the first error is raised.
        ``partial=False`` makes the first failure reject the whole request (seeding)."""
        if partial is None:
            partial = True
        first_error = None
        version, stamp = self._new_version()
        staged: dict[str, dict[str, Any]] = {}
        mappings: list[dict[str, str]] = []
        tops: list[str] = []
        errors: list[Any] = []
        for b, objects in enumerate(batches):
            where = f"{prefix}[{b}].objects" if prefix == "batches" else prefix
            batch_staged = dict(staged)
            batch_maps: list[dict[str, str]] = []
            counter = self._engine.ids.counter
            try:
                batch_tops, changed = self._stage(objects, where, seeding=seeding, version=version,
                                                  stamp=stamp, staged=batch_staged,
                                                  mappings=batch_maps)
            except Exception as err:
                if not partial or not hasattr(err, "errors"):
                    raise
                self._engine.ids.counter = counter
                first_error = first_error or err
                errors.extend(err.errors)  # type: ignore[attr-defined]
                continue
            staged.update(changed)
            mappings.extend(batch_maps)
            tops.extend(batch_tops)
        if first_error is not None and not tops:
            raise first_error
        self._commit(staged, version, stamp, emit=emit)
        out: dict[str, Any] = {"objects": [self.render(self.objects[t]) for t in tops]}
        if stamp and staged:
            out["updated_at"] = stamp
        if mappings:
            out["id_mappings"] = mappings
        if errors:
            out["errors"] = [e.to_json() if hasattr(e, "to_json") else e for e in errors]
        return out

    def delete(self, object_ids: list[str], *, single: bool = False) -> dict[str, Any]:
        """DeleteCatalogObject / BatchDeleteCatalogObjects: cascades to children. Unknown ids are
        skipped by the batch and answer NOT_FOUND for the single delete."""
        version, stamp = self._new_version()
        changed: dict[str, dict[str, Any]] = {}
        for oid in object_ids:
            rec = self._live(oid)
            if rec is None:
                if single:
                    raise violation("catalog.object_not_found", id=oid)
                continue
            for victim in [rec, *self._children(rec)]:
                if victim["id"] not in changed:
                    changed[victim["id"]] = dict(copy.deepcopy(victim), is_deleted=True,
                                                 updated_at=stamp, version=version)
        self._commit(changed, version, stamp)
        out: dict[str, Any] = {"deleted_object_ids": list(changed)}
        if changed:
            out["deleted_at"] = stamp
        return out

    def update_item_links(self, item_ids: list[str], enable: list[str], disable: list[str],
                          kind: str) -> dict[str, Any]:
        """UpdateItemTaxes (kind TAX) and UpdateItemModifierLists (kind MODIFIER_LIST)."""
        names = ("taxes_to_enable", "taxes_to_disable") if kind == "TAX" else (
            "modifier_lists_to_enable", "modifier_lists_to_disable")
        for i, oid in enumerate(item_ids):
            rec = self._live(oid)
            if rec is None or rec["type"] != "ITEM":
                raise violation("catalog.object_not_found", id=oid, field=f"item_ids[{i}]")
        for name, ids in zip(names, (enable, disable)):
            for i, oid in enumerate(ids):
                rec = self._live(oid)
                if rec is None or rec["type"] != kind:
                    raise violation("catalog.object_not_found", id=oid, field=f"{name}[{i}]")
        version, stamp = self._new_version()
        changed: dict[str, dict[str, Any]] = {}
        for oid in dict.fromkeys(item_ids):
            rec = copy.deepcopy(self.objects[oid])
            data = rec["item_data"]
            if kind == "TAX":
                current = [t for t in data.get("tax_ids") or [] if t not in disable]
                current += [t for t in enable if t not in current]
                if current:
                    data["tax_ids"] = current
                else:
                    data.pop("tax_ids", None)
            else:
                infos = [m for m in data.get("modifier_list_info") or []
                         if m.get("modifier_list_id") not in disable]
                have = {m.get("modifier_list_id") for m in infos}
                infos += [{"modifier_list_id": m, "enabled": True} for m in enable if m not in have]
                if infos:
                    data["modifier_list_info"] = infos
                else:
                    data.pop("modifier_list_info", None)
            rec.update(updated_at=stamp, version=version)
            changed[oid] = rec
        self._commit(changed, version, stamp)
        return {"updated_at": stamp}

    # ================================================================ reads
    def retrieve(self, object_id: str, *, related: bool = False, version: int | None = None,
                 path_to_root: bool = False) -> dict[str, Any]:
        rec = self._at_version(object_id, version)
        if rec is None:
            raise violation("catalog.object_not_found", id=object_id)
        out: dict[str, Any] = {"object": self.render(rec, version=version, path_to_root=path_to_root)}
        if related:
            rel = self._related([rec], {object_id}, version)
            if rel:
                out["related_objects"] = rel
        return out

    def batch_retrieve(self, object_ids: list[str], *, related: bool = False,
                       version: int | None = None, deleted: bool = False,
                       path_to_root: bool = False) -> dict[str, Any]:
        found = []
        for oid in dict.fromkeys(object_ids):
            if deleted and version is None:
                rec = self.objects.get(oid)
            else:
                rec = self._at_version(oid, version)
            if rec is not None:
                found.append(rec)
        out: dict[str, Any] = {"objects": [self.render(r, version=version, path_to_root=path_to_root)
                                           for r in found]}
        if related:
            rel = self._related(found, {r["id"] for r in found}, version)
            if rel:
                out["related_objects"] = rel
        return out

    def _snapshot_at(self, version: int | None) -> list[dict[str, Any]]:
        if version is None:
            return list(self.objects.values())
        out = []
        for oid in self.objects:
            rec = self._at_version(oid, version)
            if rec is not None:
                out.append(rec)
        return out

    def list(self, types: list[str] | None, *, version: int | None = None) -> list[dict[str, Any]]:
        wanted = set(types) if types else set(TOP_LEVEL_TYPES)
        return [self.render(r, version=version) for r in self._snapshot_at(version)
                if r["type"] in wanted and not r.get("is_deleted")]

    def search(self, *, object_types: list[str] | None, deleted: bool, begin_time: str | None,
               query: Mapping[str, Any] | None) -> list[dict[str, Any]]:
        """SearchCatalogObjects' matching objects (stored records, in catalog order)."""
        wanted = set(object_types) if object_types else set(TOP_LEVEL_TYPES)
        query = query or {}
        used = [k for k, v in query.items() if v is not None]
        if len(used) > 1 and not set(used) <= _COMBINABLE:
            raise violation("catalog.query_combination", kinds=", ".join(sorted(used)),
                            field="query")
        begin = parse_rfc3339(begin_time) if begin_time else None
        rows = []
        for rec in self.objects.values():
            if rec["type"] not in wanted:
                continue
            if rec.get("is_deleted") and not deleted:
                continue
            if begin is not None and parse_rfc3339(rec["updated_at"]) <= begin:
                continue
            rows.append(rec)
        for kind in used:
            rows = self._apply_query(kind, query[kind], rows)
        sort = query.get("sorted_attribute_query")
        if sort:
            attr = sort["attribute_name"]
            initial = sort.get("initial_attribute_value")
            desc = sort.get("sort_order") == "DESC"
            rows = [r for r in rows if self._attr(r, attr) is not None]
            if initial is not None:
                rows = [r for r in rows if (str(self._attr(r, attr)) <= initial if desc
                                            else str(self._attr(r, attr)) >= initial)]
            rows.sort(key=lambda r: str(self._attr(r, attr)).casefold(), reverse=desc)
        return rows

    @staticmethod
    def _attr(rec: Mapping[str, Any], attr: str) -> Any:
        return rec[DATA_FIELDS[rec["type"]]].get(attr)

    def _check_attr(self, attr: Any, field: str, numeric: bool = False) -> None:
        allowed = RANGE_ATTRIBUTES if numeric else tuple(SEARCHABLE)
        if attr not in allowed:
            raise violation("catalog.attribute_not_searchable", attr=attr,
                            allowed=", ".join(allowed), field=field)

    def _apply_query(self, kind: str, q: Mapping[str, Any], rows: list[dict]) -> list[dict]:
        f = f"query.{kind}"
        if kind == "exact_query":
            self._check_attr(q["attribute_name"], f"{f}.attribute_name")
            return [r for r in rows if self._attr(r, q["attribute_name"]) == q["attribute_value"]]
        if kind == "prefix_query":
            self._check_attr(q["attribute_name"], f"{f}.attribute_name")
            prefix = q["attribute_prefix"].casefold()
            return [r for r in rows if isinstance(v := self._attr(r, q["attribute_name"]), str)
                    and v.casefold().startswith(prefix)]
        if kind == "set_query":
            self._check_attr(q["attribute_name"], f"{f}.attribute_name")
            values = set(q["attribute_values"])
            return [r for r in rows if self._attr(r, q["attribute_name"]) in values]
        if kind == "range_query":
            self._check_attr(q["attribute_name"], f"{f}.attribute_name", numeric=True)
            lo, hi = q.get("attribute_min_value"), q.get("attribute_max_value")
            out = []
            for r in rows:
                v = self._attr(r, q["attribute_name"])
                v = _amount(v) if isinstance(v, dict) else v
                if not isinstance(v, int) or isinstance(v, bool):
                    continue
                if (lo is None or v >= lo) and (hi is None or v <= hi):
                    out.append(r)
            return out
        if kind == "text_query":
            keywords = q["keywords"]
            if not 1 <= len(keywords) <= 3:
                raise violation("api.invalid_value", field=f"{f}.keywords",
                                reason="A text query takes 1, 2 or 3 keywords.")
            words = [k.casefold() for k in keywords
                     if len("".join(_WORD.findall(k))) >= 3]
            if not words:  # every keyword too short to match anything
                return []
            fields = ("name", "description", "abbreviation", "sku", "upc")
            return [r for r in rows if _matches(words, r[DATA_FIELDS[r["type"]]], fields)]
        if kind == "sorted_attribute_query":
            self._check_attr(q["attribute_name"], f"{f}.attribute_name")
            return rows
        if kind == "items_for_tax_query":
            ids = set(q["tax_ids"])
            return [r for r in rows if r["type"] == "ITEM"
                    and ids & set(r["item_data"].get("tax_ids") or [])]
        if kind == "items_for_modifier_list_query":
            ids = set(q["modifier_list_ids"])
            return [r for r in rows if r["type"] == "ITEM" and ids & {
                m.get("modifier_list_id") for m in r["item_data"].get("modifier_list_info") or []}]
        if kind == "items_for_item_options_query":
            ids = set(q.get("item_option_ids") or [])
            return [r for r in rows if r["type"] == "ITEM" and (not ids or ids & {
                o.get("item_option_id") for o in r["item_data"].get("item_options") or []})]
        if kind == "item_variations_for_item_option_values_query":
            ids = set(q.get("item_option_value_ids") or [])
            return [r for r in rows if r["type"] == "ITEM_VARIATION" and ids <= {
                v.get("item_option_value_id")
                for v in r["item_variation_data"].get("item_option_values") or []}]
        return rows  # pragma: no cover - the schema lists every query kind

    def search_items(self, *, text: str | None, category_ids: list[str] | None,
                     location_ids: list[str] | None, product_types: list[str] | None,
                     descending: bool) -> tuple[list[dict[str, Any]], list[str]]:
        """SearchCatalogItems: items (rendered) and the variation ids that matched the text."""
        words = [w.casefold() for w in _WORD.findall(text or "")]
        items, matched = [], []
        for rec in self.objects.values():
            if rec["type"] != "ITEM" or rec.get("is_deleted"):
                continue
            data = rec["item_data"]
            if category_ids:
                cats = {data.get("category_id")} | {c.get("id") for c in data.get("categories") or []}
                if not cats & set(category_ids):
                    continue
            if product_types and (data.get("product_type") or "REGULAR") not in product_types:
                continue
            if location_ids and not any(self.present_at(rec, loc) for loc in location_ids):
                continue
            if words:
                hits = [k["id"] for k in self._children(rec)
                        if _matches(words, k["item_variation_data"], ("name", "sku"))]
                if not _matches(words, data, ("name", "description")) and not hits:
                    continue
                matched.extend(hits)
            items.append(rec)
        items.sort(key=lambda r: (r["item_data"].get("name") or "").casefold(), reverse=descending)
        return [self.render(r) for r in items], matched

    def info(self) -> dict[str, Any]:
        return {"limits": dict(LIMITS)}

    @staticmethod
    def present_at(rec: Mapping[str, Any], location_id: str) -> bool:
        if location_id in (rec.get("absent_at_location_ids") or ()):
            return False
        if rec.get("present_at_all_locations", True):
            return True
        return location_id in (rec.get("present_at_location_ids") or ())

    # ================================================================ snapshot
    def snapshot(self) -> dict[str, Any]:
        return {"version": self.version, "updated_at": self.updated_at,
                "history": copy.deepcopy(self.history)}

    def restore(self, data: Mapping[str, Any] | None) -> None:
        if not data:
            return
        self.version = int(data.get("version") or 0)
        self.updated_at = data.get("updated_at")
        self.history = copy.deepcopy(dict(data.get("history") or {}))
        self.objects = {oid: versions[-1] for oid, versions in self.history.items() if versions}
        self.dirty = set(self.history)
        self._kids, self._parent_of = {}, {}
        for versions in self.history.values():
            for rec in versions:
                self._index(rec)

    # ================================================================ orders
    def resolve_order(self, order: Mapping[str, Any], location_id: str,
                      prefix: str = "order") -> dict[str, Any]:
        """A copy of ``order`` with catalog references filled in (see the module docstring).

        Entries without ``catalog_object_id`` are left alone; when nothing references the
        catalog and ``pricing_options`` asks for nothing, the order is returned as is."""
        pricing = order.get("pricing_options") or {}
        lists = ("line_items", "taxes", "discounts")
        refers = any(isinstance(e, dict) and (e.get("catalog_object_id") is not None
                                              or e.get("modifiers"))
                     for k in lists for e in order.get(k) or [])
        if not refers and not pricing.get("auto_apply_taxes") and not pricing.get(
                "auto_apply_discounts"):
            return order  # type: ignore[return-value]
        out = copy.deepcopy(dict(order))
        lines = [li for li in out.get("line_items") or [] if isinstance(li, dict)]
        for i, li in enumerate(lines):
            where = f"{prefix}.line_items[{i}]"
            if li.get("catalog_object_id") is not None:
                self._resolve_line(li, location_id, where)
            for j, mod in enumerate(li.get("modifiers") or []):
                if isinstance(mod, dict) and mod.get("catalog_object_id") is not None:
                    rec = self._lookup(mod, "MODIFIER", "Modifier", location_id,
                                       f"{where}.modifiers[{j}]")
                    data = rec["modifier_data"]
                    if data.get("name") is not None:
                        mod["name"] = data["name"]
                    if "base_price_money" not in mod:
                        mod["base_price_money"] = copy.deepcopy(
                            data.get("price_money") or {"amount": 0, "currency": self._engine.currency})
                    mod["catalog_version"] = rec["version"]
        for i, tax in enumerate(out.get("taxes") or []):
            if isinstance(tax, dict) and tax.get("catalog_object_id") is not None:
                rec = self._lookup(tax, "TAX", "Tax", location_id, f"{prefix}.taxes[{i}]")
                self._fill_tax(tax, rec)
        for i, disc in enumerate(out.get("discounts") or []):
            if isinstance(disc, dict) and disc.get("catalog_object_id") is not None:
                rec = self._lookup(disc, "DISCOUNT", "Discount", location_id,
                                   f"{prefix}.discounts[{i}]")
                self._fill_discount(disc, rec, f"{prefix}.discounts[{i}]")
        if pricing.get("auto_apply_taxes"):
            self._auto_taxes(out, lines, location_id)
        if pricing.get("auto_apply_discounts"):
            self._auto_discounts(out, lines, location_id)
        return out

    def _lookup(self, entry: Mapping[str, Any], otype: str, kind: str, location_id: str,
                where: str) -> dict[str, Any]:
        oid = entry["catalog_object_id"]
        _check_int64(entry.get("catalog_version"), f"{where}.catalog_version")
        rec = self._at_version(oid, entry.get("catalog_version"))
        if rec is None or rec["type"] != otype:
            raise violation("order.catalog_object_not_found", kind=kind, id=oid,
                            field=f"{where}.catalog_object_id")
        if not self.present_at(rec, location_id):
            raise violation("order.catalog_not_at_location", id=oid, location_id=location_id,
                            field=f"{where}.catalog_object_id")
        return rec

    def _resolve_line(self, li: dict, location_id: str, where: str) -> None:
        var = self._lookup(li, "ITEM_VARIATION", "Item variation", location_id, where)
        vdata = var["item_variation_data"]
        item = self._live(vdata.get("item_id"))
        if item is not None and not self.present_at(item, location_id):
            raise violation("order.catalog_not_at_location", id=li["catalog_object_id"],
                            location_id=location_id, field=f"{where}.catalog_object_id")
        if item is not None and item["item_data"].get("name") is not None:
            li["name"] = item["item_data"]["name"]
        if vdata.get("name") is not None:
            li["variation_name"] = vdata["name"]
        li["catalog_version"] = var["version"]
        li.setdefault("item_type", "ITEM")
        if "base_price_money" in li:
            return  # a price in the request overrides the catalog's
        price = vdata.get("price_money")
        for override in vdata.get("location_overrides") or []:
            if override.get("location_id") == location_id and override.get("price_money"):
                price = override["price_money"]
        if vdata.get("pricing_type") == "VARIABLE_PRICING" or price is None:
            raise violation("order.catalog_variable_price", id=li["catalog_object_id"],
                            field=f"{where}.base_price_money")
        li["base_price_money"] = copy.deepcopy(price)

    @staticmethod
    def _fill_tax(tax: dict, rec: Mapping[str, Any]) -> None:
        data = rec["tax_data"]
        if data.get("name") is not None:
            tax["name"] = data["name"]
        if data.get("percentage") is not None:
            tax["percentage"] = data["percentage"]
        tax["type"] = data.get("inclusion_type") or "ADDITIVE"
        tax["catalog_version"] = rec["version"]

    @staticmethod
    def _fill_discount(disc: dict, rec: Mapping[str, Any], where: str) -> None:
        data = rec["discount_data"]
        dtype = data.get("discount_type") or "FIXED_PERCENTAGE"
        if data.get("name") is not None:
            disc["name"] = data["name"]
        disc["type"] = dtype
        disc["catalog_version"] = rec["version"]
        if dtype == "FIXED_PERCENTAGE":
            disc["percentage"] = data.get("percentage") or "0"
        elif dtype == "FIXED_AMOUNT":
            disc["amount_money"] = copy.deepcopy(data.get("amount_money"))
        elif dtype == "VARIABLE_PERCENTAGE" and disc.get("percentage") is None:
            raise violation("order.catalog_variable_discount", id=rec["id"],
                            field=f"{where}.percentage")
        elif dtype == "VARIABLE_AMOUNT" and disc.get("amount_money") is None:
            raise violation("order.catalog_variable_discount", id=rec["id"],
                            field=f"{where}.amount_money")

    @staticmethod
    def _blocked(li: Mapping[str, Any], key: str, catalog_id: str, uid: str | None) -> bool:
        block = (li.get("pricing_blocklists") or {}).get(key) or []
        field = "tax_catalog_object_id" if key == "blocked_taxes" else "discount_catalog_object_id"
        ref = "tax_uid" if key == "blocked_taxes" else "discount_uid"
        return any(b.get(field) == catalog_id or (uid is not None and b.get(ref) == uid)
                   for b in block if isinstance(b, dict))

    def _order_entry(self, order: dict, list_name: str, catalog_id: str,
                     build: Callable[[], dict]) -> dict:
        for entry in order.get(list_name) or []:
            if isinstance(entry, dict) and entry.get("catalog_object_id") == catalog_id:
                return entry
        entry = build()
        entry["uid"] = self._engine.ids.uid()
        order.setdefault(list_name, []).append(entry)
        return entry

    @staticmethod
    def _apply(li: dict, key: str, ref: str, uid: str) -> None:
        applied = li.setdefault(key, [])
        if not any(a.get(ref) == uid for a in applied):
            applied.append({ref: uid})

    def _auto_taxes(self, order: dict, lines: list[dict], location_id: str) -> None:
        for li in lines:
            var = self._live(li.get("catalog_object_id"))
            if var is None or var["type"] != "ITEM_VARIATION":
                continue
            item = self._live(var["item_variation_data"].get("item_id"))
            if item is None:
                continue
            for tax_id in item["item_data"].get("tax_ids") or []:
                tax = self._live(tax_id)
                if tax is None or tax["tax_data"].get("enabled") is False or not self.present_at(
                        tax, location_id):
                    continue

                def build(t: dict = tax) -> dict:
                    entry = {"catalog_object_id": t["id"], "scope": "LINE_ITEM",
                             "auto_applied": True}
                    self._fill_tax(entry, t)
                    return entry

                entry = self._order_entry(order, "taxes", tax_id, build)
                if self._blocked(li, "blocked_taxes", tax_id, entry.get("uid")):
                    continue
                self._apply(li, "applied_taxes", "tax_uid", entry["uid"])

    def _product_keys(self, li: Mapping[str, Any]) -> set[str]:
        """The catalog ids a line item stands for: variation, item and the item's categories."""
        var = self._live(li.get("catalog_object_id"))
        if var is None or var["type"] != "ITEM_VARIATION":
            return set()
        keys = {var["id"]}
        item = self._live(var["item_variation_data"].get("item_id"))
        if item is not None:
            keys.add(item["id"])
            data = item["item_data"]
            if data.get("category_id"):
                keys.add(data["category_id"])
            keys.update(c.get("id") for c in data.get("categories") or [] if c.get("id"))
        return keys

    def _set_lines(self, set_id: str | None, lines: list[dict], depth: int = 0) -> list[int] | None:
        """Indices of the lines a product set matches, or None when its conditions fail."""
        pset = self._live(set_id)
        if pset is None or pset["type"] != "PRODUCT_SET" or depth > 5:
            return None
        data = pset["product_set_data"]
        keys = [self._product_keys(li) for li in lines]
        if data.get("all_products"):
            idx = [i for i, k in enumerate(keys) if k]
        elif data.get("product_ids_all"):
            idx = []
            for pid in data["product_ids_all"]:
                sub = self._set_lines(pid, lines, depth + 1) if (
                    (self._live(pid) or {}).get("type") == "PRODUCT_SET") else [
                    i for i, k in enumerate(keys) if pid in k]
                if not sub:
                    return None
                idx.extend(i for i in sub if i not in idx)
        else:
            ids = data.get("product_ids_any") or []
            idx = []
            for pid in ids:
                if (self._live(pid) or {}).get("type") == "PRODUCT_SET":
                    sub = self._set_lines(pid, lines, depth + 1) or []
                else:
                    sub = [i for i, k in enumerate(keys) if pid in k]
                idx.extend(i for i in sub if i not in idx)
        qty = sum(_quantity(lines[i].get("quantity")) for i in idx)
        if data.get("quantity_exact") is not None and qty != data["quantity_exact"]:
            return None
        if data.get("quantity_min") is not None and qty < data["quantity_min"]:
            return None
        if data.get("quantity_max") is not None and qty > data["quantity_max"]:
            return None
        return sorted(idx) if idx else None

    def _rule_active(self, rule: Mapping[str, Any], order: Mapping[str, Any],
                     lines: list[dict]) -> bool:
        data = rule["pricing_rule_data"]
        today = self._engine.now().date().isoformat()
        if data.get("valid_from_date") and today < data["valid_from_date"]:
            return False
        if data.get("valid_until_date") and today > data["valid_until_date"]:
            return False
        if data.get("customer_group_ids_any"):
            return False  # this server has no customer groups: such rules never match
        if data.get("time_period_ids") and not any(
                self._in_period(self._live(t)) for t in data["time_period_ids"]):
            return False
        minimum = _amount(data.get("minimum_order_subtotal_money"))
        if minimum is not None:
            subtotal = sum(_quantity(li.get("quantity")) * (_amount(li.get("base_price_money")) or 0)
                           for li in lines)
            if subtotal < minimum:
                return False
        return True

    def _in_period(self, period: Mapping[str, Any] | None) -> bool:
        """Whether now falls in a TIME_PERIOD's iCalendar event (DTSTART plus DURATION,
        optionally repeated weekly on the days of an RRULE BYDAY)."""
        if period is None:
            return False
        text = period["time_period_data"].get("event") or ""
        fields = dict(line.split(":", 1) for line in text.replace("\r", "").split("\n")
                      if ":" in line)
        try:
            start = datetime.strptime(fields.get("DTSTART", "").strip()[:15], "%Y%m%dT%H%M%S")
        except ValueError:
            return False
        m = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?",
                         fields.get("DURATION", "").strip())
        if not m:
            return False
        d, h, mi, s = (int(g or 0) for g in m.groups())
        length = ((d * 24 + h) * 60 + mi) * 60 + s
        now = self._engine.now().replace(tzinfo=None)
        rrule = fields.get("RRULE", "")
        if "FREQ=WEEKLY" not in rrule:
            return 0 <= (now - start).total_seconds() < length
        days = re.search(r"BYDAY=([A-Z,]+)", rrule)
        names = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
        allowed = set(days.group(1).split(",")) if days else {names[start.weekday()]}
        if now < start:
            return False
        for back in range(0, 8):
            day = now - timedelta(days=back)
            if names[day.weekday()] not in allowed:
                continue
            begin = day.replace(hour=start.hour, minute=start.minute, second=start.second)
            if begin >= start and 0 <= (now - begin).total_seconds() < length:
                return True
        return False

    def _auto_discounts(self, order: dict, lines: list[dict], location_id: str) -> None:
        for rule in list(self.objects.values()):
            if rule["type"] != "PRICING_RULE" or rule.get("is_deleted"):
                continue
            if not self.present_at(rule, location_id):
                continue
            data = rule["pricing_rule_data"]
            discount = self._live(data.get("discount_id"))
            if discount is None or discount["type"] != "DISCOUNT":
                continue
            matched = self._set_lines(data.get("match_products_id"), lines)
            if not matched or not self._rule_active(rule, order, lines):
                continue
            targets = matched
            if data.get("apply_products_id"):
                applied = set(self._set_lines(data["apply_products_id"], lines) or [])
                targets = [i for i in targets if i in applied]
            if data.get("exclude_products_id"):
                excluded = set(self._set_lines(data["exclude_products_id"], lines) or [])
                targets = [i for i in targets if i not in excluded]
            targets = [i for i in targets
                       if not self._blocked(lines[i], "blocked_discounts", discount["id"], None)]
            if not targets:
                continue

            def build(d: dict = discount, r: dict = rule) -> dict:
                entry = {"catalog_object_id": d["id"], "scope": "LINE_ITEM",
                         "pricing_rule_id": r["id"]}
                self._fill_discount(entry, d, "order.discounts")
                return entry

            entry = self._order_entry(order, "discounts", discount["id"], build)
            for i in targets:
                if self._blocked(lines[i], "blocked_discounts", discount["id"], entry["uid"]):
                    continue
                self._apply(lines[i], "applied_discounts", "discount_uid", entry["uid"])
