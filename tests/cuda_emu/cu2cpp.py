#!/usr/bin/env python3
"""Rewrites a CUDA source for the CUDA emulator (tests/cuda_emu):

    kernel<<<grid, block[, shared[, stream]]>>>(args)
becomes
    syn_emu_launch("kernel", grid, block, shared, stream, kernel, args)

Everything else is kept, newlines included, and a #line directive names the
original file, so compiler messages and sanitizer reports point at the .cu
lines. usage: cu2cpp.py IN.cu OUT.cpp
"""
import sys


def split_top(text):
    """Splits on the commas outside brackets."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def kernel_start(src, j):
    """Start of the kernel expression that ends at src[j] ('<<<' follows)."""
    k = j
    if src[k - 1] == ">":  # template arguments
        depth = 0
        k -= 1
        while True:
            if src[k] == ">":
                depth += 1
            elif src[k] == "<":
                depth -= 1
                if depth == 0:
                    break
            k -= 1
    while k > 0 and (src[k - 1].isalnum() or src[k - 1] in "_:"):
        k -= 1
    return k


def in_macro(src, k):
    """Whether position k lies in a #define (a logical line of continuations)."""
    start = src.rfind("\n", 0, k) + 1
    while start > 1 and src[start - 2] == "\\":
        start = src.rfind("\n", 0, start - 1) + 1
    return src[start:].lstrip().startswith("#define")


def convert(src, path):
    out = ['#line 1 "%s"\n' % path]
    i = 0
    while True:
        j = src.find("<<<", i)
        if j < 0:
            out.append(src[i:])
            break
        k = kernel_start(src, j)
        kernel = src[k:j]
        e = src.find(">>>", j)
        cfg = split_top(src[j + 3:e])
        if not 2 <= len(cfg) <= 4:
            sys.exit("%s: launch of %s: %d launch parameters" % (path, kernel, len(cfg)))
        cfg += ["0", "nullptr"][len(cfg) - 2:]
        p = e + 3
        while src[p].isspace():
            p += 1
        if src[p] != "(":
            sys.exit("%s: launch of %s: no argument list" % (path, kernel))
        depth, q = 0, p
        while True:
            if src[q] == "(":
                depth += 1
            elif src[q] == ")":
                depth -= 1
                if depth == 0:
                    break
            q += 1
        args = src[p + 1:q]
        out.append(src[i:k])
        name = '"%s"' % kernel.strip()
        if in_macro(src, k) and kernel.strip().isidentifier():
            name = "#" + kernel.strip()  # a macro parameter: its argument's name
        launch = "syn_emu_launch(%s, dim3(%s), dim3(%s), (size_t)(%s), (cudaStream_t)(%s), %s" % (
            name, cfg[0], cfg[1], cfg[2], cfg[3], kernel)
        out.append(launch + (", " + args if args.strip() else "") + ")")
        out.append("\n" * src[e:p].count("\n"))  # keep the line count
        i = q + 1
    return "".join(out)


if __name__ == "__main__":
    src_path, out_path = sys.argv[1], sys.argv[2]
    with open(src_path) as f:
        text = convert(f.read(), src_path)
    with open(out_path, "w") as f:
        f.write(text)
