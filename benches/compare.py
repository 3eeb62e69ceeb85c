#!/usr/bin/env python3
"""Side-by-side load runs for BENCHMARKS.md.

Starts a strict and a relaxed server (release binary, fresh data directories), sets up
load tenants on each with `permetrix load --setup`, then repeats, alternating within
each repetition so that machine noise hits every figure alike:

    /health baseline (strict server) | borrow/return 100 tenants (strict)
    | borrow/return 1 tenant (strict) | borrow/return 100 tenants (relaxed)

followed by open-loop runs at half the measured 100-tenant maximum (strict and
relaxed). The disk's bare fdatasync latency (benches/fsync.py, in --out, so on the same
disk as the data) is measured before and after the load runs, and the strict server's
mean group-commit cycle is read from its metrics at the end, for target 3. Every load command, the machine load (`/proc/loadavg`) before and after
each run, and the JSON summaries are kept in --out; a table of ratios is printed.

    python3 benches/compare.py --bin target/release/permetrix --out target/bench/run1
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

TOKEN = "bench-operator-token"


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


class Server:
    def __init__(self, binary, workdir, name, extra):
        self.name = name
        self.dir = os.path.join(workdir, name)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.log = open(os.path.join(workdir, f"{name}.log"), "w")
        cmd = [binary, "serve", "--bind", "127.0.0.1:0", "--data-dir",
               os.path.join(self.dir, "data")] + extra
        env = dict(os.environ, PERMETRIX_ADMIN_TOKEN=TOKEN, RUST_LOG="warn,permetrix=info")
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        self.addr = None
        for line in self.proc.stderr:
            self.log.write(line)
            if "listening on " in line:
                self.addr = line.split("listening on ")[1].split()[0]
                break
        if not self.addr:
            sys.exit(f"{name} server did not start; see {self.log.name}")
        # Keep draining: the server logs one line per request, and a full pipe would
        # block it (every run then reports 0 req/s).
        threading.Thread(target=self._drain, daemon=True).start()
        self.creds = os.path.join(self.dir, "creds.json")

    def _drain(self):
        for line in self.proc.stderr:
            self.log.write(line)

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return None

    def flush_cycle(self):
        """(commits, mean seconds) of the group commit so far, from the metrics."""
        req = urllib.request.Request(f"http://{self.addr}/metrics",
                                     headers={"Authorization": f"Bearer {TOKEN}"})
        count = total = 0.0
        for line in urllib.request.urlopen(req).read().decode().splitlines():
            if line.startswith("permetrix_storage_flush_duration_seconds_count"):
                count = float(line.split()[1])
            elif line.startswith("permetrix_storage_flush_duration_seconds_sum"):
                total = float(line.split()[1])
        return count, (total / count if count else 0.0)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def fdatasync_p50(out):
    """The disk's bare fdatasync p50 in ms (benches/fsync.py on the --out directory)."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fsync.py")
    res = subprocess.run([sys.executable, script, os.path.join(out, "fsync.test"), "300"],
                         capture_output=True, text=True, check=True)
    print(res.stdout.strip(), flush=True)
    line = next(l for l in res.stdout.splitlines() if l.startswith("fdatasync overwrite"))
    return float(line.split("p50=")[1].split()[0])


def load(binary, server, out, label, args, runs):
    path = os.path.join(out, f"{label}.json")
    cmd = [binary, "load", "--quiet", "--server", server.addr, "--credentials",
           server.creds, "--json", path] + args
    before = loadavg()
    t0 = time.time()
    res = subprocess.run(cmd, env=dict(os.environ, PERMETRIX_ADMIN_TOKEN=TOKEN),
                         capture_output=True, text=True)
    after = loadavg()
    if res.returncode != 0:
        sys.exit(f"{label} failed: {res.stderr}")
    summary = json.load(open(path))
    runs.append({"label": label, "cmd": " ".join(cmd), "loadavg_before": before,
                 "loadavg_after": after, "wall_s": round(time.time() - t0, 1),
                 "summary": summary})
    print(f"{label:<28} {summary['achieved_rate']:>9.0f} req/s  p50 "
          f"{(summary['latency'] or {}).get('p50_ms', 0):.2f} ms  p99 "
          f"{(summary['latency'] or {}).get('p99_ms', 0):.2f} ms  errors "
          f"{sum(summary['errors'].values())}  load {before} -> {after}", flush=True)
    return summary


