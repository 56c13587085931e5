"""``serve(...)``: the simulator on uvicorn, as ``watcher simulate`` runs it."""

from __future__ import annotations

from collections.abc import Sequence

import uvicorn

from watcher.simulator.app import DEFAULT_API_KEY, SimConfig, create_app
from watcher.simulator.faults import quiet_reset_faults


def serve(
    host: str = "127.0.0.1",
    port: int = 8765,
    seed: int = 1,
    api_keys: Sequence[str] = (),
    credits: int = 10000,
    rate_limit: int = 60,
    speed: float = 0.0,
    documented_only: bool = False,
    unstable_ties: bool = False,
) -> None:
    """Serve the simulator until interrupted; no keys given means ``tt_sim_demo``."""
    config = SimConfig(
        seed=seed,
        api_keys=tuple(api_keys) or (DEFAULT_API_KEY,),
        credits=credits,
        rate_limit=rate_limit,
        speed=speed,
        documented_only=documented_only,
        unstable_ties=unstable_ties,
    )
    app = create_app(config)
    quiet_reset_faults()
    uvicorn.run(app, host=host, port=port, http="h11", ws="none", log_level="info")
