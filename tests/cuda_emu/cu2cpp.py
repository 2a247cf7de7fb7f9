#!/usr/bin/env python3
"""Rewrites a CUDA source for the CUDA emulator (tests/cuda_emu):

    kernel<<<grid, block[, shared[, stream]]>>>(args)
becomes
    syn_emu_launch("kernel", grid, block, shared, stream, kernel, args)

and each shared-memory declaration on a line of its own

    __shared__ float a[32], b;
gets, on the same line,
    syn_emu_shared_fresh(&a, sizeof a); syn_emu_shared_fresh(&b, sizeof b);

which fills the variable with 0xFF bytes (NaN) the first time a block reaches
it: shared memory starts as garbage on a GPU, and a kernel that reads what no
thread of its block wrote then reads NaN instead of the last block's values.
Everything else is kept, newlines included, and a #line directive names the
original file, so compiler messages and sanitizer reports point at the .cu
lines. usage: cu2cpp.py IN.cu OUT.cpp
"""
import re
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


SHARED = re.compile(r"^([ \t]*)__shared__\s+([^;\n]*);", re.M)


def fresh_shared(src):
    """Appends syn_emu_shared_fresh calls to each __shared__ declaration."""
    def repl(m):
        names = []
        for decl in split_top(m.group(2)):
            words = re.findall(r"[A-Za-z_]\w*", decl.split("[")[0].split("=")[0])
            if not words:
                sys.exit("cu2cpp: cannot read the shared declaration '%s'" % m.group(0).strip())
            names.append(words[-1])
        return m.group(0) + "".join(" syn_emu_shared_fresh(&%s, sizeof %s);" % (n, n) for n in names)
    return SHARED.sub(repl, src)


def convert(src, path):
    src = fresh_shared(src)
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
