"""``bffgate serve`` sets the cyclic collector for serving once started (server.tune_gc)."""

from __future__ import annotations

import gc

from bffgate.server import GC_YOUNG_THRESHOLD, tune_gc


def test_start_up_objects_frozen_and_the_young_generation_collected_less_often() -> None:
    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, 10, 10)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
