#!/usr/bin/env python3
"""PyTorch twin of `synapse charlm`: the same corpus (Debian's fortunes, every
file but art/ascii-art/off, sorted by name, concatenated), the same split
(first 90% train, last 10% validation), the same model (byte embedding,
stacked LSTM/GRU, linear decoder), the same truncated BPTT (the text cut into
`batch` contiguous streams, `seq` bytes per step, the state carried detached
and reset when the streams wrap), Adam and gradient-norm clipping; the same
validation (bits per byte over the validation text read as `batch` streams).
The last stdout line is one JSON object like synapse's.

  python3 benchmarks/pytorch/charlm.py [--device cuda] [--steps 3000] ...
"""
import argparse
import json
import math
import os
import sys
import time

import torch


def load_fortunes(d):
    names = sorted(n for n in os.listdir(d)
                   if not n.startswith(".") and not n.endswith(".dat") and not n.endswith(".u8")
                   and n not in ("art", "ascii-art", "off"))
    return b"".join(open(os.path.join(d, n), "rb").read() for n in names)


class CharLM(torch.nn.Module):
    def __init__(self, cell, embed, hidden, layers, dropout):
        super().__init__()
        self.embedding = torch.nn.Embedding(256, embed)
        rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]
        self.rnn = rnn(embed, hidden, layers, batch_first=True, dropout=dropout)
        self.decoder = torch.nn.Linear(hidden, 256)

    def forward(self, x, state):
        h, state = self.rnn(self.embedding(x), state)
        return self.decoder(h.reshape(-1, h.shape[-1])), state


def detach(state):
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def streams(text, batch, device):
    ls = (len(text) - 1) // batch
    t = torch.tensor(list(text[: batch * ls + 1]), dtype=torch.long)
    x = torch.stack([t[b * ls: b * ls + ls] for b in range(batch)]).to(device)
    y = torch.stack([t[b * ls + 1: b * ls + ls + 1] for b in range(batch)]).to(device)
    return x, y, ls


@torch.no_grad()
def bits_per_byte(model, text, batch, seq, device):
    model.eval()
    x, y, ls = streams(text, batch, device)
    seq = min(seq, ls)
    state, total, windows = None, 0.0, ls // seq
    for k in range(windows):
        logits, state = model(x[:, k * seq:(k + 1) * seq], state)
        total += torch.nn.functional.cross_entropy(logits, y[:, k * seq:(k + 1) * seq].reshape(-1)).item()
    model.train()
    return total / windows / math.log(2)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--fortunes-dir", default="/usr/share/games/fortunes")
    p.add_argument("--cell", default="lstm")
    p.add_argument("--embed", type=int, default=128)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--clip", type=float, default=5.0)
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--eval-bytes", type=int, default=0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    torch.manual_seed(a.seed)
    dev = torch.device(a.device)
    text = load_fortunes(a.fortunes_dir)
    n_train = len(text) - len(text) // 10
    train, val = text[:n_train], text[n_train:]
    if a.eval_bytes > 0:
        val = val[: a.eval_bytes]
    model = CharLM(a.cell, a.embed, a.hidden, a.layers, a.dropout).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    x, y, ls = streams(train, a.batch_size, dev)
    windows = ls // a.seq
    print(f"pytorch charlm: {len(text)} bytes, {a.cell} {a.layers} x {a.hidden}, batch {a.batch_size} x seq {a.seq}, "
          f"{a.steps} steps on {a.device} (torch {torch.__version__})", file=sys.stderr)
    t0, state, run, n_run, val_bpb, train_bpb = time.time(), None, 0.0, 0, float("nan"), float("nan")
    for step in range(a.steps):
        k = step % windows
        if k == 0:
            state = None
        logits, state = model(x[:, k * a.seq:(k + 1) * a.seq], state)
        state = detach(state)
        loss = torch.nn.functional.cross_entropy(logits, y[:, k * a.seq:(k + 1) * a.seq].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if a.clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
        run += loss.item()
        n_run += 1
        last = step + 1 == a.steps
        if last or (a.eval_every > 0 and (step + 1) % a.eval_every == 0):
            train_bpb = run / n_run / math.log(2)
            run, n_run = 0.0, 0
            val_bpb = bits_per_byte(model, val, a.batch_size, a.seq, dev)
            print(f"step {step + 1:6d}  train {train_bpb:.3f} bits/byte  validation {val_bpb:.3f} bits/byte  "
                  f"{time.time() - t0:.1f} s", file=sys.stderr, flush=True)
    print(json.dumps({"model": f"pytorch charlm {a.cell} {a.layers}x{a.hidden} embed {a.embed}", "device": a.device,
                      "steps": a.steps, "train_bpb": round(train_bpb, 4), "val_bpb": round(val_bpb, 4),
                      "seconds": round(time.time() - t0, 2), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
