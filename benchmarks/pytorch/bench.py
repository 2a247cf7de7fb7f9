#!/usr/bin/env python3
"""PyTorch twins of `synapse bench`'s workloads (include/synapse/bench.h,
src/bench/): the same shapes, batch sizes (and the same reductions on the CPU
and with --quick), initialisation where it matters, optimizers and
verification, timed the same way (warm-up, then each step between two CUDA events on a GPU,
or the wall clock on the CPU; median, min, p90, max). Writes
one JSON object per workload in synapse-bench/1's schema (impl "pytorch").

    bench.py [--device cpu|cuda[:N]] [--workload a,b,...] [--iters N] [--warmup N]
             [--quick] [--threads N] [--json-out FILE]

Differences from Synapse's side, by design of each framework: the DCGAN's G
step reuses the D step's G(z) (PyTorch's DCGAN example) where Synapse runs G
again; noise and real batches are made on the host and copied, as in Synapse.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time
import warnings

warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:
    print(f"bench.py: PyTorch is not installed: {e}", file=sys.stderr)
    sys.exit(3)

VSTEPS = 6


# ---- the harness -------------------------------------------------------------------------

def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


class Clock:
    """CUDA events on the device's current stream (the GPU's time from mark to
    mark), the wall clock on the CPU: as syn_device_timer times Synapse."""

    def __init__(self, dev):
        self.cuda = dev.type == "cuda"
        if self.cuda:
            self.a = torch.cuda.Event(enable_timing=True)
            self.b = torch.cuda.Event(enable_timing=True)

    def start(self):
        if self.cuda:
            self.a.record()
        else:
            self.t0 = time.perf_counter()

    def stop_ms(self):
        if self.cuda:
            self.b.record()
            self.b.synchronize()
            return self.a.elapsed_time(self.b)
        return (time.perf_counter() - self.t0) * 1e3


def host_peak_reset():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def host_peak():
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def cpu_ticks():
    """(busy jiffies of the whole machine, jiffies of this process) or None."""
    try:
        f = open("/proc/stat").readline().split()
        busy = sum(int(v) for i, v in enumerate(f[1:9]) if i not in (3, 4))  # all but idle, iowait
        st = open("/proc/self/stat").read()
        rest = st[st.rindex(")") + 2:].split()
        return busy, int(rest[11]) + int(rest[12])
    except (OSError, ValueError, IndexError):
        return None


def machine(dev):
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    blas = "unknown"
    for tok in torch.__config__.show().replace(",", " ").split():
        if tok.startswith("BLAS_INFO="):
            blas = tok.split("=", 1)[1]
    gpu = None
    if dev.type == "cuda":
        p = torch.cuda.get_device_properties(dev)
        gpu = (f"{p.name}, {p.total_memory / 2**30:.0f} GiB, CC {p.major}.{p.minor}, CUDA {torch.version.cuda}, "
               f"cuDNN {torch.backends.cudnn.version()}")
    la = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"cpu": cpu, "cores": os.cpu_count(), "threads": torch.get_num_threads(), "gpu": gpu, "synapse": None,
            "blas": blas, "blas_threads": torch.get_num_threads(),
            "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE") or None,
            "openblas_l2_size": os.environ.get("OPENBLAS_L2_SIZE") or None,
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "loadavg1": la, "torch": torch.__version__}


def result(name, kind, dev):
    return {"schema": "synapse-bench/1", "impl": "pytorch", "workload": name, "kind": kind, "device": dev_name(dev),
            "status": "ok", "config": "", "reduced": False, "note": "", "verify": "", "batch": 0, "warmup": 0,
            "iters": 0, "median_ms": None, "min_ms": None, "p90_ms": None, "max_ms": None, "mean_ms": None,
            "spread_pct": None, "items_per_step": None, "item": "", "items_per_s": None, "rate": None,
            "rate_unit": "", "ceiling": None, "ceiling_what": "", "final_loss": None, "host_peak_bytes": None,
            "device_peak_bytes": None, "others_cpu_pct": None}


def dev_name(dev):
    return "cpu" if dev.type == "cpu" else f"cuda:{dev.index or 0}"


class Workload:
    """setup(dev, quick, r) -> state; verify(state, dev, quick, r) -> bool; step(state); finish(state, r)."""
    kind = "op"
    defaults = (2, 10, 5, 50)  # warmup cpu, iters cpu, warmup gpu, iters gpu

    def finish(self, s, r):
        pass


def run(w, dev, args):
    r = result(w.name, w.kind, dev)
    gpu = dev.type == "cuda"
    r["warmup"] = args.warmup if args.warmup >= 0 else (w.defaults[2] if gpu else w.defaults[0])
    r["iters"] = args.iters if args.iters > 0 else (w.defaults[3] if gpu else w.defaults[1])
    if args.quick:
        if args.warmup < 0:
            r["warmup"] = 1
        if args.iters <= 0:
            r["iters"] = 2
    hwm = host_peak_reset()
    t0_all, ticks0 = time.perf_counter(), cpu_ticks()
    if getattr(w, "gpu_only", False) and not gpu:
        r["status"], r["note"] = "skipped", "CUDA graphs need a GPU"
        return r
    if gpu:
        sync(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
    try:
        s = w.setup(dev, args.quick, r)
        if not w.verify(s, dev, args.quick, r):
            r["status"] = "verify_failed"
        else:
            for _ in range(r["warmup"]):
                w.step(s)
            sync(dev)
            t, clock = [], Clock(dev)
            for _ in range(r["iters"]):
                clock.start()
                w.step(s)
                t.append(clock.stop_ms())
            ts = sorted(t)
            n = len(ts)
            r["median_ms"] = statistics.median(ts)
            r["min_ms"], r["max_ms"] = ts[0], ts[-1]
            r["p90_ms"] = ts[max(0, math.ceil(0.9 * n) - 1)]
            r["mean_ms"] = sum(ts) / n
            r["spread_pct"] = (r["p90_ms"] - r["min_ms"]) / r["median_ms"] * 100
            r["items_per_s"] = r["items_per_step"] / (r["median_ms"] * 1e-3)
            r["rate"] = r["items_per_s"] * (1e-9 if r["rate_unit"] in ("GFLOP/s", "GB/s") else 1)
            w.finish(s, r)
            if r["final_loss"] is not None and not math.isfinite(r["final_loss"]):
                r["status"] = "error"
                r["note"] = f"the loss became {r['final_loss']} during timing"
                r["final_loss"] = None
    except RuntimeError as e:  # out of memory, unsupported ...
        r["status"] = "error"
        r["note"] = str(e).splitlines()[0][:240]
    if gpu:
        r["device_peak_bytes"] = max(0, torch.cuda.max_memory_allocated(dev) - base)
    r["host_peak_bytes"] = host_peak() if hwm else None
    ticks1, wall = cpu_ticks(), time.perf_counter() - t0_all
    if ticks0 and ticks1 and wall > 0.05:
        others = ((ticks1[0] - ticks0[0]) - (ticks1[1] - ticks0[1])) / os.sysconf("SC_CLK_TCK")
        r["others_cpu_pct"] = max(0.0, 100.0 * others / (wall * os.cpu_count()))
    return r


def rel_err(got, ref):
    return ((got.double() - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()


def gen(seed):
    return torch.Generator().manual_seed(seed)


# ---- op level ------------------------------------------------------------------------------

class Sgemm(Workload):
    def __init__(self, n):
        self.name, self.n = f"sgemm_{n}", n
        self.defaults = (2, 10, 5, 50) if n <= 1024 else (1, 3, 3, 20)

    def setup(self, dev, quick, r):
        n = self.n // 8 if quick else self.n
        if quick:
            r["reduced"], r["note"] = True, f"--quick: {n}^3 instead of {self.n}^3"
        g = gen(n)
        a = (torch.rand(n, n, generator=g) * 2 - 1).to(dev)
        b = (torch.rand(n, n, generator=g) * 2 - 1).to(dev)
        r["config"] = f"C = A B, {n}x{n} fp32, torch.mm"
        r["items_per_step"], r["item"], r["rate_unit"] = 2.0 * n ** 3, "FLOP", "GFLOP/s"
        return {"a": a, "b": b, "c": torch.empty(n, n, device=dev), "n": n}

    def verify(self, s, dev, quick, r):
        torch.mm(s["a"], s["b"], out=s["c"])
        a, b, c = s["a"].cpu().double(), s["b"].cpu().double(), s["c"].cpu().double()
        g = gen(77)
        i = torch.randint(0, s["n"], (64,), generator=g)
        j = torch.randint(0, s["n"], (64,), generator=g)
        terms = a[i] * b[:, j].t()
        err = ((c[i, j] - terms.sum(1)).abs() / terms.abs().sum(1)).max().item()
        tol = 1e-5 if dev.type == "cpu" else 2e-3
        r["verify"] = f"64 sampled entries vs double: max rel err {err:.2e} (tol {tol:.0e})"
        return err <= tol

    def step(self, s):
        torch.mm(s["a"], s["b"], out=s["c"])


class Conv(Workload):
    defaults = (1, 5, 3, 30)

    def __init__(self, c, h):
        self.name, self.c, self.h = f"conv3x3_{c}x{h}", c, h

    def build(self, dev, n):
        g = gen(11)
        x = (torch.rand(n, self.c, self.h, self.h, generator=g) * 2 - 1).to(dev).requires_grad_()
        bound = 1 / math.sqrt(self.c * 9)
        w = ((torch.rand(self.c, self.c, 3, 3, generator=g) * 2 - 1) * bound).to(dev).requires_grad_()
        return {"x": x, "w": w}

    def setup(self, dev, quick, r):
        n = 2 if quick else (256 if dev.type == "cuda" else 32)
        if n != 256:
            r["reduced"] = True
            r["note"] = "--quick: batch 2 instead of 256" if quick else f"CPU: batch {n} instead of 256"
        r["config"] = f"conv3x3 {self.c}->{self.c} on {self.h}x{self.h}, stride 1 pad 1, batch {n}: fwd + dx + dw"
        r["batch"] = n
        r["items_per_step"] = 3.0 * 2.0 * n * self.c * self.c * 9.0 * self.h * self.h
        r["item"], r["rate_unit"] = "FLOP", "GFLOP/s"
        return self.build(dev, n)

    def step(self, s):
        F.conv2d(s["x"], s["w"], padding=1).sum().backward()

    def verify(self, s, dev, quick, r):
        v = self.build(dev, 1)
        y = F.conv2d(v["x"], v["w"], padding=1)
        y.sum().backward()
        xd = v["x"].detach().cpu().double().requires_grad_()
        wd = v["w"].detach().cpu().double().requires_grad_()
        yd = F.conv2d(xd, wd, padding=1)
        yd.sum().backward()
        ey, edx, edw = rel_err(y.detach().cpu(), yd.detach()), rel_err(v["x"].grad.cpu(), xd.grad), \
            rel_err(v["w"].grad.cpu(), wd.grad)
        tol = 1e-4 if dev.type == "cpu" else 2e-3
        r["verify"] = f"batch-1 layer vs float64: y {ey:.1e}, dx {edx:.1e}, dw {edw:.1e} (tol {tol:.0e})"
        return max(ey, edx, edw) <= tol


class Stream(Workload):
    def __init__(self, op):
        self.op, self.name = op, f"{op}_16m"

    def setup(self, dev, quick, r):
        n = 1 << (20 if quick else 24)
        if quick:
            r["reduced"], r["note"] = True, "--quick: 1M floats instead of 16M"
        g = gen(0xADD5)
        a = torch.rand(n, generator=g) * 2 - 1
        if self.op == "sum":
            a = a * 0.5 + 0.5
        b = torch.rand(n, generator=g) * 2 - 1
        r["config"] = f"y = sum(a), a: {n} fp32" if self.op == "sum" else f"c = a + b, {n} fp32 each"
        r["items_per_step"] = (1.0 if self.op == "sum" else 3.0) * 4.0 * n
        r["item"], r["rate_unit"] = "bytes", "GB/s"
        return {"a": a.to(dev), "b": b.to(dev), "c": torch.empty(n, device=dev), "s": torch.empty((), device=dev),
                "n": n, "dev": dev, "ha": a, "hb": b}

    def step(self, s):
        if self.op == "sum":
            torch.sum(s["a"], dim=0, out=s["s"])
        else:
            torch.add(s["a"], s["b"], out=s["c"])

    def verify(self, s, dev, quick, r):
        self.step(s)
        if self.op == "sum":
            got, ref = s["s"].item(), s["ha"].double().sum().item()
            e = abs(got - ref) / ref
            r["verify"] = f"sum {got:.6g} vs double {ref:.6g}: rel err {e:.1e} (tol 1e-05)"
            return e <= 1e-5
        bad = (s["c"].cpu() != s["ha"] + s["hb"]).sum().item()
        r["verify"] = f"all {s['n']} entries vs a + b on the host: {bad} differ"
        return bad == 0

    def finish(self, s, r):
        dst = torch.empty_like(s["a"])
        dst.copy_(s["a"])
        t, clock = [], Clock(s["dev"])
        for _ in range(5):
            clock.start()
            dst.copy_(s["a"])
            t.append(clock.stop_ms())
        r["ceiling"] = 8.0 * s["n"] / (sorted(t)[2] * 1e-3) * 1e-9
        r["ceiling_what"] = f"device copy of {s['n']} floats (r+w)"


# ---- training steps ----------------------------------------------------------------------

class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (self.down(x) if self.down is not None else x))


def resnet18_cifar(classes=10):
    layers = [nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU()]
    cin = 64
    for cout, stride in ((64, 1), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1)):
        layers.append(BasicBlock(cin, cout, stride))
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, classes)]
    return nn.Sequential(*layers)


def fmnist_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


class CharLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(256, 128)
        self.rnn = nn.LSTM(128, 512, 2, batch_first=True)
        self.decoder = nn.Linear(512, 256)

    def forward(self, x):
        h, _ = self.rnn(self.embedding(x))
        return self.decoder(h.reshape(-1, 512))


def dcgan_init(m):
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def dcgan64(nz=100, ngf=64, ndf=64, c=3):
    def up(cin, cout, k, s, p, last=False):
        conv = nn.ConvTranspose2d(cin, cout, k, s, p, bias=False)
        return [conv, nn.Tanh()] if last else [conv, nn.BatchNorm2d(cout), nn.ReLU()]

    def down(cin, cout, bn=True):
        return [nn.Conv2d(cin, cout, 4, 2, 1, bias=False)] + ([nn.BatchNorm2d(cout)] if bn else []) + \
            [nn.LeakyReLU(0.2)]

    G = nn.Sequential(nn.Unflatten(1, (nz, 1, 1)), *up(nz, 8 * ngf, 4, 1, 0), *up(8 * ngf, 4 * ngf, 4, 2, 1),
                      *up(4 * ngf, 2 * ngf, 4, 2, 1), *up(2 * ngf, ngf, 4, 2, 1), *up(ngf, c, 4, 2, 1, last=True))
    D = nn.Sequential(*down(c, ndf, bn=False), *down(ndf, 2 * ndf), *down(2 * ndf, 4 * ndf), *down(4 * ndf, 8 * ndf),
                      nn.Conv2d(8 * ndf, 1, 4, 1, 0, bias=False), nn.Flatten())
    G.apply(dcgan_init)
    D.apply(dcgan_init)
    return G, D


class Train(Workload):
    kind = "train"

    def __init__(self, name, net, bgpu, bcpu, bquick, bverify, seq=(0, 0, 0, 0), must_fall=True, what="",
                 defaults=(2, 10, 10, 100)):
        self.name, self.net, self.bgpu, self.bcpu, self.bquick, self.bverify = name, net, bgpu, bcpu, bquick, bverify
        self.seq, self.must_fall, self.what, self.defaults = seq, must_fall, what, defaults

    def build(self, dev, B, T):
        torch.manual_seed(1)
        s = {"dev": dev, "B": B, "T": T, "clip": 0.0}
        g = gen(0xDA7A)
        if self.net == "dcgan64":
            G, D = dcgan64()
            s["G"], s["D"] = G.to(dev), D.to(dev)
            s["optG"] = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
            s["optD"] = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
            s["real"] = torch.rand(B, 3, 64, 64, generator=g) * 2 - 1  # host, copied each D step
            s["ones"] = torch.ones(B, 1, device=dev)
            s["zeros"] = torch.zeros(B, 1, device=dev)
            s["noise_gen"] = gen(1)  # host noise, copied: as Synapse, and the same on every device
            return s
        if self.net == "mlp":
            m = nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))
            x = torch.rand(B, 784, generator=g) * 2 - 1
            opt = lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.0)
        elif self.net == "cnn":
            m = fmnist_cnn()
            x = torch.rand(B, 1, 28, 28, generator=g) * 2 - 1
            opt = lambda p: torch.optim.Adam(p, lr=1e-3)
        elif self.net == "resnet18":
            m = resnet18_cifar()
            x = torch.rand(B, 3, 32, 32, generator=g) * 2 - 1
            opt = lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=5e-4)
        else:  # charlm
            m = CharLM()
            x = torch.randint(0, 256, (B, T), generator=g)
            opt = lambda p: torch.optim.Adam(p, lr=2e-3)
            s["clip"] = 5.0
        if self.net == "charlm":
            y = torch.roll(x.reshape(-1), -1)
        else:
            y = torch.randint(0, 10, (B,), generator=g)
        s["m"] = m.to(dev)
        s["opt"] = opt(s["m"].parameters())
        s["x"], s["y"] = x.to(dev), y.to(dev)
        return s

    def step_loss(self, s):
        if "G" in s:
            G, D, dev = s["G"], s["D"], s["dev"]
            real = s["real"].to(dev, non_blocking=False)
            z = torch.randn(s["B"], 100, generator=s["noise_gen"]).to(dev)
            D.zero_grad(set_to_none=False)
            fake = G(z)
            d_loss = F.binary_cross_entropy_with_logits(D(real), s["ones"]) + \
                F.binary_cross_entropy_with_logits(D(fake.detach()), s["zeros"])
            d_loss.backward()
            s["optD"].step()
            G.zero_grad(set_to_none=False)
            g_loss = F.binary_cross_entropy_with_logits(D(fake), s["ones"])
            g_loss.backward()
            s["optG"].step()
            return d_loss, g_loss
        s["opt"].zero_grad(set_to_none=False)
        loss = F.cross_entropy(s["m"](s["x"]), s["y"])
        loss.backward()
        if s["clip"] > 0:
            torch.nn.utils.clip_grad_norm_(s["m"].parameters(), s["clip"])
        s["opt"].step()
        s["last"] = loss
        return loss, None

    def step(self, s):
        s["last"] = self.step_loss(s)[0]

    def setup(self, dev, quick, r):
        B, T = self.bgpu, self.seq[0]
        if quick:
            B, T = self.bquick, self.seq[2]
            r["reduced"] = (B, T) != (self.bgpu, self.seq[0])
            if r["reduced"]:
                r["note"] = "--quick: smaller batch/sequence"
        elif dev.type == "cpu" and (self.bcpu, self.seq[1]) != (B, T):
            r["reduced"] = True
            r["note"] = (f"CPU: batch {self.bcpu} seq {self.seq[1]} instead of batch {B} seq {T}" if self.net == "charlm"
                         else f"CPU: batch {self.bcpu} instead of {B}")
            B, T = self.bcpu, self.seq[1]
        r["config"] = f"{self.what}, batch {B}" + (f", seq {T}" if self.net == "charlm" else "")
        r["batch"] = B
        r["items_per_step"] = float(B * T if self.net == "charlm" else B)
        r["item"] = "tokens" if self.net == "charlm" else "samples"
        r["rate_unit"] = "tokens/s" if self.net == "charlm" else "samples/s"
        return self.build(dev, B, T)

    def losses(self, dev, quick):
        B = min(self.bquick, self.bverify) if quick else self.bverify
        s = self.build(dev, B, self.seq[3])
        out = []
        for _ in range(VSTEPS):
            a, b = self.step_loss(s)
            out.append((a.item(), b.item() if b is not None else 0.0))
        return out

    def verify(self, s, dev, quick, r):
        l = self.losses(dev, quick)
        r["verify"] = f"{VSTEPS} steps at a small batch: loss " + " ".join(f"{v[0]:.4f}" for v in l)
        if not all(math.isfinite(v[0]) and math.isfinite(v[1]) for v in l):
            r["verify"] += "; NOT FINITE"
            return False
        if self.must_fall and not l[-1][0] < l[0][0]:
            r["verify"] += "; did NOT fall"
            return False
        if dev.type == "cpu":
            r["verify"] += "; finite and falling" if self.must_fall else "; finite"
            return True
        ref = self.losses(torch.device("cpu"), quick)
        worst = max(abs(a[j] - b[j]) / max(abs(b[j]), 1e-3) for a, b in zip(l, ref) for j in (0, 1))
        r["verify"] += f"; vs the CPU's: max rel diff {worst:.1e} (tol 5e-3)"
        return worst <= 5e-3

    def finish(self, s, r):
        r["final_loss"] = s["last"].item()


class GraphTrain(Train):
    """The whole step (zero_grad, forward, backward, optimizer) captured once
    with torch.cuda.graph and replayed: ANCHORS.md's "with CUDA graph" column.
    GPU only. Adam keeps its step counts on the device (capturable=True)."""
    gpu_only = True
    WARM = 3  # eager steps on a side stream before the capture, as PyTorch's docs ask

    def build(self, dev, B, T):
        if dev.type == "cpu":  # the reference for verify: the same steps without a graph
            return super().build(dev, B, T)
        s = super().build(dev, B, T)
        if self.net in ("cnn", "charlm"):
            s["opt"] = torch.optim.Adam(s["m"].parameters(), lr=1e-3 if self.net == "cnn" else 2e-3, capturable=True)
        side = torch.cuda.Stream(dev)
        side.wait_stream(torch.cuda.current_stream(dev))
        with torch.cuda.stream(side):
            for _ in range(self.WARM):
                Train.step_loss(self, s)
        torch.cuda.current_stream(dev).wait_stream(side)
        s["graph"] = torch.cuda.CUDAGraph()
        with torch.cuda.graph(s["graph"]):
            s["static_loss"] = Train.step_loss(self, s)[0]
        return s

    def step_loss(self, s):
        if "graph" not in s:
            return Train.step_loss(self, s)
        s["graph"].replay()
        return s["static_loss"], None

    def losses(self, dev, quick):
        if dev.type != "cpu":
            return super().losses(dev, quick)
        B = min(self.bquick, self.bverify) if quick else self.bverify
        s = self.build(dev, B, self.seq[3])
        for _ in range(self.WARM):  # the graph's first replay is the step after its warm-up
            Train.step_loss(self, s)
        return [(l.item(), 0.0) for l, _ in (Train.step_loss(self, s) for _ in range(VSTEPS))]


WORKLOADS = [
    Sgemm(1024), Sgemm(4096), Conv(64, 32), Conv(256, 8), Stream("add"), Stream("sum"),
    Train("mlp_b128", "mlp", 128, 128, 128, 64, what="MLP 784-1024-1024-10 ReLU, SGD lr 0.01", defaults=(3, 20, 10, 100)),
    Train("mlp_b1024", "mlp", 1024, 1024, 128, 64, what="MLP 784-1024-1024-10 ReLU, SGD lr 0.01"),
    Train("cnn_fmnist", "cnn", 128, 128, 16, 32,
          what="Fashion-MNIST CNN 1x28x28 (2x conv3x3+BN+ReLU+maxpool, FC128, FC10), Adam 1e-3"),
    Train("resnet18_cifar", "resnet18", 256, 16, 2, 4, must_fall=False,
          what="ResNet-18 CIFAR 3x32x32, SGD lr 0.1 momentum 0.9 wd 5e-4", defaults=(1, 3, 3, 20)),
    Train("char_lstm", "charlm", 64, 16, 4, 4, seq=(128, 32, 8, 16),
          what="char-LSTM emb 128, 2x512 LSTM, decoder 256, Adam 2e-3, clip 5", defaults=(1, 5, 3, 20)),
    Train("dcgan64", "dcgan64", 128, 16, 2, 4, must_fall=False,
          what="DCGAN-64 (ngf=ndf=64, 3x64x64), one D + one G step, Adam 2e-4 b1 0.5", defaults=(1, 3, 3, 20)),
    GraphTrain("mlp_b128_graph", "mlp", 128, 128, 128, 64, what="MLP 784-1024-1024-10 ReLU, SGD lr 0.01, CUDA graph",
               defaults=(3, 20, 10, 100)),
    GraphTrain("mlp_b1024_graph", "mlp", 1024, 1024, 128, 64,
               what="MLP 784-1024-1024-10 ReLU, SGD lr 0.01, CUDA graph"),
    GraphTrain("cnn_fmnist_graph", "cnn", 128, 128, 16, 32,
               what="Fashion-MNIST CNN 1x28x28 (2x conv3x3+BN+ReLU+maxpool, FC128, FC10), Adam 1e-3, CUDA graph"),
    GraphTrain("char_lstm_graph", "charlm", 64, 16, 4, 4, seq=(128, 32, 8, 16),
               what="char-LSTM emb 128, 2x512 LSTM, decoder 256, Adam 2e-3, clip 5, CUDA graph", defaults=(1, 5, 3, 20)),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workload", default="", help="comma-separated names (default: all)")
    ap.add_argument("--iters", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=-1)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--json-out", default="", help="JSON lines to this file (default: stdout)")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    if args.list:
        for w in WORKLOADS:
            print(w.name)
        return 0
    dev = torch.device(args.device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            print(f"bench.py: no CUDA device visible to PyTorch {torch.__version__}", file=sys.stderr)
            return 2
        if dev.index is None:
            dev = torch.device("cuda", 0)
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 as Synapse's default
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
    if args.threads:
        torch.set_num_threads(args.threads)
    names = [n for n in args.workload.split(",") if n] or [w.name for w in WORKLOADS]
    known = {w.name: w for w in WORKLOADS}
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"bench.py: unknown workload(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    m = machine(dev)
    out = open(args.json_out, "w") if args.json_out else sys.stdout
    failed = 0
    for n in names:
        r = run(known[n], dev, args)
        r["machine"] = m
        failed += r["status"] not in ("ok", "skipped")
        med = f"{r['median_ms']:.3f} ms" if r["median_ms"] is not None else r["status"]
        print(f"bench.py: {n:<15} {r['device']:<7} {med}  ({r['verify']}{'; ' + r['note'] if r['note'] else ''})",
              file=sys.stderr, flush=True)
        out.write(json.dumps(r) + "\n")
        out.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
