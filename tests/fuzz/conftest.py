"""The fuzz tier: hypothesis profile (deterministic, bounded) shared by every property test.

``derandomize=True`` makes each run draw the same examples (CI is reproducible and a failure
can be re-run as is); ``max_examples`` keeps the whole property set well under a minute.
``BFFGATE_FUZZ_EXAMPLES`` raises the bound for a longer local run.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings

from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir

# Failing-example patches go to a temp dir, not an untracked .hypothesis/ in the checkout.
set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(), "bffgate-hypothesis"))

# Hypothesis imports its patch writer (and libcst, when installed) only while reporting a
# failing example, inside a pytest hook where the suite's "warnings are errors" filter turns
# libcst's own DeprecationWarning into an INTERNALERROR. Import it once here, quietly.
with warnings.catch_warnings(), contextlib.suppress(ImportError):
    warnings.simplefilter("ignore", DeprecationWarning)
    import hypothesis.extra._patching  # noqa: F401

settings.register_profile(
    "fuzz",
    derandomize=True,
    max_examples=int(os.environ.get("BFFGATE_FUZZ_EXAMPLES", "200")),
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                           HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
settings.load_profile("fuzz")
