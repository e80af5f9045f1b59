#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/<target>/ (small valid and near-valid inputs).

    python3 fuzz/make_corpus.py

Standard library only; the output is deterministic (gzip without a time stamp), so rerunning it
changes nothing. fuzz/corpus/safetensors/model_moons_bn.safetensors is not written here: it is
a real `nabla train` checkpoint (see fuzz/README.md).
"""
import gzip
import json
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def gz(data):
    return gzip.compress(data, compresslevel=9, mtime=0)


# ---- safetensors ----------------------------------------------------------------------------

def st(tensors, metadata=None, pad=True, header=None):
    """tensors: [(name, dtype, shape, raw bytes)], laid out in order."""
    h = {"__metadata__": metadata} if metadata is not None else {}
    data, offset = b"", 0
    for name, dtype, shape, raw in tensors:
        h[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        data += raw
        offset += len(raw)
    text = header if header is not None else json.dumps(h, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def f32(*v):
    return struct.pack("<%df" % len(v), *v)


def i64(*v):
    return struct.pack("<%dq" % len(v), *v)


def safetensors_seeds():
    w = ("0.weight", "F32", [2, 3], f32(0.5, -1.25, 3.0, 0.0, 1e-3, -7.5))
    b = ("0.bias", "F32", [2], f32(0.1, -0.2))
    steps = ("steps", "I64", [1], i64(12345))
    meta = {"format": "nabla", "layers": "3", "activation": "relu"}
    put("safetensors", "valid_f32_i64_meta.safetensors", st([w, b, steps], meta))
    put("safetensors", "valid_unpadded.safetensors", st([w, b], None, pad=False))
    put("safetensors", "valid_empty_header.safetensors", st([], None))
    put("safetensors", "valid_meta_only.safetensors", st([], {"k": "v", "\u00e9": "\u2603"}))
    put("safetensors", "valid_scalar_and_zero_size.safetensors",
        st([("s", "F32", [], f32(2.5)), ("z", "I64", [0, 5], b""),
            ("i", "I64", [2, 1, 1], i64(-1, 2**62))]))
    put("safetensors", "valid_4d.safetensors",
        st([("t", "F32", [1, 2, 1, 2], f32(1, 2, 3, 4))], {"__x": ""}))
    # near-valid: each breaks one rule
    put("safetensors", "bad_dtype_f16.safetensors", st([("h", "F16", [2], b"\x00\x3c\x00\x40")]))
    good = st([w, b])
    put("safetensors", "bad_truncated_data.safetensors", good[:-3])
    put("safetensors", "bad_header_len_too_big.safetensors", struct.pack("<Q", 1 << 40) + good[8:])
    put("safetensors", "bad_overlap.safetensors", st([], None, header=json.dumps(
        {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
         "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}).encode()) + f32(1, 2))
    put("safetensors", "bad_gap.safetensors", st([], None, header=json.dumps(
        {"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}).encode()) + f32(1, 2))
    put("safetensors", "bad_shape_mismatch.safetensors", st([], None, header=json.dumps(
        {"a": {"dtype": "I64", "shape": [3], "data_offsets": [0, 16]}}).encode()) + i64(1, 2))
    put("safetensors", "bad_duplicate_name.safetensors", st([], None,
        header=b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
               b'"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}') + f32(1, 2))
    put("safetensors", "bad_meta_not_string.safetensors", st([], {"n": 3}))
    put("safetensors", "bad_huge_shape.safetensors", st([], None, header=json.dumps(
        {"a": {"dtype": "F32", "shape": [2**53, 2**53, 4], "data_offsets": [0, 4]}}).encode())
        + f32(1))
    put("safetensors", "bad_not_json.safetensors", struct.pack("<Q", 8) + b'{"a":[1,' + f32(0))


# ---- IDX ------------------------------------------------------------------------------------
# The fuzz_idx input: flags byte, images length (u32 little-endian), images file, labels file.

def be32(*v):
    return struct.pack(">%dI" % len(v), *v)


def idx_images(n, rows, cols, pixels, magic=0x803):
    return be32(magic, n, rows, cols) + bytes(pixels)


def idx_labels(labels, n=None):
    return be32(0x801, len(labels) if n is None else n) + bytes(labels)


def idx_input(images, labels, flags=0):
    return bytes([flags]) + struct.pack("<I", len(images)) + images + labels


def idx_seeds():
    pix = [(i * 37) % 256 for i in range(3 * 2 * 3)]
    img = idx_images(3, 2, 3, pix)
    lab = idx_labels([0, 4, 2])
    put("idx", "plain.idx", idx_input(img, lab))
    put("idx", "gz_files.idx", idx_input(gz(img), gz(lab)))
    put("idx", "harness_gz_both.idx", idx_input(img, lab, flags=0x3 | 0x20))
    put("idx", "harness_gz_two_members_stored.idx", idx_input(img, lab, flags=0x7))
    put("idx", "two_gz_members.idx", idx_input(gz(img[:10]) + gz(img[10:]), lab))
    put("idx", "one_image_28x28.idx",
        idx_input(idx_images(1, 28, 28, [(i * 7) % 256 for i in range(784)]), idx_labels([9]),
                  flags=0x1 | 0x30))
    # just over 1 MiB of pixels in 1 KiB: the output buffer has to grow past its first 1 MiB
    put("idx", "gz_1mib_zeros.idx",
        idx_input(gz(idx_images(1, 1025, 1024, bytes(1025 * 1024))), idx_labels([3])))
    # near-valid
    put("idx", "truncated_pixels.idx", idx_input(img[:-4], lab))
    put("idx", "trailing_byte.idx", idx_input(img + b"\x07", lab))
    put("idx", "count_mismatch.idx", idx_input(img, idx_labels([1, 2])))
    put("idx", "swapped_magic.idx", idx_input(lab, img))
    put("idx", "zero_dim.idx", idx_input(idx_images(3, 0, 3, []), lab))
    put("idx", "huge_count.idx", idx_input(idx_images(0x7fffffff, 1, 1, pix), lab))
    put("idx", "gz_cut.idx", idx_input(gz(img)[:-6], lab))
    put("idx", "gz_garbage_after.idx", idx_input(gz(img) + b"junk", lab))
    corrupt = bytearray(gz(bytes(range(256)) * 4))
    corrupt[20] ^= 0x55
    put("idx", "gz_corrupt.idx", idx_input(bytes(corrupt), lab))
    # a small gzip bomb: the header promises 64 KiB of pixels, 1 MiB of zeros follow
    put("idx", "gz_bomb.idx", idx_input(gz(idx_images(1, 256, 256, b"") + bytes(1 << 20)),
                                          idx_labels([0])))


# ---- CSV ------------------------------------------------------------------------------------

def csv_seeds():
    put("csv", "header.csv", b"x1,x2,label\n0.5,-1.25,0\n3,4e-2,1\n1e3,.5,2\n")
    put("csv", "no_header.csv", b"1,2,3,0\n4,5,6,1\n")
    put("csv", "crlf_bom.csv", b"\xef\xbb\xbfa,b,y\r\n1.5,2.5,1\r\n-0,+7,0\r\n")
    put("csv", "blank_lines_end.csv", b"1,2,0\n3,4,1\n\n  \n\t\r\n")
    put("csv", "spaces_tabs.csv", b" 1 ,\t2\t, 3 \n4,5,6.0\n")
    put("csv", "long_mantissas.csv",
        b"0.10000000149011612,3.4028234663852886e38,1\n"
        b"1.1754943508222875e-38,-0.3333333432674408,0\n"
        b"123456789012345678,9.999999e-23,2\n")
    put("csv", "strtod_forms.csv", b"0x1p-3,1e-40,0\n1e22,1E+5,1\n")
    put("csv", "no_final_newline.csv", b"1,1\n2,2")
    put("csv", "label_float.csv", b"a,b\n1,3.000\n2,+4\n")
    # near-valid
    put("csv", "quoted_numbers.csv", b'x,label\n"1.5",0\n"2",1\n')
    put("csv", "bad_label_negative.csv", b"1,2,-1\n")
    put("csv", "bad_label_text.csv", b"1,2,cat\n")
    put("csv", "bad_label_too_large.csv", b"1,2,1000000\n")
    put("csv", "bad_field_count.csv", b"1,2,0\n1,2,3,0\n")
    put("csv", "bad_empty_field.csv", b"1,,0\n")
    put("csv", "bad_nan_inf.csv", b"nan,1,0\ninf,2,1\n")
    put("csv", "bad_out_of_range.csv", b"1e39,1,0\n")
    put("csv", "bad_blank_line_inside.csv", b"1,2,0\n\n3,4,1\n")
    put("csv", "one_column.csv", b"5\n6\n")


if __name__ == "__main__":
    safetensors_seeds()
    idx_seeds()
    csv_seeds()
