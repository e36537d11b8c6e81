"""IdP client cost: the gateway's CPU per token-endpoint POST, per httpx transport (issue #12,
logins).

    python bench/idp_client.py [--requests 3000] [--parallel 4] [--rounds 3]

Every login and every refresh POSTs a form to the IdP's token endpoint and reads a JSON
answer through the gateway's httpx client (``Gateway.idp_http``). This measures that call
alone, in this process, against bench/_upstream.py's ``POST /api/echo`` (an aiohttp.web
server in its own process, so its CPU is not counted), with the client as the gateway
builds it (``bffgate.idp_http.idp_client``: same limits, timeouts, no cookies):

  httpx-own   httpx's own transport (httpcore on anyio): ``server.upstream_client = aiohttp``
  h1          httpx over the gateway's HTTP/1.1 client (bffgate.idp_http.H1Transport):
              ``auto`` with httptools installed, the default of the image and ``speed`` extra

The figure is this process's CPU time (user + system) per request over ``--requests``
requests, ``--parallel`` at a time on the gateway's event loop (``bffgate.server.run``:
uvloop when installed), after a warm-up; the variants alternate for ``--rounds`` rounds and
the medians are printed. Each answer is checked (status 200, the echoed body length).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))  # the test suite's process helpers
sys.path.insert(0, str(HERE.parent / "src"))

from bffgate.idp_http import idp_client, idp_transport  # noqa: E402
from bffgate.server import run as on_gateway_loop  # noqa: E402  (uvloop when installed)
from support.idp import free_port  # noqa: E402
from support.processes import ProcessGroup, port_open  # noqa: E402

# A code exchange's form, as the gateway sends it (client_secret_basic).
FORM = {"grant_type": "authorization_code", "code": "c" * 43,
        "redirect_uri": "https://app.example.com/bff/callback", "code_verifier": "v" * 43}
HEADERS = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json",
           "Authorization": "Basic Ym9vdHN0cmFwOnNlY3JldC0wMTIzNDU2Nzg5YWJjZGVm"}
VARIANTS = {"httpx-own": "aiohttp", "h1": "httptools"}


def client(choice: str) -> httpx.AsyncClient:
    return idp_client(idp_transport(choice), 10)


async def batch(http: httpx.AsyncClient, url: str, n: int, parallel: int) -> float:
    """CPU seconds of this process per request over ``n`` requests."""
    async def worker(count: int) -> None:
        for _ in range(count):
            resp = await http.post(url, data=FORM, headers=HEADERS)
            if resp.status_code != 200 or resp.json()["length"] <= 0:
                raise SystemExit(f"bad answer: {resp.status_code} {resp.text[:200]}")

    started = time.process_time()
    await asyncio.gather(*[worker(n // parallel) for _ in range(parallel)])
    return (time.process_time() - started) / (n // parallel * parallel)


async def run(url: str, args: argparse.Namespace) -> dict[str, list[float]]:
    clients = {name: client(choice) for name, choice in VARIANTS.items()}
    got: dict[str, list[float]] = {name: [] for name in clients}
    try:
        for http in clients.values():
            await batch(http, url, 200, args.parallel)  # warm-up: connections, code paths
        for r in range(args.rounds):
            for name, http in clients.items():
                got[name].append(await batch(http, url, args.requests, args.parallel))
                print(f"round {r + 1} {name}: {got[name][-1] * 1e6:.0f} µs CPU/request",
                      flush=True)
    finally:
        for http in clients.values():
            await http.aclose()
    return got


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    procs = ProcessGroup(Path(tempfile.mkdtemp(prefix="bffgate-idp-client-")))
    try:
        port = free_port()
        up = procs.start("upstream", [sys.executable, str(HERE / "_upstream.py"), str(port)])
        up.wait_ready(port_open(port), what="listening")
        got = on_gateway_loop(run(f"http://127.0.0.1:{port}/api/echo", args))
    finally:
        procs.stop_all()
    base = statistics.median(got["httpx-own"])
    print(f"\n{args.requests} POSTs x {args.rounds} rounds, {args.parallel} in parallel; "
          "CPU of this process per request, medians:")
    for name, values in got.items():
        med = statistics.median(values)
        print(f"  {name:10} {med * 1e6:6.0f} µs  ({med / base:.2f}x httpx-own)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
