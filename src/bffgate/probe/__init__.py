"""``bffgate probe``: a synthetic login against the running gateway and its IdP, for
monitoring (exit code, one JSON line, Prometheus textfile or Pushgateway)."""

from bffgate.probe.command import add_probe_command

__all__ = ["add_probe_command"]
