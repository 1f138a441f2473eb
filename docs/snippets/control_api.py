# The control API over plain HTTP: any client in any language can drive it.
import httpx

from orderfsm.simulator import running

with running() as base_url:
    sim = httpx.Client(base_url=base_url, headers={"Authorization": "Bearer sandbox-token"})

    print(sim.get("/_sim/clock").json())  # {'now': '2026-01-05T15:00:00.000Z'}
    print(sim.post("/_sim/clock/advance", json={"seconds": 3600}).json())
    # {'now': '2026-01-05T16:00:00.000Z', 'fired': 0}

    saved = sim.get("/_sim/state").json()  # the merchant's whole state, as JSON
    location_id = sim.get("/v2/locations").json()["locations"][0]["id"]
    sim.post("/v2/orders", json={"order": {"location_id": location_id}})
    assert len(sim.post("/v2/orders/search", json={"location_ids": ["main"]}).json()["orders"]) == 1
    sim.post("/_sim/state", json=saved)  # back to the saved state: no orders
    assert sim.post("/v2/orders/search", json={"location_ids": ["main"]}).json().get("orders", []) == []

    variants = sim.post("/_sim/variants", json={"cancel_after_payment": "never"}).json()
    print(variants["variants"]["cancel_after_payment"])  # never
    sim.post("/_sim/reset")  # a brand-new merchant for this token
    assert sim.get("/_sim/variants").json()["variants"]["cancel_after_payment"] == \
        "after_fulfillments_canceled"
