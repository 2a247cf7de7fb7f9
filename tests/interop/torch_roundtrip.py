"""PyTorch's half of tests/test_interop.c (torch_round_trip).

  torch_roundtrip.py export DIR   builds five small models with fixed seeds
      (Linear; Conv2d + BatchNorm2d in eval mode, its running statistics moved
      by three training passes; a grouped strided ConvTranspose2d; Embedding + LSTM + Linear; a 2-layer GRU),
      writes each state_dict to DIR/<case>.safetensors and its input and
      eval-mode output to DIR/<case>_io.safetensors ("x", "y").
  torch_roundtrip.py check DIR    loads DIR/<case>_syn.safetensors (Synapse's
      own parameters) strictly into fresh models, runs DIR/<case>_io's "x" and
      compares with Synapse's outputs, DIR/<case>_syn_y.safetensors ("y").
      Exits 1 on any mismatch.

The safetensors format is read and written here directly (8-byte
little-endian header length, JSON header, raw bytes), so the `safetensors`
package is not needed. Without PyTorch it prints why and exits with 77 (the
test then reports itself SKIPPED).
"""
import json
import struct
import sys

try:
    import torch
    from torch import nn
except ImportError as e:
    print(f"PyTorch not importable ({sys.executable}: {e})")
    sys.exit(77)

DTYPES = {"F32": torch.float32, "I64": torch.int64, "I32": torch.int32}
NAMES = {v: k for k, v in DTYPES.items()}


def st_save(path, tensors):
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        raw = bytes(t.reshape(-1).view(torch.uint8).tolist())
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def st_load(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    data = blob[8 + n :]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[b:end]), dtype=DTYPES[e["dtype"]])
        out[name] = t.reshape(e["shape"])
    return out


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(5, 3)

    def forward(self, x):
        return self.fc(x)


class ConvBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2)
        self.bn = nn.BatchNorm2d(6)

    def forward(self, x):
        return self.bn(self.conv(x))


class Deconv(nn.Module):
    def __init__(self):
        super().__init__()
        self.deconv = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)

    def forward(self, x):
        return self.deconv(x)


class Seq(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(7, 4)
        self.lstm = nn.LSTM(4, 3, batch_first=True)
        self.fc = nn.Linear(3, 2)

    def forward(self, idx):
        return self.fc(self.lstm(self.emb(idx))[0])


class GRU(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(5, 4, num_layers=2, batch_first=True)

    def forward(self, x):
        return self.gru(x)[0]


# The sizes match the Synapse models of tests/test_interop.c.
CASES = {
    "linear": (Linear, lambda: torch.randn(4, 5)),
    "convbn": (ConvBN, lambda: torch.randn(2, 4, 7, 6)),
    "deconv": (Deconv, lambda: torch.randn(2, 4, 5, 5)),
    "seq": (Seq, lambda: torch.randint(0, 7, (2, 5))),
    "gru": (GRU, lambda: torch.randn(3, 4, 5)),
}


def export(d):
    for k, (name, (cls, make_x)) in enumerate(CASES.items()):
        torch.manual_seed(k)
        model = cls()
        if name == "convbn":  # running statistics other than 0 and 1, num_batches_tracked 3
            model.train()
            with torch.no_grad():
                for _ in range(3):
                    model(torch.randn(8, 4, 7, 6) * 2 + 0.5)
        model.eval()
        x = make_x()
        with torch.no_grad():
            y = model(x)
        st_save(f"{d}/{name}.safetensors", model.state_dict())
        st_save(f"{d}/{name}_io.safetensors", {"x": x, "y": y})
    print(f"exported {len(CASES)} models")


def check(d):
    failed = 0
    for k, (name, (cls, _)) in enumerate(CASES.items()):
        torch.manual_seed(100 + k)
        model = cls()
        sd = st_load(f"{d}/{name}_syn.safetensors")
        ref = model.state_dict()
        # exactly the state_dict's keys, shapes and dtypes
        if set(sd) != set(ref):
            print(f"{name}: keys differ: Synapse {sorted(sd)} PyTorch {sorted(ref)}")
            failed += 1
            continue
        bad = [n for n in ref if sd[n].shape != ref[n].shape or sd[n].dtype != ref[n].dtype]
        if bad:
            print(f"{name}: shape or dtype differs for {bad}")
            failed += 1
            continue
        model.load_state_dict(sd, strict=True)
        model.eval()
        x = st_load(f"{d}/{name}_io.safetensors")["x"]
        want = st_load(f"{d}/{name}_syn_y.safetensors")["y"]
        with torch.no_grad():
            y = model(x)
        err = (torch.linalg.norm((y - want).double()) / torch.linalg.norm(want.double())).item()
        print(f"{name}: PyTorch with Synapse's parameters, relative error {err:.3g}")
        if not err <= 1e-5:
            failed += 1
    if failed:
        print(f"{failed} of {len(CASES)} models differ")
        return 1
    print(f"{len(CASES)} models ok")
    return 0


def main():
    torch.set_num_threads(1)
    if len(sys.argv) != 3 or sys.argv[1] not in ("export", "check"):
        print("usage: torch_roundtrip.py export|check DIR", file=sys.stderr)
        return 2
    if sys.argv[1] == "export":
        export(sys.argv[2])
        return 0
    return check(sys.argv[2])


if __name__ == "__main__":
    sys.exit(main())
