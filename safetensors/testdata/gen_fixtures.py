#!/usr/bin/python3
"""Generate the PyTorch fixture for the safetensors package tests.

Run from the repository root with Debian's torch (python3-torch, 1.13):

    /usr/bin/python3 safetensors/testdata/gen_fixtures.py

Writes into safetensors/testdata/:

  torch.safetensors        a safetensors file written by hand from torch
                           tensors (F32, F64, I64, metadata; the safetensors
                           package is not needed)
  torch_safetensors.json   its tensors' shapes and values

The output is deterministic (a fixed seed).
"""

import json
import os
import struct

import torch

OUT = os.path.dirname(os.path.abspath(__file__))


def tens(t):
    return {"shape": list(t.shape), "data": [float(x) for x in t.detach().reshape(-1).tolist()]}


def write_safetensors(path, tensors, metadata):
    codes = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        if t.dtype == torch.int64:
            raw = struct.pack("<%dq" % t.numel(), *t.reshape(-1).tolist())
        elif t.dtype == torch.float32:
            raw = struct.pack("<%df" % t.numel(), *t.reshape(-1).tolist())
        elif t.dtype == torch.float64:
            raw = struct.pack("<%dd" % t.numel(), *t.reshape(-1).tolist())
        header[name] = {"dtype": codes[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header["__metadata__"] = metadata
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)))
        f.write(js)
        for b in blobs:
            f.write(b)


if __name__ == "__main__":
    torch.manual_seed(7)
    tensors = {
        "encoder.weight": torch.randn(3, 5),
        "encoder.bias": torch.randn(5),
        "scale": torch.tensor([2.5], dtype=torch.float64),
        "steps": torch.tensor([1, -2, 3], dtype=torch.int64),
    }
    write_safetensors(os.path.join(OUT, "torch.safetensors"), tensors, {"format": "pt", "writer": "gen_fixtures.py"})
    with open(os.path.join(OUT, "torch_safetensors.json"), "w") as f:
        json.dump({k: tens(v.double()) for k, v in tensors.items()}, f, sort_keys=True, separators=(",", ":"))
        f.write("\n")
