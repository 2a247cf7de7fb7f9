#!/usr/bin/env python3
"""PyTorch twin of `synapse train models/fmnist_cnn.cfg`: the same network
(bench.py's fmnist_cnn: 2 x conv3x3 + batch norm + ReLU + max pool, dense 128,
dense 10), the same data (Debian's Fashion-MNIST, pixels / 255, standardised
by the training set's one mean and standard deviation), Adam, batch 128, the
training set reshuffled every epoch, and synapse's cosine schedule (from the
learning rate down to 0 over all steps, set before each step). It reports
each epoch's training time and the test accuracy; the last stdout line is one
JSON object like synapse's.

  python3 benchmarks/pytorch/fmnist_cnn.py [--epochs 10] [--threads 2] ...
"""
import argparse
import gzip
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from bench import fmnist_cnn


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(d, split):
    x = read_idx(os.path.join(d, f"{split}-images-idx3-ubyte.gz")).astype(np.float32) / 255.0
    y = read_idx(os.path.join(d, f"{split}-labels-idx1-ubyte.gz")).astype(np.int64)
    return torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y)


@torch.no_grad()
def accuracy(model, x, y, batch):
    model.eval()
    right = sum(int((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum()) for i in range(0, len(x), batch))
    model.train()
    return right / len(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("SYN_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--schedule", choices=("constant", "cosine"), default="cosine")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    dev = torch.device(args.device)
    try:
        xtr, ytr = load(args.data_dir, "train")
        xte, yte = load(args.data_dir, "t10k")
    except OSError as e:
        print(f"fmnist_cnn.py: cannot read Fashion-MNIST: {e}", file=sys.stderr)
        return 2
    mean, std = xtr.mean().item(), xtr.std().item()
    xtr, xte = ((xtr - mean) / std).to(dev), ((xte - mean) / std).to(dev)
    ytr, yte = ytr.to(dev), yte.to(dev)
    model = fmnist_cnn().to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    batches = math.ceil(len(xtr) / args.batch_size)
    total, step, train_s = args.epochs * batches, 0, 0.0
    gen = torch.Generator().manual_seed(args.seed)
    for epoch in range(1, args.epochs + 1):
        order = torch.randperm(len(xtr), generator=gen).to(dev)
        loss_sum, t0 = 0.0, time.perf_counter()
        for b in range(batches):
            idx = order[b * args.batch_size:(b + 1) * args.batch_size]
            if args.schedule == "cosine":
                for g in opt.param_groups:
                    g["lr"] = 0.5 * args.lr * (1.0 + math.cos(math.pi * step / total))
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
            step += 1
        if dev.type == "cuda":
            torch.cuda.synchronize()
        secs = time.perf_counter() - t0
        train_s += secs
        acc = accuracy(model, xte, yte, 1000)
        print(f"epoch {epoch}/{args.epochs}  loss {loss_sum / len(xtr):.4f}  test_acc {acc:.4f}  "
              f"{len(xtr) / secs:.0f} samples/s  {secs:.1f}s", flush=True)
    print(json.dumps({"model": "fmnist_cnn (PyTorch)", "device": str(dev), "torch": torch.__version__,
                      "threads": torch.get_num_threads(), "epochs": args.epochs,
                      "train_loss": round(loss_sum / len(xtr), 6), "test_accuracy": acc,
                      "seconds": round(train_s, 2), "samples_per_s": round(args.epochs * len(xtr) / train_s)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
