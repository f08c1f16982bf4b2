#!/usr/bin/env python3
"""Writes aigw-core/data/<name>.ranks from OpenAI's published <name>.tiktoken file.

Usage: scripts/tiktoken-ranks.py <o200k_base|cl100k_base>.tiktoken[.gz] [out-dir]

A .tiktoken file has one token a line, `<base64 of its bytes> <rank>`, ranks 0..n in
order. The .ranks file keeps the same tokens in the same order, each as one length byte
followed by its bytes, so the gateway embeds them without a base64 or gzip decoder.
The test `estimate::bpe::tests::rank_files_are_the_published_ones` rebuilds the
.tiktoken text from a .ranks file and checks its SHA-256 against the one tiktoken pins.
"""
import base64
import gzip
import os
import sys


def main() -> None:
    src = sys.argv[1]
    out_dir = sys.argv[2] if len(sys.argv) > 2 else "aigw-core/data"
    opener = gzip.open if src.endswith(".gz") else open
    name = os.path.basename(src).split(".")[0]
    out = bytearray()
    with opener(src, "rb") as f:
        for expected, line in enumerate(f):
            token, rank = line.split()
            if int(rank) != expected:
                sys.exit(f"{src}: rank {int(rank)} on line {expected + 1}, ranks must run 0..n")
            raw = base64.b64decode(token)
            if not 1 <= len(raw) <= 255:
                sys.exit(f"{src}: token {expected} is {len(raw)} bytes")
            out.append(len(raw))
            out += raw
    path = os.path.join(out_dir, f"{name}.ranks")
    with open(path, "wb") as f:
        f.write(out)
    print(f"{path}: {expected + 1} tokens, {len(out)} bytes")


if __name__ == "__main__":
    main()
