#!/usr/bin/env python3
"""PyTorch twin of benchmarks/bench_mlp.c.

Times one full training step of a 784-1024-1024-10 MLP (ReLU, CrossEntropyLoss,
SGD lr 0.01 without momentum, zero_grad(set_to_none=False) as Synapse keeps its
gradient buffers): zero_grad, forward, backward, optimizer step, on data fed
once; and SGEMM 1024^3 / 4096^3 through torch.mm. Warm-up, then a wall clock
around each step (torch.cuda.synchronize before reading it on a GPU); median and
min of the per-iteration times. Prints a table, then one JSON object per line
({"bench":"mlp_step","impl":"pytorch",...}); --json prints only the JSON.

    bench_mlp.py [--device cpu|cuda[:N]] [--warmup N] [--iters N] [--gemm-iters N]
                 [--batch N] [--only mlp|sgemm] [--threads N] [--json]
"""
import argparse
import json
import math
import os
import statistics
import sys
import time
import warnings

# PyPI's torch warns at import when numpy is absent; this benchmark needs no numpy
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
try:
    import torch
except ImportError as e:  # the caller (run_cpu.sh) reports this
    print(f"bench_mlp.py: PyTorch is not installed: {e}", file=sys.stderr)
    sys.exit(3)

IN_F, H1, H2, OUT_F = 784, 1024, 1024, 10


def mlp_flops(batch):
    """3 x forward; forward = 2B(784*1024 + 1024*1024 + 1024*10)."""
    return 3.0 * 2.0 * batch * (IN_F * H1 + H1 * H2 + H2 * OUT_F)


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def build(dev, seed=1):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(IN_F, H1), torch.nn.ReLU(),
        torch.nn.Linear(H1, H2), torch.nn.ReLU(),
        torch.nn.Linear(H2, OUT_F)).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.0)
    return model, torch.nn.CrossEntropyLoss(), opt


def data(dev, batch, seed=2):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(batch, IN_F, generator=g) * 2 - 1).to(dev)
    y = torch.randint(0, OUT_F, (batch,), generator=g).to(dev)
    return x, y


def step(model, loss_fn, opt, x, y):
    opt.zero_grad(set_to_none=False)
    loss = loss_fn(model(x), y)
    loss.backward()
    opt.step()
    return loss


def timed(fn, dev, warmup, iters):
    for _ in range(warmup):
        fn()
    sync(dev)
    t = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        sync(dev)
        t.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(t), min(t)


