"""HTTP API throughput and latency: a real load from a second process against `kanda serve` on 127.0.0.1.

    .venv/bin/python -m bench.api [--duration 30] [--clients 20] [--workers N] [--uncached]

What runs: a demo installation (`kanda demo`'s own function: 7 regions, 3,000 rows each, 7 days, published; built
once and cached under `bench/out/api/home`), an API key made for the run, and `kanda serve --workers N` (default one
per core, access log off) as its own process on a free port. A second process (this module with `load`) runs
asyncio clients, each sending one request after another on its own kept-alive connection, bounded by time
(`--duration`) and by count (`--max-requests` per scenario), and reports p50/p95/p99 latency and requests per
second, and the CPU time per request of the server (all its processes) and of the load process. The clients speak
HTTP/1.1 written by hand on asyncio streams (`--client raw`, the default) or use httpx (`--client httpx`): httpx
costs 2-3 ms of CPU per request at 20 clients, so on a 2-core machine one httpx process cannot send 500 requests a
second at all, whatever the server does. Scenarios, in order:

- the reference: 1 client, `GET /api/rollups/creator_daily?group_by=region` (and `POST /api/sql`), short;
- 20 clients (`--clients`) on the same GET for `--duration` seconds;
- 20 clients on `POST /api/sql` (a grouped sum) for `--duration` seconds;
- with `--uncached`, the same two loads again against a server whose answer cache is off
  (`KANDA_API_CACHE_BYTES=0`): what every request costs when it runs its query.

Every answer is checked (status 200 and the publication header); a failed request is counted and reported, never
timed as a success. Results are printed and written to `bench/out/api.json`. Timings are reported, never asserted.
The load generator shares the machine's cores with the server: on a 2-core machine it takes a good part of one.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

if __package__ in (None, ""):  # `python bench/api.py`: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(__file__).resolve().parent / "out"
HOME = OUT / "api" / "home"
ROLLUP_PATH = "/api/rollups/creator_daily?group_by=region"
SQL_BODY = {
    "sql": "select region, sum(net_usd_minor) as net_usd_minor from rollups.creator_daily group by 1 order by 1"
}
QUIET = ("--no-access-log",)
GOALS = {"rollups": (500.0, 50.0), "sql": (300.0, 100.0)}  # req/s at least, p95 ms at most, at 20 clients


def environment(home: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "KANDA_HOME": str(home), "KANDA_BUYER_SALT": "bench-api", **extra}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")]))
    for name in ("KANDA_CATALOG_URL", "KANDA_WAREHOUSE", "KANDA_APP_DB_URL"):
        env.pop(name, None)
    return env


def build_home(home: Path) -> None:
    """A published demo installation, built once (a file marks it complete) and reused by later runs."""
    done = home / ".bench-complete"
    if done.exists():
        return
    os.environ.update(environment(home))
    from rich.console import Console

    from kanda.demo import run_demo
    from kanda.settings import load_settings

    print(f"building the demo installation in {home} (once) ...", flush=True)
    summary = run_demo(load_settings(), rows=3_000, days=7, seed=42, console=Console(stderr=True))
    if not summary.verified:
        raise SystemExit("the demo installation did not verify")
    done.write_text(dt.datetime.now(dt.UTC).isoformat())


def api_key(home: Path) -> str:
    os.environ.update(environment(home))
    from kanda.analyst.keys import KeyStore
    from kanda.settings import load_settings

    return KeyStore(load_settings().app_db_url).create(f"bench-{os.getpid()}-{int(time.time())}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`kanda serve` as a child process, stopped (its process group) on exit."""

    def __init__(self, home: Path, workers: int, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (OUT / "api-serve.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kanda.cli", "serve", "--port", str(self.port), "--workers", str(workers), *QUIET],
            env=environment(home, **env),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 120.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"kanda serve exited ({self.process.returncode}); see {self.log.name}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise SystemExit(f"kanda serve did not answer in {timeout:.0f} s; see {self.log.name}")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server: the supervisor and every worker (its process group)."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == self.process.pid:  # field 5, the process group
                total += int(fields[11]) + int(fields[12])  # fields 14 and 15: utime, stime
        return total / ticks

    def __enter__(self) -> Server:
        self.wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        import signal

        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


# --- the load process --------------------------------------------------------------------------------------------


class HttpxClient:
    """One kept-alive connection of httpx's async client per simulated analyst."""

    def __init__(self, url: str, token: str) -> None:
        import httpx

        self.http = httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    async def request(self, kind: str) -> tuple[int, bool]:
        if kind == "rollups":
            response = await self.http.get(ROLLUP_PATH)
        else:
            response = await self.http.post("/api/sql", json=SQL_BODY)
        return response.status_code, "x-kanda-publication" in response.headers

    async def close(self) -> None:
        await self.http.aclose()


class RawClient:
    """HTTP/1.1 on one kept-alive asyncio connection, written by hand: a fraction of httpx's CPU per request, so
    that on a 2-core machine the load generator takes less of the cores the server is measured on."""

    def __init__(self, url: str, token: str) -> None:
        parsed = urlsplit(url)
        self.host, self.port = parsed.hostname, parsed.port
        self.token = token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        body = json.dumps(SQL_BODY).encode()
        common = f"Host: {self.host}:{self.port}\r\nAuthorization: Bearer {token}\r\n"
        self.requests = {
            "rollups": f"GET {ROLLUP_PATH} HTTP/1.1\r\n{common}\r\n".encode(),
            "sql": f"POST /api/sql HTTP/1.1\r\n{common}Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body,
        }

    async def request(self, kind: str) -> tuple[int, bool]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(self.requests[kind])
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        await self.reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, "x-kanda-publication" in headers

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = self.reader = None


async def _client(connection, kind: str, deadline: float, budget: list[int], samples: list[float], errors: list[str]):
    while time.perf_counter() < deadline and budget[0] > 0:
        budget[0] -= 1
        started = time.perf_counter()
        try:
            status, named = await connection.request(kind)
            ok, problem = status == 200 and named, f"HTTP {status}"
        except Exception as exc:  # a refused connection or a timeout is a failed request, reported below
            ok, problem = False, repr(exc)
            await connection.close()
        elapsed = time.perf_counter() - started
        if ok:
            samples.append(elapsed)
        else:
            errors.append(problem[:200])


async def _load(
    url: str, token: str, kind: str, clients: int, seconds: float, max_requests: int, client: str = "raw"
) -> dict:
    make = RawClient if client == "raw" else HttpxClient
    connections = [make(url, token) for _ in range(clients)]
    try:
        for connection in connections:  # warm the server (the first answer computes it) and open the connections
            await connection.request(kind)
        samples: list[float] = []
        errors: list[str] = []
        budget = [max_requests]
        started = time.perf_counter()
        deadline = started + seconds
        cpu = time.process_time()
        await asyncio.gather(*(_client(c, kind, deadline, budget, samples, errors) for c in connections))
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu
    finally:
        for connection in connections:
            await connection.close()
    result = summarise(kind, clients, samples, errors, wall)
    result["client_cpu_ms_per_request"] = round(cpu * 1000 / max(len(samples), 1), 2)
    result["client"] = client
    return result


def summarise(kind: str, clients: int, samples: list[float], errors: list[str], wall: float) -> dict:
    ms = sorted(s * 1000 for s in samples)

    def pct(p: float) -> float:
        return ms[min(len(ms) - 1, round(p / 100 * (len(ms) - 1)))] if ms else float("nan")

    return {
        "scenario": kind,
        "clients": clients,
        "requests": len(ms),
        "errors": len(errors),
        "error_examples": sorted(set(errors))[:3],
        "seconds": round(wall, 2),
        "req_per_s": round(len(ms) / wall, 1) if wall else 0.0,
        "p50_ms": round(pct(50), 1),
        "p95_ms": round(pct(95), 1),
        "p99_ms": round(pct(99), 1),
        "mean_ms": round(statistics.fmean(ms), 1) if ms else float("nan"),
    }


def run_load(url: str, token: str, kind: str, clients: int, seconds: float, max_requests: int, client: str) -> dict:
    """One scenario in a separate process (so the load generator's CPU is not the server's)."""
    command = [sys.executable, "-m", "bench.api", "load", url, token, kind, str(clients), str(seconds)]
    command += [str(max_requests), client]
    done = subprocess.run(command, env=environment(HOME), capture_output=True, text=True, timeout=seconds + 300)
    if done.returncode != 0:
        raise SystemExit(f"the load process failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the run -----------------------------------------------------------------------------------------------------


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def measure(args: argparse.Namespace, token: str, *, uncached: bool = False) -> list[dict]:
    env = {"KANDA_API_CACHE_BYTES": "0"} if uncached else {}
    label = " (answer cache off)" if uncached else ""
    results = []
    with Server(HOME, args.workers, **env) as server:
        plan = []
        if not uncached:
            plan += [("rollups", 1, args.reference_seconds), ("sql", 1, args.reference_seconds)]
        plan += [("rollups", args.clients, args.duration), ("sql", args.clients, args.duration)]
        for kind, clients, seconds in plan:
            print(f"  {kind}, {clients} client(s), {seconds:g} s{label}, load average {loadavg()} ...", flush=True)
            load = loadavg()
            cpu = server.cpu_seconds()
            result = run_load(server.url, token, kind, clients, seconds, args.max_requests, args.client)
            # Includes the load process's warm-up requests (a few): negligible against thousands.
            server_ms = (server.cpu_seconds() - cpu) * 1000 / max(result["requests"], 1)
            result.update(cache="off" if uncached else "on", load_before=load, server_cpu_ms_per_request=server_ms)
            results.append(result)
    return results


def report(result: dict) -> None:
    print()
    print(f"kanda serve --workers {result['workers']} on {result['cores']} cores; {result['measured_at']};", end=" ")
    print(f"load generator: {result['client']} client, in its own process")
    print(f"load average before / after: {result['load_before']} / {result['load_after']}")
    print(f"{'scenario':<10}{'cache':>6}{'clients':>8}{'requests':>10}{'errors':>7}{'req/s':>9}", end="")
    print(f"{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'server CPU ms/req':>19}{'client CPU ms/req':>19}")
    for r in result["scenarios"]:
        print(f"{r['scenario']:<10}{r['cache']:>6}{r['clients']:>8}{r['requests']:>10}{r['errors']:>7}", end="")
        print(f"{r['req_per_s']:>9.1f}{r['p50_ms']:>9.1f}{r['p95_ms']:>9.1f}{r['p99_ms']:>9.1f}", end="")
        print(f"{r['server_cpu_ms_per_request']:>19.2f}{r['client_cpu_ms_per_request']:>19.2f}")
    print("CPU per request is what the machine's load does not change much: req/s and latency depend on the share")
    print("of the cores this run got (see the load average; other jobs share the machine).")
    for r in result["scenarios"]:
        if r["clients"] > 1 and r["cache"] == "on":
            rate, p95 = GOALS[r["scenario"]]
            met = r["req_per_s"] >= rate and r["p95_ms"] <= p95
            print(f"goal {r['scenario']}: >= {rate:g} req/s and p95 <= {p95:g} ms at {r['clients']} clients:", end=" ")
            print("met" if met else "NOT met")


def main(argv: list[str] | None = None) -> dict | None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["load"]:
        url, token, kind, clients, seconds, max_requests, client = argv[1:8]
        result = asyncio.run(_load(url, token, kind, int(clients), float(seconds), int(max_requests), client))
        print(json.dumps(result))
        return None
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=30.0, help="Seconds of each 20-client load.")
    parser.add_argument("--reference-seconds", type=float, default=10.0, help="Seconds of each 1-client load.")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--max-requests", type=int, default=200_000, help="Upper bound per scenario.")
    parser.add_argument("--uncached", action="store_true", help="Also measure with the answer cache off.")
    parser.add_argument(
        "--client",
        choices=("raw", "httpx"),
        default="raw",
        help="Load generator: hand-written HTTP/1.1 on asyncio (default; light) or httpx's async client.",
    )
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    build_home(HOME)
    token = api_key(HOME)
    result = {
        "measured_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": platform.platform(),
        "cores": os.cpu_count(),
        "workers": args.workers,
        "client": args.client,
        "load_before": loadavg(),
    }
    scenarios = measure(args, token)
    if args.uncached:
        scenarios += measure(args, token, uncached=True)
    result.update(scenarios=scenarios, load_after=loadavg())
    (OUT / "api.json").write_text(json.dumps(result, indent=2))
    report(result)
    return result


if __name__ == "__main__":
    main()