def spread(values):
    if not values:
        return "-"
    mean = statistics.mean(values)
    return f"{mean:.2f} (min {min(values):.2f}, max {max(values):.2f}, n={len(values)})"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default="target/release/permetrix")
    p.add_argument("--out", default="target/bench/compare")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--duration", default="10")
    p.add_argument("--warmup", default="2")
    p.add_argument("--connections", default="64")
    p.add_argument("--server-args", default="", help="extra serve flags for both servers")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    extra = a.server_args.split()
    strict = Server(a.bin, a.out, "strict", extra)
    relaxed = Server(a.bin, a.out, "relaxed", ["--durability", "relaxed"] + extra)
    runs = []
    fsync_p50 = [fdatasync_p50(a.out)]
    common = ["--duration", a.duration, "--warmup", a.warmup, "--connections", a.connections]
    try:
        for s in (strict, relaxed):
            load(a.bin, s, a.out, f"setup-{s.name}",
                 ["--setup", "--tenants", "100", "--duration", "1", "--warmup", "0"], runs)
        for r in range(a.reps):
            load(a.bin, strict, a.out, f"r{r}-health", common + ["--baseline"], runs)
            load(a.bin, strict, a.out, f"r{r}-strict-100", common + ["--tenants", "100"], runs)
            load(a.bin, strict, a.out, f"r{r}-strict-1", common + ["--tenants", "1"], runs)
            load(a.bin, relaxed, a.out, f"r{r}-relaxed-100", common + ["--tenants", "100"], runs)
        by = lambda prefix: [x["summary"] for x in runs if x["label"].endswith(prefix)]
        max100 = statistics.mean(s["achieved_rate"] for s in by("-strict-100"))
        half = f"{max100 / 2:.0f}"
        for r in range(a.reps):
            load(a.bin, strict, a.out, f"r{r}-open-strict-half",
                 common + ["--tenants", "100", "--rate", half], runs)
            load(a.bin, relaxed, a.out, f"r{r}-open-relaxed-half",
                 common + ["--tenants", "100", "--rate", half], runs)
        fsync_p50.append(fdatasync_p50(a.out))
        commits, cycle = strict.flush_cycle()
    finally:
        rss = {s.name: s.rss_kib() for s in (strict, relaxed)}
        strict.stop()
        relaxed.stop()
        json.dump({"runs": runs, "rss_kib_at_end": rss}, open(os.path.join(a.out, "runs.json"), "w"), indent=1)

    def rates(suffix):
        return [s["achieved_rate"] for s in by(suffix)]

    reps = range(a.reps)
    pick = lambda r, suffix: next(x["summary"] for x in runs if x["label"] == f"r{r}{suffix}")
    t1 = [pick(r, "-strict-100")["achieved_rate"] / pick(r, "-health")["achieved_rate"] for r in reps]
    t2 = [pick(r, "-strict-1")["achieved_rate"] / pick(r, "-strict-100")["achieved_rate"] for r in reps]
    t5 = [pick(r, "-strict-100")["achieved_rate"] / pick(r, "-relaxed-100")["achieved_rate"] for r in reps]
    print()
    print(f"health req/s               {spread(rates('-health'))}")
    print(f"strict 100 tenants req/s   {spread(rates('-strict-100'))}")
    print(f"strict 1 tenant req/s      {spread(rates('-strict-1'))}")
    print(f"relaxed 100 tenants req/s  {spread(rates('-relaxed-100'))}")
    print(f"T1 strict100/health        {spread(t1)}   target >= 0.6")
    print(f"T2 strict1/strict100       {spread(t2)}   target >= 0.5")
    print(f"T5 strict100/relaxed100    {spread(t5)}   target >= 0.8")
    for mode in ("strict", "relaxed"):
        o = by(f"-open-{mode}-half")
        print(f"T3 {mode} open @ {half}/s: borrow p50 ms {spread([s['borrow']['p50_ms'] for s in o])}, "
              f"p99 ms {spread([s['borrow']['p99_ms'] for s in o])}, "
              f"achieved {spread([s['achieved_rate'] for s in o])}")
    fs = statistics.mean(fsync_p50)
    print(f"T3 group-commit cycle (strict, mean of {commits:.0f}) {1e3 * cycle:.2f} ms vs bare "
          f"fdatasync p50 {fs:.2f} ms (before/after {fsync_p50[0]:.2f}/{fsync_p50[1]:.2f}) = "
          f"{1e3 * cycle / fs:.2f}x   target <= 2")
    strict_p50 = statistics.mean(s['borrow']['p50_ms'] for s in by("-open-strict-half"))
    print(f"T3 strict p50 at half rate {strict_p50:.2f} ms vs fdatasync p50 + 0.5 ms = "
          f"{fs + 0.5:.2f} ms")
    print(f"RSS at end (KiB): {rss}")


if __name__ == "__main__":
    main()