def verify(dev):
    """torch.mm against a double loop on 33x65x17; the loss falls over 5 steps."""
    g = torch.Generator().manual_seed(3)
    a = torch.rand(33, 65, generator=g) * 2 - 1
    b = torch.rand(65, 17, generator=g) * 2 - 1
    c = torch.mm(a.to(dev), b.to(dev)).cpu().double()
    ref = a.double() @ b.double()
    err = ((c - ref).abs().max() / ref.abs().max()).item()
    if not err <= (1e-5 if dev.type == "cpu" else 2e-3):
        return False, f"torch.mm 33x65x17: relative error {err:.3e}"
    model, loss_fn, opt = build(dev, seed=42)
    x, y = data(dev, 64, seed=7)
    losses = [step(model, loss_fn, opt, x, y).item() for _ in range(5)]
    if not all(math.isfinite(v) for v in losses) or not losses[-1] < losses[0]:
        return False, f"MLP loss did not fall: {losses}"
    return True, f"mm rel err {err:.2e} ok; MLP loss " + " ".join(f"{v:.4f}" for v in losses) + " ok"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--gemm-iters", type=int, default=0, help="0: 10/3 on the CPU (1024/4096), 50/20 on a GPU")
    ap.add_argument("--batch", type=int, default=0, help="one batch size (default: 128 and 1024)")
    ap.add_argument("--only", choices=["mlp", "sgemm"])
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (default: os.cpu_count())")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    try:
        dev = torch.device(args.device)
    except RuntimeError as e:
        print(f"bench_mlp.py: bad device '{args.device}': {e}", file=sys.stderr)
        return 2
    if dev.type == "cuda":
        if not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count():
            print(f"bench_mlp.py: device {args.device} is not available "
                  f"({torch.cuda.device_count()} CUDA device(s) visible to PyTorch {torch.__version__})", file=sys.stderr)
            return 2
        if dev.index is None:
            dev = torch.device("cuda", 0)
        # fp32 as Synapse: no TF32 in matmuls
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    elif dev.type != "cpu":
        print(f"bench_mlp.py: unsupported device '{args.device}' (cpu or cuda[:N])", file=sys.stderr)
        return 2
    threads = args.threads or os.cpu_count()
    torch.set_num_threads(threads)
    dev_name = "cpu" if dev.type == "cpu" else f"cuda:{dev.index}"
    env = {k.lower(): os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}

    ok, msg = verify(dev)
    if not ok:
        print(f"bench_mlp.py: VERIFY FAILED on {dev_name}: {msg}", file=sys.stderr)
        return 1
    rows, lines = [], []

    def emit(obj):
        obj.update(env)
        line = json.dumps(obj)
        if args.json:
            print(line, flush=True)
        else:
            lines.append(line)

    if not args.json:
        what = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
        print(f"PyTorch {torch.__version__} bench_mlp.py on {dev_name} ({what})")
        print(f"threads: torch.get_num_threads() = {torch.get_num_threads()} (set to {threads}); "
              f"interop {torch.get_num_interop_threads()}; MKL-DNN {torch.backends.mkldnn.is_available()}")
        print("env: " + " ".join(f"{k}={os.environ.get(k, '(unset)')}" for k in
                                 ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS")))
        print(f"verify: {msg}\n")
        print(f"{'bench':<10} {'case':<26} {'iters':>5} {'median ms':>11} {'min ms':>10} {'GFLOP/s':>11} {'FLOPs':>12}")

    def row(bench, case, iters, med, mn, flops):
        if not args.json:
            print(f"{bench:<10} {case:<26} {iters:5d} {med:11.3f} {mn:10.3f} {flops / (med * 1e-3) * 1e-9:11.1f} {flops:12.3e}",
                  flush=True)

    if args.only in (None, "mlp"):
        for batch in ([args.batch] if args.batch else [128, 1024]):
            model, loss_fn, opt = build(dev)
            x, y = data(dev, batch)
            med, mn = timed(lambda: step(model, loss_fn, opt, x, y), dev, args.warmup, args.iters)
            loss = loss_fn(model(x), y).item()
            if not math.isfinite(loss):
                print(f"bench_mlp.py: the loss became {loss} during timing (batch {batch})", file=sys.stderr)
                return 1
            flops = mlp_flops(batch)
            row("mlp_step", f"batch {batch}", args.iters, med, mn, flops)
            emit({"bench": "mlp_step", "impl": "pytorch", "device": dev_name, "batch": batch, "iters": args.iters,
                  "warmup": args.warmup, "median_ms": round(med, 4), "min_ms": round(mn, 4), "flops": flops,
                  "gflops": round(flops / (med * 1e-3) * 1e-9, 2), "threads": torch.get_num_threads(),
                  "final_loss": round(loss, 5), "torch": torch.__version__})

    if args.only in (None, "sgemm"):
        cpu = dev.type == "cpu"
        for n in (1024, 4096):
            iters = args.gemm_iters or ((3 if n >= 4096 else 10) if cpu else (20 if n >= 4096 else 50))
            warmup = min(args.warmup, 1) if cpu and n >= 4096 else args.warmup
            g = torch.Generator().manual_seed(n)
            a = (torch.rand(n, n, generator=g) * 2 - 1).to(dev)
            b = (torch.rand(n, n, generator=g) * 2 - 1).to(dev)
            c = torch.empty(n, n, device=dev)
            med, mn = timed(lambda: torch.mm(a, b, out=c), dev, warmup, iters)
            # sampled check against float64
            idx = torch.randint(0, n, (2, 64), generator=g)
            ref = (a.cpu().double()[idx[0]] * b.cpu().double()[:, idx[1]].t()).sum(1)
            mag = (a.cpu().double()[idx[0]] * b.cpu().double()[:, idx[1]].t()).abs().sum(1)
            err = ((c.cpu().double()[idx[0], idx[1]] - ref).abs() / mag).max().item()
            flops = 2.0 * n * n * n
            row("sgemm", f"{n}^3 (torch.mm)", iters, med, mn, flops)
            emit({"bench": "sgemm", "impl": "pytorch", "path": "torch.mm", "device": dev_name, "m": n, "n": n, "k": n,
                  "iters": iters, "warmup": warmup, "median_ms": round(med, 4), "min_ms": round(mn, 4),
                  "flops": flops, "gflops": round(flops / (med * 1e-3) * 1e-9, 2),
                  "threads": torch.get_num_threads(), "max_rel_err": float(f"{err:.2e}"), "torch": torch.__version__})

    if not args.json:
        print()
        for line in lines:
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
