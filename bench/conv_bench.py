#!/usr/bin/env python3
"""The conv2d op against PyTorch's, side by side (`make bench-conv`).

Times forward + backward of the reference CNN's two convolutions (and of the max pooling after
each) at batch 64 on 2 threads: nabla's ops (bench/conv_bench.c, built by CMake as
build/conv_bench), PyTorch's torch.nn.functional tuned (OPENBLAS_NUM_THREADS=1) and as shipped
(bench/conv_torch.py, torch.set_num_threads(2)), in R alternating rounds, between two measurements of the sgemm
ceiling (bench/sgemm_ceiling.c, as bench/run.py does, with the same choice of OpenBLAS kernel).
GFLOP/s count 2 FLOPs per multiply-add of each product a step does as a direct convolution
(whatever method computes it: nabla's conv2 uses Winograd's, with 2.25 times fewer): the forward
pass, the weight gradient, and the input gradient for conv2 only (conv1's input is the data). Each
program reports its best block of steps; the report takes each program's best round, and the
ceiling is the larger of its two measurements. Writes bench/CONV_RESULTS.md.

    python3 bench/conv_bench.py [--build build] [--rounds 3] [--threads 2] [--seconds 0.3]
"""
import argparse
import datetime
import json
import os
import signal
import sys
import tempfile

