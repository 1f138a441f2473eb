"""Locations API: GET /v2/locations and GET /v2/locations/{location_id} (``main`` allowed)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ..http import json_response, merchant_of

router = APIRouter()


@router.get("/v2/locations")
async def list_locations(request: Request):
    m = merchant_of(request)
    return json_response({"locations": m.engine.list_locations()})


@router.get("/v2/locations/{location_id}")
async def retrieve_location(location_id: str, request: Request):
    m = merchant_of(request)
    return json_response({"location": m.engine.get_location(location_id)})
