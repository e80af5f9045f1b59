"""safetensors in and out for the Python side of the tests, with numpy only (Debian has no
python3-safetensors). The reader checks the layout as strictly as nabla's own: known dtypes,
offsets inside the data section, byte counts that match the shapes, no gap and no overlap.

    read(path) -> ({name: numpy array}, metadata dict)
    write(path, [(name, numpy array of float32 or int64), ...], metadata=None)
"""
import json
import struct

import numpy as np

DTYPES = {"F32": ("<f4", 4), "I64": ("<i8", 8)}
NUMPY_TO_DTYPE = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}


def write(path, tensors, metadata=None):
    """Tensors in the given order; the header is padded with spaces to a multiple of 8."""
    header = {"__metadata__": metadata} if metadata else {}
    chunks, offset = [], 0
    for name, arr in tensors:
        dtype = NUMPY_TO_DTYPE.get(np.asarray(arr).dtype)
        if dtype is None:
            raise ValueError("%s: unsupported dtype %s" % (name, np.asarray(arr).dtype))
        raw = np.ascontiguousarray(arr).astype(DTYPES[dtype][0]).tobytes()
        header[name] = {"dtype": dtype, "shape": list(np.shape(arr)),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in chunks:
            f.write(raw)


def read(path):
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError("%s: shorter than the 8-byte header length" % path)
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        raise ValueError("%s: header length %d runs past the end of the file" % (path, n))
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", {})
    data = blob[8 + n:]
    out, spans = {}, []
    for name, info in header.items():
        dtype = info["dtype"]
        if dtype not in DTYPES:
            raise ValueError("%s: tensor %r has unsupported dtype %s" % (path, name, dtype))
        np_dtype, size = DTYPES[dtype]
        shape = tuple(info["shape"])
        begin, end = info["data_offsets"]
        count = int(np.prod(shape)) if shape else 1
        if not 0 <= begin <= end <= len(data) or end - begin != count * size:
            raise ValueError("%s: tensor %r has bad offsets %s for shape %s"
                             % (path, name, [begin, end], list(shape)))
        out[name] = np.frombuffer(data[begin:end], dtype=np_dtype).reshape(shape).copy()
        spans.append((begin, end))
    covered = 0
    for begin, end in sorted(spans):
        if begin != covered:
            raise ValueError("%s: gap or overlap at byte %d of the data" % (path, covered))
        covered = end
    if covered != len(data):
        raise ValueError("%s: %d data bytes, tensors cover %d" % (path, len(data), covered))
    return out, metadata
