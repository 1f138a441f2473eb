# A real HTTP server on a free loopback port, for code that needs a URL rather than a client.
from square import Square

from orderfsm.simulator import running

with running() as base_url:  # e.g. http://127.0.0.1:54321; stops when the block ends
    client = Square(token="sandbox-token", base_url=base_url)
    locations = client.locations.list().locations
    assert locations[0].status == "ACTIVE"
    print(base_url, locations[0].id)
