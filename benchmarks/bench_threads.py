"""One long text, alone and beside a competing CPU-bound process, with each thread count.

    python benchmarks/bench_threads.py                 # about 2 minutes on 2 cores

The bundled model encodes the same ~12K-token text (generated prose, seed 1; two warm-up
runs, then the best of two) in a fresh process per setting: LAM's default (adaptive, up to
:func:`lam.threads.available_cpus`), fixed at the available CPUs (torch's own default here),
and fixed at 1; first alone, then while another process spins on one core
(``while True: pass``), as on a machine that runs other work. Writes
benchmarks/results/threads.{json,md}.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from bench_core import machine, write_results

from lam.threads import available_cpus

ROOT = Path(__file__).resolve().parents[1]  # the runs import tests.conftest's text generator

RUN = """
import json, time, torch
from lam import LAM
from tests.conftest import generated_prose
threads = {threads}
model = LAM(threads=threads)
text = generated_prose(11000, seed=1)
tokens = model.count_tokens(text)
model.encode(text[:20000]); model.encode(text[:20000])
times = []
for _ in range(2):
    start = time.perf_counter()
    model.encode(text)
    times.append(time.perf_counter() - start)
print(json.dumps({{"threads": torch.get_num_threads(), "tokens": tokens, "seconds": min(times)}}))
"""


def run(threads: int | None) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", RUN.format(threads=threads)], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    rows = []
    for busy in (False, True):
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
        try:
            time.sleep(1 if busy else 0)
            for threads in (None, available_cpus(), 1):
                r = run(threads)
                r.update(busy=busy, setting="default" if threads is None else str(threads))
                r["tokens_per_s"] = r["tokens"] / r["seconds"]
                rows.append(r)
                print(r, flush=True)
        finally:
            if spinner is not None:
                spinner.kill()
                spinner.wait()
    result = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M"), "runs": rows}
    m = result["machine"]
    lines = [
        f"The bundled model on one {rows[0]['tokens']:,}-token text, {m['cpu']}, {m['cores']} cores, "
        f"torch {m['torch']}. {result['date']}.",
        "",
        "| machine | threads setting | threads | seconds | tokens/s |",
        "|---|---|---:|---:|---:|",
    ]
    for r in rows:
        where = "beside a busy process" if r["busy"] else "alone"
        lines.append(f"| {where} | {r['setting']} | {r['threads']} | {r['seconds']:.2f} | {r['tokens_per_s']:,.0f} |")
    write_results("threads", result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
