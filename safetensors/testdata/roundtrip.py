#!/usr/bin/python3
"""Safetensors round trip through PyTorch, for TestSafetensorsPythonRoundTrip.

    /usr/bin/python3 safetensors/testdata/roundtrip.py IN OUT

Reads IN by hand (no safetensors package) into torch tensors, checks the
header, and writes OUT with every tensor doubled, a new tensor
"torch.added" = arange(3) as float32, and the metadata plus
{"roundtrip": "torch <version>"}.
"""

import json
import struct
import sys

import torch

DT = {"F32": (torch.float32, "f", 4), "F64": (torch.float64, "d", 8), "I64": (torch.int64, "q", 8)}
CODE = {v[0]: k for k, v in DT.items()}


def read(path):
    with open(path, "rb") as f:
        b = f.read()
    (n,) = struct.unpack("<Q", b[:8])
    assert (8 + n) % 8 == 0, "data is not 8-byte aligned"
    header = json.loads(b[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = b[8 + n:]
    out = {}
    for name, e in header.items():
        dtype, fmt, size = DT[e["dtype"]]
        lo, hi = e["data_offsets"]
        count = (hi - lo) // size
        vals = struct.unpack("<%d%s" % (count, fmt), data[lo:hi])
        out[name] = torch.tensor(vals, dtype=dtype).reshape(e["shape"])
    return out, meta


def write(path, tensors, meta):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        _, fmt, _ = DT[CODE[t.dtype]]
        raw = struct.pack("<%d%s" % (t.numel(), fmt), *t.reshape(-1).tolist())
        header[name] = {"dtype": CODE[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header["__metadata__"] = meta
    js = json.dumps(header).encode()
    js += b" " * (-len(js) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)) + js + b"".join(blobs))


if __name__ == "__main__":
    tensors, meta = read(sys.argv[1])
    out = {k: v * 2 for k, v in tensors.items()}
    out["torch.added"] = torch.arange(3, dtype=torch.float32)
    meta = dict(meta, roundtrip="torch " + torch.__version__)
    write(sys.argv[2], out, meta)
    print(json.dumps({k: list(v.shape) for k, v in sorted(tensors.items())}))