from run import (BenchError, choose_kernel, compile_ceiling, log, machine_description,
                 measure_ceiling, program_environments, run_checked)

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
PROGRAMS = ("nabla", "torch-tuned", "torch-shipped")
TITLES = {"nabla": "nabla", "torch-tuned": "PyTorch tuned (OPENBLAS_NUM_THREADS=1)",
          "torch-shipped": "PyTorch as shipped"}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default=os.path.join(ROOT, "build"),
                        help="the CMake build directory that has conv_bench and nabla")
    parser.add_argument("--python", default="/usr/bin/python3", help="the Python that has torch")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=0.3, help="length of a timed block")
    parser.add_argument("--out", default=os.path.join(BENCH_DIR, "CONV_RESULTS.md"))
    args = parser.parse_args()
    for name in ("rounds", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if not args.seconds > 0:
        parser.error("--seconds must be positive")
    args.conv_bench = os.path.join(args.build, "conv_bench")
    args.nabla = os.path.join(args.build, "nabla")
    for exe in (args.conv_bench, args.nabla):
        if not os.access(exe, os.X_OK):
            parser.error(f"{exe}: not built (run `make` first)")
    return args


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def run_round(args, envs):
    """One run of each program: {program: {conv name: its JSON}}."""
    results = {}
    for program in PROGRAMS:
        if program == "nabla":
            argv = [args.conv_bench, str(args.threads), str(args.seconds)]
        else:
            argv = [args.python, os.path.join(BENCH_DIR, "conv_torch.py"), "--threads",
                    str(args.threads), "--seconds", str(args.seconds)]
        log(f"  {program}")
        results[program] = {r["op"]: r for r in json_lines(
            run_checked(argv, envs[program], f"{program} conv benchmark"))}
    return results


def best_rounds(rounds):
    """For each program and op, the round with the fastest step."""
    best = {}
    for program in PROGRAMS:
        for op in rounds[0][program]:
            runs = [r[program][op] for r in rounds]
            best[(program, op)] = min(runs, key=lambda r: r["step_ms"])
    return best


def report(args, machine, kernel_note, ceilings, best, loads):
    ceiling = max(c["gflops"] for c in ceilings)
    ops = sorted({op for _, op in best})
    convs = [op for op in ops if best[("nabla", op)]["kind"] == "conv2d"]
    pools = [op for op in ops if op not in convs]
    lines = [
        "# conv2d: nabla against PyTorch", "",
        f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC  ",
        f"Reproduce: `make bench-conv` (`python3 bench/conv_bench.py --rounds {args.rounds} "
        f"--threads {args.threads} --seconds {args.seconds}`)", "",
        "Forward + backward of the reference CNN's convolutions at batch 64 on "
        f"{args.threads} threads, no bias: conv1 = conv2d(32, 3, padding=1) on 1x28x28 (no input "
        "gradient: its input is the data), conv2 = conv2d(64, 3, padding=1) on 32x14x14. "
        "GFLOP/s count 2 FLOPs per multiply-add of each product a direct convolution does "
        "(forward, weight gradient, and the input gradient of conv2), whatever the method: "
        "nabla computes conv2 by Winograd's F(2x2, 3x3), with 2.25 times fewer multiplications, "
        "so its figure may pass the sgemm ceiling. Each program's best of "
        f"{args.rounds} alternating round(s), each the best of 7 timed blocks of "
        f"{args.seconds} s.", "",
        "## Machine", "",
    ]
    lines += [f"- {k}: {v}" for k, v in machine.items()]
    torch_run = best[("torch-tuned", convs[0])]
    lines += [f"- PyTorch: {torch_run['torch']} (oneDNN/MKL-DNN "
              f"{'available' if torch_run['mkldnn'] else 'not available'} for its conv2d)",
              f"- OpenBLAS kernel: {kernel_note}",
              f"- load average (1 min) at the start and the end: {loads[0]:.2f}, {loads[1]:.2f}",
              "", f"sgemm ceiling: {ceiling:.1f} GFLOP/s (n=1024, {args.threads} threads; "
              f"{ceilings[0]['gflops']:.1f} at the start, {ceilings[1]['gflops']:.1f} at the end)",
              "", "## Results", "",
              "| conv | program | forward ms | backward ms | step ms | GFLOP/s | % of ceiling |",
              "|---|---|---:|---:|---:|---:|---:|"]
    totals = {}
    for conv in convs:
        for program in PROGRAMS:
            r = best[(program, conv)]
            lines.append(f"| {conv} | {TITLES[program]} | {r['forward_ms']:.2f} | "
                         f"{r['backward_ms']:.2f} | {r['step_ms']:.2f} | {r['gflops']:.1f} | "
                         f"{100 * r['gflops'] / ceiling:.0f}% |")
            ms, mflop = totals.get(program, (0.0, 0.0))
            totals[program] = (ms + r["step_ms"], mflop + r["mflop_per_step"])
    for program in PROGRAMS:
        ms, mflop = totals[program]
        gflops = mflop / ms
        lines.append(f"| both | {TITLES[program]} |  |  | {ms:.2f} | {gflops:.1f} | "
                     f"{100 * gflops / ceiling:.0f}% |")
    faster = min(totals[p][0] for p in PROGRAMS if p != "nabla")
    lines += ["", f"nabla's step over both convs takes {totals['nabla'][0]:.2f} ms: "
              f"{faster / totals['nabla'][0]:.2f}x the speed of the faster PyTorch.", "",
              "Max pooling, maxpool2d(2) on each conv's output (pool1: 64x32x28x28, pool2: "
              "64x64x14x14), input gradient included:", "",
              "| pool | program | forward ms | backward ms | step ms |", "|---|---|---:|---:|---:|"]
    for op in pools:
        for program in PROGRAMS:
            r = best[(program, op)]
            lines.append(f"| {op} | {TITLES[program]} | {r['forward_ms']:.2f} | "
                         f"{r['backward_ms']:.2f} | {r['step_ms']:.2f} |")
    lines.append("")
    return "\n".join(lines)


def benchmark(args, scratch):
    exe = compile_ceiling(scratch)
    coretype, kernel_note, _ = choose_kernel(exe, args.threads)
    envs = program_environments(coretype)
    loads = [os.getloadavg()[0]]
    ceilings = [measure_ceiling(exe, args.threads, envs["nabla"])]
    log(f"sgemm ceiling at the start: {ceilings[0]['gflops']:.1f} GFLOP/s")
    rounds = []
    for r in range(args.rounds):
        log(f"round {r + 1} of {args.rounds}")
        rounds.append(run_round(args, envs))
    ceilings.append(measure_ceiling(exe, args.threads, envs["nabla"]))
    loads.append(os.getloadavg()[0])
    log(f"sgemm ceiling at the end: {ceilings[1]['gflops']:.1f} GFLOP/s")
    return report(args, machine_description(args, ceilings[0]), kernel_note, ceilings,
                  best_rounds(rounds), loads)


def main():
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        with tempfile.TemporaryDirectory(prefix="nabla-conv-bench-") as scratch:
            text = benchmark(args, scratch)
    except BenchError as e:
        log(f"bench: {e}")
        return 1
    print(text)
    with open(args.out, "w") as f:
        f.write(text)
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
