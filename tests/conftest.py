import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))

# Every audit event of the run is validated against the shipped schema (support/audit_check.py).
pytest_plugins = ["support.audit_check"]


def pytest_sessionfinish(session, exitstatus):  # type: ignore[no-untyped-def]
    """Suite-wide invariant: no secret the tests saw appears in any gateway log line or in
    any response sent to a test browser. Fails the run if one does."""
    from support.gateway import ALL_LOGS
    from support.secrets_scan import SECRETS, scan, summary

    if not SECRETS:
        return
    leaks = scan(ALL_LOGS)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    line = (f"secret scan: {len(SECRETS)} secret values checked against {len(ALL_LOGS)} "
            f"gateway logs and all browser responses: {summary()}")
    if reporter:
        reporter.write_line(line)
    if leaks:
        if reporter:
            for leak in leaks:
                reporter.write_line(f"SECRET LEAK: {leak}", red=True)
        session.exitstatus = 1
