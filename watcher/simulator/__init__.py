"""The bundled TrendTrack simulator: the API contract served from a seeded, evolving world.

One concern per module::

    clock.py      the simulated clock (speed, manual advance) and ISO helpers
    vocab.py      word lists the world is generated from
    entities.py   shops, profiles, items: mutable world records and their JSON form
    generate.py   seeded generation of the initial world (pure)
    examples.py   the product spec's example entities (Acme, @rivalbrand, ...) in every world
    world.py      World: evolution at each refresh, staged changes, truth log (pure)
    query.py      list parameters: validation and filtering/sorting/paging (pure)
    accounts.py   credits and rate limits per API key
    faults.py     fault injection for /v1 routes (ASGI middleware)
    app.py        the Starlette app: /v1 routes and the /_sim control API
    server.py     ``serve(...)``: uvicorn on loopback, used by ``watcher simulate``
    testing.py    ``running_simulator()``: a real server in a thread, for tests and benches
"""

from __future__ import annotations
