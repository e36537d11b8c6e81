"""``bffgate doctor``: live checks of what the configuration points at. Each failure line
says what failed, where (the URL or the config key), the cause, and what to try."""

from bffgate.doctor.checks import run_doctor
from bffgate.doctor.report import store_failure

__all__ = ["run_doctor", "store_failure"]
