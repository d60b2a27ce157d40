"""How long an idle ``apiary serve`` takes to answer ``/api/health``, and the CPU it spends getting there.

Most of the test suite's fixtures start one (tests/server.py), and with two pytest workers beside the servers
they start, the CPU a start-up spends is what the suite waits for. Each round starts a server of this tree and
one of the baseline (``--against REF``: that commit's ``apiary`` from ``git archive``, run by this interpreter),
one after the other, alternating which goes first, on each store; every server gets a new data directory (chdb: a
new directory in-process). Printed: the medians of the time to the first 200 from ``/api/health`` and of the CPU
(user + system) of the server and its decode workers from launch until it has stopped after SIGTERM, and their
ratio this tree / baseline. Without ``--against`` the baseline is a bare interpreter (``python -c pass``).

    python bench/server_start.py --against main --rounds 5
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.server import free_port  # noqa: E402


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def start_once(tree: Path | None, store: str) -> tuple[float, float]:
    """(seconds until /api/health answers 200, CPU seconds of the server's whole life) for one server."""
    with tempfile.TemporaryDirectory() as tmp:
        cpu = children_cpu()
        started = time.perf_counter()
        if tree is None:
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            return time.perf_counter() - started, children_cpu() - cpu
        port = free_port()
        cmd = [sys.executable, "-m", "apiary", "serve", "--data", str(Path(tmp) / "data"), "--port", str(port),
               "--host", "127.0.0.1", "--xray-port", "0", "--otlp-grpc-port", "0"]
        if store == "chdb":
            cmd += ["--store", f"chdb://{Path(tmp) / 'clickhouse'}"]
        env = {**os.environ, "PYTHONPATH": str(tree)}
        proc = subprocess.Popen(cmd, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"apiary serve ({tree}) exited with {proc.returncode}")
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.02)
            ready = time.perf_counter() - started
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        return ready, children_cpu() - cpu


def baseline_tree(ref: str, into: Path) -> Path:
    """``ref``'s files (only what ``python -m apiary`` needs), unpacked from ``git archive``."""
    archive = into / "base.tar"
    with open(archive, "wb") as out:
        subprocess.run(["git", "archive", ref, "apiary"], cwd=ROOT, stdout=out, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")
    return into / "tree"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", default="", help="a git ref to compare with (default: a bare interpreter)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--stores", default="duckdb,chdb")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = baseline_tree(args.against, Path(tmp)) if args.against else None
        trees = {"this tree": ROOT, f"baseline ({args.against or 'python -c pass'})": base}
        for store in args.stores.split(","):
            got: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
            for r in range(args.rounds):
                order = list(trees.items()) if r % 2 == 0 else list(reversed(trees.items()))
                for name, tree in order:
                    got[name].append(start_once(tree, store))
            medians = {name: (statistics.median(t for t, _ in runs), statistics.median(c for _, c in runs))
                       for name, runs in got.items()}
            (new_t, new_c), (old_t, old_c) = medians.values()
            for name, (t, c) in medians.items():
                print(f"{store:6}  {name:28}  ready {t:6.2f} s   CPU {c:6.2f} s   (median of {args.rounds})")
            print(f"{store:6}  ratio this / baseline        ready {new_t / old_t:6.2f}     CPU {new_c / old_c:6.2f}",
                  flush=True)
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
