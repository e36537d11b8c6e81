"""Raw-socket fuzzer against a live ``bffgate serve`` (real redis-server, the oidc-provider
test IdP, a recording upstream), all on 127.0.0.1.

Pass criteria, per input: no 5xx from the gateway (the upstream never errors, so none is
excused), the gateway process never dies, no hang beyond the configured timeouts, the
upstream never sees a path outside its route's prefix (in any decoding) nor a request the
client got no upstream answer for (a smuggled or 4xx-answered request), and no secret (the
session's tokens, the client secret, the cookie key, the admin token; on the admin listener
the session cookie too) in any response. Inputs the issue requires to be refused (on the
admin listener: every path but /healthz without the exact bearer) must get a 4xx and never
reach the upstream. Family ``admin`` goes to the admin listener.

    python3 -m tests.fuzz.rawfuzz --inputs 100000 --seed 7      # from the checkout root
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:  # run as a script: the test suite's helpers
    sys.path.insert(0, str(TESTS))

import ada_url  # noqa: E402

from fuzz.client import HANG_LIMIT, WAIT_LIMIT, Outcome, exchange  # noqa: E402
from fuzz.pathcheck import escape_in  # noqa: E402
from fuzz.rawgen import FAMILY_NAMES, Case, Gen  # noqa: E402
from fuzz.stack import MARK, UPSTREAM_BASES, Stack, logged_errors  # noqa: E402


@dataclass
class Violation:
    kind: str  # 5xx | crash | hang | escape | unanswered_forward | leak | accepted | ...
    case_id: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind} [{self.case_id}] {self.detail}"


@dataclass(repr=False)
class Run:
    """Feeds cases, checks each answer and every request the upstream saw."""

    stack: Stack
    cases: dict[str, Case] = field(default_factory=dict)
    answered: dict[str, set[str]] = field(default_factory=dict)  # case -> upstream req ids
    all_answered: set[str] = field(default_factory=set)
    running: set[str] = field(default_factory=set)
    timing: dict[str, tuple[float, float]] = field(default_factory=dict)  # case: start, end
    gave_up: set[str] = field(default_factory=set)  # inputs the client stopped waiting on
    silent_closes: list[str] = field(default_factory=list)  # closed with no answer at all
    violations: list[Violation] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    checked_upstream: int = 0

    def check_outcome(self, case: Case, out: Outcome) -> None:
        self.counts["inputs"] += 1
        add = self.violations.append
        first_line = case.data.split(b"\r\n", 1)[0][:100]
        for r in out.responses:
            self.counts[f"status_{r.status // 100}xx"] += 1
            if r.status == 501 and case.allow_501:
                self.counts["status_501_coding"] += 1
            if r.status >= 500 and not (r.status == 501 and case.allow_501):
                add(Violation("5xx", case.case_id, f"status {r.status}: {out.raw[:200]!r}"))
            if case.must_reject and not (400 <= r.status < 500 or
                                         (r.status == 501 and case.allow_501)):
                add(Violation("accepted", case.case_id,
                              f"status {r.status} for an input to refuse: {first_line!r}"))
            if case.problem and r.status >= 400 and not (r.get("content-type") or "") \
                    .startswith("application/problem+json"):
                add(Violation("not_problem", case.case_id,
                              f"{r.status} {r.get('content-type')!r}: {out.raw[:120]!r}"))
            location = r.get("location")
            if location is not None and not self._local_or_idp(location):
                add(Violation("open_redirect", case.case_id, f"Location: {location[:200]}"))
            if r.get(MARK) and r.get("x-request-id"):
                self.answered.setdefault(case.case_id, set()).add(r.get("x-request-id") or "")
                self.all_answered.add(r.get("x-request-id") or "")
        if out.gave_up:
            self.gave_up.add(case.case_id)
        if out.hang:
            self.counts["hangs"] += 1
            add(Violation("hang", case.case_id, f"no answer within {HANG_LIMIT:g} s after "
                                                f"{len(out.responses)} of {len(case.methods)}"))
        if not out.responses and out.closed and not case.half_close and \
                case.abort_after is None:
            self.counts["drops"] += 1
            self.silent_closes.append(case.case_id)
            if case.must_answer:
                add(Violation("dropped", case.case_id, "closed without an answer"))
        if out.unparsed:
            self.counts["unparsed"] += 1
        for secret, kind in self.stack.secrets.items():
            b64 = base64.urlsafe_b64encode(secret.encode()).rstrip(b"=")
            if secret.encode() in out.raw or (len(b64) > 16 and b64 in out.raw):
                add(Violation("leak", case.case_id, f"{kind} in the response"))
        if case.admin and self.stack.session_cookie and \
                self.stack.session_cookie.encode() in out.raw:  # the admin API shows none
            add(Violation("leak", case.case_id, "the session cookie in an admin answer"))
        if self.stack.gateway.proc is None or self.stack.gateway.proc.poll() is not None:
            add(Violation("crash", case.case_id, "the gateway process exited"))

    def upstream_count(self, case_id: str) -> int:
        """How many requests of this input the upstream has run so far."""
        return sum(1 for rec in list(self.stack.upstream.seen)
                   if ("x-fuzz-case", case_id) in rec["headers"])

    def _local_or_idp(self, location: str) -> bool:
        """A redirect goes to the gateway itself or to the IdP, nowhere else (WHATWG parse,
        as the browser would)."""
        try:
            url = ada_url.URL(location, base=self.stack.gateway.url + "/bff/callback")
        except ValueError:
            return True  # no browser follows what it cannot parse
        idp = ada_url.URL(self.stack.idp.issuer).origin
        return url.origin in (self.stack.gateway.url, idp) and not url.username

    def check_upstream(self, final: bool = False) -> None:
        """Every request the upstream saw: under its route, policy-clean, and answered."""
        seen = self.stack.upstream.seen
        while self.checked_upstream < len(seen):
            rec = seen[self.checked_upstream]
            headers = [(k.lower(), v) for k, v in rec["headers"]]
            case_id = next((v for k, v in headers if k == "x-fuzz-case"), "?")
            case = self.cases.get(case_id)
            t0, t1 = self.timing.get(case_id, (0.0, 0.0))
            if case is not None and not t0 <= rec["at"] <= t1 + HANG_LIMIT:
                case = None  # a mangled X-Fuzz-Case naming another, finished input
            if case is None and not final and case_id in self.running:
                break  # its case is still running: look again later
            self.checked_upstream += 1
            self.counts["forwarded"] += 1
            add = self.violations.append
            path = rec["path"]
            if not any(path == b or path.startswith(b + "/") for b in UPSTREAM_BASES):
                add(Violation("escape", case_id, f"upstream saw {rec['method']} {path[:200]}"))
            elif (why := escape_in(path)) is not None:
                add(Violation("escape", case_id, f"upstream saw {path[:200]}: {why[:200]}"))
            names = [k for k, _ in headers]
            bad = [n for n in names if n in ("cookie", "cookie2", "x-csrf", "forwarded",
                                             "proxy-authorization", "x-real-ip")]
            fwd = sorted(n for n in names if n.startswith("x-forwarded-"))
            if bad or names.count("authorization") > 1 or \
                    fwd != ["x-forwarded-for", "x-forwarded-host", "x-forwarded-proto"]:
                add(Violation("policy", case_id, f"upstream headers {names}"))
            rid = next((v for k, v in headers if k == "x-request-id"), "")
            if case is not None and case.must_reject:
                add(Violation("accepted", case_id, f"forwarded {rec['method']} {path[:100]}"))
            elif rid not in self.answered.get(case_id, set()) and not (
                    case is None and rid in self.all_answered):  # its X-Fuzz-Case was mangled
                when = rec["at"]
                around = [c for c, (t0, t1) in self.timing.items() if t0 <= when <= t1]
                if case is not None and case.abort_after is not None:
                    self.counts["reset_before_answer"] += 1  # the client reset on purpose
                elif case_id in self.gave_up or (case is None and self.gave_up & set(around)):
                    # The client stopped waiting (an input the server may wait on) before
                    # the answer came: not the gateway's doing.
                    self.counts["late_answers"] += 1
                else:
                    add(Violation("unanswered_forward", case_id,
                                  f"upstream ran {rec['method']} {path[:100]} but the client "
                                  f"got no upstream answer for it (inputs running: {around})"))
            if case is not None and case.upstream_path is not None and \
                    path != case.upstream_path:
                add(Violation("path_changed", case_id,
                              f"client sent {case.upstream_path!r}, upstream got {path!r}"))
            if case is not None and case_id in case.body_sha and \
                    rec["body_sha256"] != case.body_sha[case_id]:
                add(Violation("body_mismatch", case_id,
                              f"upstream got {rec['body_len']} other bytes"))
        del seen[:self.checked_upstream]  # checked: keep memory flat over long runs
        self.checked_upstream = 0

    async def canary(self) -> None:
        """Keep the session alive and valid; log in again if an input ended it."""
        case = Case("canary", "canary", [
            f"GET /api/canary HTTP/1.1\r\nHost: localhost:{self.stack.gateway.port}\r\n"
            f"X-Fuzz-Case: canary\r\nX-CSRF: 1\r\n"
            f"Cookie: __Host-bffgate={self.stack.session_cookie}\r\n\r\n".encode()], ["GET"])
        self.cases["canary"] = case
        out = await exchange(case, self.stack.gateway.port)
        for r in out.responses:
            if r.get(MARK):
                self.answered.setdefault("canary", set()).add(r.get("x-request-id") or "")
        if not out.responses or out.responses[0].status == 401:
            self.counts["relogins"] += 1
            await self.stack.login()

    async def run(self, gen: Gen, family: str, n: int, *, workers: int = 4,
                  stop_on_violation: bool = False, progress: bool = False) -> None:
        next_index = 0
        started = time.monotonic()

        async def worker() -> None:
            nonlocal next_index
            while next_index < n:
                if stop_on_violation and self.violations:
                    return
                index = next_index
                next_index += 1
                gen.ctx.session_cookie = self.stack.session_cookie
                gen.ctx.sub, gen.ctx.admin_id = self.stack.sub, self.stack.admin_id
                case = gen.case(family, index)
                self.running.add(case.case_id)
                t0 = time.monotonic()
                port = self.stack.gateway.admin_port if case.admin else self.stack.gateway.port
                try:
                    out = await exchange(case, port,
                                         WAIT_LIMIT if case.may_wait else HANG_LIMIT,
                                         self.upstream_count)
                except (OSError, TimeoutError) as exc:
                    out = Outcome([], b"", closed=True, hang=False, unparsed=repr(exc))
                    self.counts["connect_errors"] += 1
                self.cases[case.case_id] = case
                self.running.discard(case.case_id)
                self.timing[case.case_id] = (t0, time.monotonic())
                self.check_outcome(case, out)
                if index % 1000 == 999:
                    self.check_upstream()
                    await self.canary()
                    if progress:
                        print(f"  {index + 1} inputs, {time.monotonic() - started:.0f} s, "
                              f"{len(self.violations)} violations", file=sys.stderr, flush=True)

        await self.canary()
        await asyncio.gather(*(worker() for _ in range(workers)))
        await asyncio.sleep(0.5)  # a forward still in flight reaches the upstream
        self.check_upstream(final=True)

    def summary(self, seconds: float, seed: int) -> str:
        by_kind = Counter(v.kind for v in self.violations)
        return (f"rawfuzz: inputs={self.counts['inputs']} seed={seed} "
                f"5xx={by_kind['5xx']} crashes={by_kind['crash']} hangs={by_kind['hang']} "
                f"upstream_escapes={by_kind['escape'] + by_kind['unanswered_forward']} "
                f"secret_leaks={by_kind['leak']} accepted_ambiguous={by_kind['accepted']} "
                f"not_problem={by_kind['not_problem']} dropped={by_kind['dropped']} "
                f"policy={by_kind['policy']} body_mismatch={by_kind['body_mismatch']} "
                f"path_changed={by_kind['path_changed']} "
                f"errors_logged={by_kind['error_logged']} "
                f"open_redirects={by_kind['open_redirect']} "
                f"forwarded={self.counts['forwarded']} silent_closes={self.counts['drops']} "
                f"late_answers={self.counts['late_answers']} "
                f"reset_before_answer={self.counts['reset_before_answer']} "
                f"relogins={self.counts['relogins']} duration={seconds:.0f}s")


def fuzz(stack: Stack, family: str, n: int, seed: int, *, workers: int = 4,
         stop_on_violation: bool = False, progress: bool = False) -> Run:
    run = Run(stack)
    before = len(logged_errors(stack))
    asyncio.run(run.run(Gen(stack.context, seed), family, n, workers=workers,
                        stop_on_violation=stop_on_violation, progress=progress))
    for event in logged_errors(stack)[before:]:
        run.violations.append(Violation("error_logged", event.get("request_id", "?"),
                                        json.dumps(event)[:300]))
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--family", default="mixed", choices=["mixed", *FAMILY_NAMES])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--show", type=int, default=20, help="violations to print")
    args = parser.parse_args(argv)
    started = time.monotonic()
    stack = Stack.start()
    try:
        run = fuzz(stack, args.family, args.inputs, args.seed, workers=args.workers,
                   progress=True)
    finally:
        stack.close()
    by_kind: dict[str, list[Violation]] = {}
    for v in run.violations:
        by_kind.setdefault(v.kind, []).append(v)
    for kind, items in sorted(by_kind.items()):
        print(f"{kind}: {len(items)}")
        for v in items[:args.show]:
            print(f"  {v}")
    print("answers:", ", ".join(f"{k[7:]}={v}" for k, v in sorted(run.counts.items())
                                 if k.startswith("status_")))
    print(f"gateway log: {stack.gateway.log_path}")
    if run.silent_closes:
        print(f"silent closes (informational): {run.silent_closes[:args.show]}")
    print(run.summary(time.monotonic() - started, args.seed))
    crit = ("5xx", "crash", "hang", "escape", "unanswered_forward", "leak", "error_logged",
            "open_redirect")
    return 1 if any(v.kind in crit for v in run.violations) else 0


if __name__ == "__main__":
    sys.exit(main())
