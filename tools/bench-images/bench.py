#!/usr/bin/env python3
"""Classic lossless image codecs on held-out MNIST images (standard library only).

Called by tools/bench-images/run.sh, which checks the tools and runs this under `nice -n 10`.
Writes every image as an 8-bit grayscale PNG (our minimal writer) and as PGM (P5), runs
`optipng -o7`, `cwebp -lossless -z 9` and `cjxl -d 0 -e 9` on it one process at a time,
decodes every output back and compares the pixels, and runs `gzip -9` / `xz -9e` on the
raw idx slice as references. Prints progress to stderr, writes a per-image CSV into the
work directory and the markdown report to --report.
"""

import argparse
import gzip
import hashlib
import os
import shutil
import statistics
import struct
import subprocess
import sys
import time
import zlib

W = H = 28
PIXELS = W * H
PNG_SIG = b"\x89PNG\r\n\x1a\n"


# --- image files ------------------------------------------------------------------------

def png_chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def write_png(pixels):
    """Minimal 8-bit grayscale PNG: IHDR, one IDAT (filter 0 on every row, zlib level 9), IEND."""
    raw = b"".join(b"\0" + pixels[r * W:(r + 1) * W] for r in range(H))
    ihdr = struct.pack(">IIBBBBB", W, H, 8, 0, 0, 0, 0)
    return (PNG_SIG + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(raw, 9))
            + png_chunk(b"IEND", b""))


def write_pgm(pixels):
    return b"P5\n%d %d\n255\n" % (W, H) + pixels


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def decode_png(data):
    """Decode a non-interlaced PNG of any colour type / bit depth to 8-bit gray.

    Raises ValueError when the file is not valid PNG, is interlaced, has a transparent
    pixel, or a pixel that is not gray (R != G != B), or a sample that does not map to 8 bits.
    """
    if data[:8] != PNG_SIG:
        raise ValueError("no PNG signature")
    pos, idat, plte, trns, ihdr = 8, [], None, None, None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        if zlib.crc32(kind + body) != crc:
            raise ValueError("bad CRC in %r" % kind)
        pos += 12 + n
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"PLTE":
            plte = body
        elif kind == b"tRNS":
            trns = body
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if ihdr is None:
        raise ValueError("no IHDR")
    width, height, depth, ctype, _comp, _filt, interlace = ihdr
    if interlace:
        raise ValueError("interlaced PNG (not handled by this checker)")
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ctype]
    bits = channels * depth
    stride = (width * bits + 7) // 8
    bpp = max(1, bits // 8)
    raw = zlib.decompress(b"".join(idat))
    if len(raw) != height * (stride + 1):
        raise ValueError("IDAT holds %d bytes, expected %d" % (len(raw), height * (stride + 1)))
    prev = bytearray(stride)
    rows = []
    for y in range(height):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + ((a + b) >> 1)) & 255
            elif ftype == 4:
                line[i] = (line[i] + paeth(a, b, c)) & 255
            elif ftype != 0:
                raise ValueError("bad filter type %d" % ftype)
        rows.append(line)
        prev = line
    maxv = (1 << depth) - 1
    out = bytearray()
    for line in rows:
        if depth == 8:
            samples = list(line)
        elif depth == 16:
            samples = [line[i] << 8 | line[i + 1] for i in range(0, len(line), 2)]
        else:
            per = 8 // depth
            samples = [(byte >> (8 - depth * (k + 1))) & maxv for byte in line for k in range(per)]
        samples = samples[:width * channels]
        for x in range(width):
            px = samples[x * channels:(x + 1) * channels]
            if ctype == 3:
                rgb = plte[3 * px[0]:3 * px[0] + 3]
                if len(rgb) != 3:
                    raise ValueError("palette index out of range")
                if trns is not None and px[0] < len(trns) and trns[px[0]] != 255:
                    raise ValueError("transparent palette entry used")
                if not rgb[0] == rgb[1] == rgb[2]:
                    raise ValueError("non-gray palette entry")
                out.append(rgb[0])
                continue
            if ctype in (4, 6) and px[-1] != maxv:
                raise ValueError("pixel not opaque")
            if trns is not None:
                raise ValueError("tRNS on a gray/RGB image")
            if ctype in (2, 6) and not px[0] == px[1] == px[2]:
                raise ValueError("non-gray RGB pixel")
            v = px[0]
            if (v * 255) % maxv:
                raise ValueError("sample %d of %d bits does not map to 8 bits" % (v, depth))
            out.append(v * 255 // maxv)
    if (width, height) != (W, H):
        raise ValueError("size %dx%d" % (width, height))
    return bytes(out)


def decode_pnm(data):
    """P5 (gray) or P6 (RGB, must be gray) with maxval 255 -> 8-bit gray pixels."""
    fields, pos = [], 0
    while len(fields) < 4:
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        start = pos
        while not data[pos:pos + 1].isspace():
            pos += 1
        fields.append(data[start:pos])
    pos += 1
    magic, width, height, maxval = fields[0], int(fields[1]), int(fields[2]), int(fields[3])
    if (width, height) != (W, H) or maxval != 255:
        raise ValueError("PNM %dx%d maxval %d" % (width, height, maxval))
    body = data[pos:]
    if magic == b"P5":
        return bytes(body[:PIXELS])
    if magic == b"P6":
        r, g, b = body[0:3 * PIXELS:3], body[1:3 * PIXELS:3], body[2:3 * PIXELS:3]
        if not r == g == b:
            raise ValueError("non-gray pixel in P6")
        return bytes(r)
    raise ValueError("PNM magic %r" % magic)


# --- tools ------------------------------------------------------------------------------

def run(cmd, stdout=subprocess.DEVNULL):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError("%s exited %d: %s" % (" ".join(cmd), p.returncode,
                                                 p.stderr.decode(errors="replace").strip()[-300:]))
    return dt


def enc_optipng(d, png, pgm):
    out = os.path.join(d, "opt.png")
    shutil.copyfile(png, out)
    dt = run(["optipng", "-quiet", "-o7", out])
    return out, dt


def dec_optipng(d, out):
    with open(out, "rb") as f:
        return decode_png(f.read())


def enc_cwebp(d, png, pgm):
    out = os.path.join(d, "out.webp")
    dt = run(["cwebp", "-quiet", "-lossless", "-z", "9", png, "-o", out])
    return out, dt


def dec_cwebp(d, out):
    dec = os.path.join(d, "webp.ppm")
    run(["dwebp", "-quiet", out, "-ppm", "-o", dec])
    with open(dec, "rb") as f:
        return decode_pnm(f.read())


def enc_cjxl(d, png, pgm, src=None):
    out = os.path.join(d, "out.jxl")
    dt = run(["cjxl", src or png, out, "-d", "0", "-e", "9", "--num_threads=0", "--quiet"])
    return out, dt


def dec_cjxl(d, out):
    dec = os.path.join(d, "jxl.pgm")  # djxl 0.7 picks the format by extension; .pnm is refused
    run(["djxl", out, dec, "--num_threads=1"])  # for djxl 0 = machine default
    with open(dec, "rb") as f:
        return decode_pnm(f.read())


TOOLS = [
    # name, needs, encoder, decoder, command shown in the report
    ("optipng", ["optipng"], enc_optipng, dec_optipng, "optipng -quiet -o7 copy.png"),
    ("cwebp", ["cwebp", "dwebp"], enc_cwebp, dec_cwebp,
     "cwebp -quiet -lossless -z 9 in.png -o out.webp"),
    ("cjxl", ["cjxl", "djxl"], enc_cjxl, dec_cjxl,
     "cjxl in.png out.jxl -d 0 -e 9 --num_threads=0 --quiet"),
]


def version(cmd):
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except OSError:
        return "missing"
    return p.stdout.decode(errors="replace").strip().splitlines()[0]


# --- main -------------------------------------------------------------------------------

def bpd(nbytes, images=1):
    return 8.0 * nbytes / (images * PIXELS)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="MNIST idx3 images, gzip-compressed")
    ap.add_argument("--first", type=int, default=8000, help="first held-out index (8000)")
    ap.add_argument("--count", type=int, default=2000, help="number of images (2000)")
    ap.add_argument("--work", required=True, help="scratch directory (CSV is left here)")
    ap.add_argument("--report", help="markdown report to write")
    ap.add_argument("--command", default="tools/bench-images/run.sh", help="for the report")
    ap.add_argument("--cpu", default="unknown", help="for the report")
    ap.add_argument("--tree", default="unknown", help="for the report")
    ap.add_argument("--missing", default="", help="tools not on PATH, for the report")
    ap.add_argument("--pgm-check", type=int, default=20,
                    help="also encode this many images with cjxl from PGM and compare bytes")
    args = ap.parse_args()

    started = time.time()
    load_before = open("/proc/loadavg").read().split()[0]
    with open(args.data, "rb") as f:
        gz = f.read()
    data_sha = hashlib.sha256(gz).hexdigest()
    idx = gzip.decompress(gz)
    magic, n, rows, cols = struct.unpack(">4I", idx[:16])
    if magic != 2051 or (rows, cols) != (H, W):
        sys.exit("error: %s is not an idx3 file of 28x28 images" % args.data)
    if args.first < 0 or args.count < 1 or args.first + args.count > n:
        sys.exit("error: images %d..%d not in 0..%d" % (args.first, args.first + args.count - 1, n - 1))
    first, count = args.first, args.count
    images = [idx[16 + (first + i) * PIXELS:16 + (first + i + 1) * PIXELS] for i in range(count)]

    missing = set(args.missing.split())
    tools = [t for t in TOOLS if not missing.intersection(t[1])]
    left_out = [t[0] for t in TOOLS if missing.intersection(t[1])]

    os.makedirs(args.work, exist_ok=True)
    d = os.path.join(args.work, "cur")
    os.makedirs(d, exist_ok=True)
    png, pgm = os.path.join(d, "in.png"), os.path.join(d, "in.pgm")

    names = ["png"] + [t[0] for t in tools]
    sizes = {k: [] for k in names}
    times = {k: [] for k in names}
    failures = {k: [] for k in names}

    def one(pixels, label):
        """Encode one image with every method; return {name: (bytes, seconds)}."""
        res = {}
        t0 = time.perf_counter()
        p = write_png(pixels)
        t_png = time.perf_counter() - t0
        with open(png, "wb") as f:
            f.write(p)
        with open(pgm, "wb") as f:
            f.write(write_pgm(pixels))
        try:
            ok = decode_png(p) == pixels
        except ValueError as e:
            ok = False
            print("%s png: %s" % (label, e), file=sys.stderr)
        res["png"] = (len(p), t_png, ok)
        for name, _needs, enc, dec, _cmd in tools:
            size, dt, ok = 0, 0.0, False
            try:
                out, dt = enc(d, png, pgm)
                size = os.path.getsize(out)
                ok = dec(d, out) == pixels
                if not ok:
                    print("%s %s: decoded pixels differ" % (label, name), file=sys.stderr)
            except (RuntimeError, ValueError, OSError) as e:
                ok = False
                print("%s %s: %s" % (label, name, e), file=sys.stderr)
            res[name] = (size, dt, ok)
        return res

    black = one(bytes(PIXELS), "black")
    black_fail = [k for k in names if not black[k][2]]

    # cjxl from PGM vs from PNG: same bytes?
    pgm_same = pgm_diff = 0
    if any(t[0] == "cjxl" for t in tools):
        for i in range(min(args.pgm_check, count)):
            with open(png, "wb") as f:
                f.write(write_png(images[i]))
            with open(pgm, "wb") as f:
                f.write(write_pgm(images[i]))
            a, _ = enc_cjxl(d, png, pgm)
            a = open(a, "rb").read()
            b, _ = enc_cjxl(d, png, pgm, src=pgm)
            b = open(b, "rb").read()
            if a == b:
                pgm_same += 1
            else:
                pgm_diff += 1

    csv_path = os.path.join(args.work, "mnist-sizes.csv")
    t_loop = time.time()
    with open(csv_path, "w") as csv:
        csv.write("mnist_index," + ",".join("%s_bytes" % k for k in names) + ","
                  + ",".join("%s_encode_ms" % k for k in names) + "\n")
        for i, pixels in enumerate(images):
            res = one(pixels, "image %d" % (first + i))
            for k in names:
                size, dt, ok = res[k]
                sizes[k].append(size)
                times[k].append(dt)
                if not ok:
                    failures[k].append(first + i)
            csv.write("%d,%s,%s\n" % (first + i, ",".join(str(res[k][0]) for k in names),
                                      ",".join("%.3f" % (1000 * res[k][1]) for k in names)))
            done = i + 1
            if done % 100 == 0 or done == count:
                el = time.time() - t_loop
                print("  %d/%d images, %.0f s, about %.0f s left" % (
                    done, count, el, el / done * (count - done)), file=sys.stderr, flush=True)

    # References: gzip -9 / xz -9e on the raw idx slice (header says `count` images), one file.
    def idx_file(pix_list):
        return struct.pack(">4I", 2051, len(pix_list), H, W) + b"".join(pix_list)

    refs = {}
    ref_cmds = {"gzip": (["gzip", "-9", "-n", "-c"], ["gzip", "-d", "-c"], "gzip -9 -n -c slice.idx"),
                "xz": (["xz", "-9e", "-c"], ["xz", "-d", "-c"], "xz -9e -c slice.idx")}
    for name, (enc, dec, _show) in ref_cmds.items():
        if name in missing:
            continue
        res = []
        for label, content in (("slice", idx_file(images)), ("black", idx_file([bytes(PIXELS)]))):
            src = os.path.join(d, "slice.idx")
            out = os.path.join(d, "slice.idx.out")
            with open(src, "wb") as f:
                f.write(content)
            with open(out, "wb") as f:
                dt = run(enc + [src], stdout=f)
            with open(out, "rb") as f:
                back = subprocess.run(dec, stdin=f, stdout=subprocess.PIPE).stdout
            res.append((os.path.getsize(out), dt, back == content))
        refs[name] = res
    raw_slice = len(idx_file(images))
    elapsed = time.time() - started
    load_after = open("/proc/loadavg").read().split()[0]

    # --- report -------------------------------------------------------------------------
    total_failures = sum(len(v) for v in failures.values()) + len(black_fail) + sum(
        1 for r in refs.values() for x in r if not x[2])
    summary = []  # rows
    labels = {"png": "PNG, minimal writer (filter 0, zlib -9)", "optipng": "optipng -o7",
              "cwebp": "WebP lossless (cwebp -z 9)", "cjxl": "JPEG XL lossless (cjxl -d 0 -e 9)"}
    for k in names:
        tot = sum(sizes[k])
        per = sorted(bpd(s) for s in sizes[k])
        fails = len(failures[k]) + (k in black_fail)
        summary.append((labels[k], "%d" % tot, "%.4f" % bpd(tot, count), "%d" % black[k][0],
                        "%.4f" % bpd(tot - count * black[k][0], count),
                        "%.3f / %.3f / %.3f" % (per[0], statistics.median(per), per[-1]),
                        "%.2f" % (1000 * statistics.median(times[k])),
                        "ok" if not fails else "FAILED (%d)" % fails))
    for name, ((size, dt, ok), (bsize, _bdt, bok)) in refs.items():
        summary.append(("%s on the raw idx slice (one file)" % ref_cmds[name][2].split(" slice")[0],
                        "%d" % size, "%.4f" % bpd(size, count), "%d" % bsize,
                        "%.4f" % bpd(size - bsize, count), "n/a (one file)",
                        "%.2f (whole file %.0f ms)" % (1000 * dt / count, 1000 * dt),
                        "ok" if ok and bok else "FAILED"))

    lines = []
    add = lines.append
    add("# Classic lossless image codecs on held-out MNIST")
    add("")
    add("MNIST test set images %d..%d (%d images, 28x28, 8-bit gray; the last 2,000 are held out "
        "from arca's model, which was trained on the first 8,000). Lower is better; 8 bpd = "
        "uncompressed." % (first, first + count - 1, count))
    add("")
    add("- Date: %s; tree `%s`." % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)), args.tree))
    add("- Machine: %s, %d logical CPUs, shared with other jobs (load average %s before, %s after); "
        "one process at a time under `nice -n 10`." % (args.cpu, os.cpu_count(), load_before, load_after))
    add("- Data: `%s` (sha256 `%s`)." % (os.path.basename(args.data), data_sha))
    add("- Command: `%s` (took %.0f s, %.1f min)." % (args.command, elapsed, elapsed / 60))
    add("- Tools: %s; %s; %s; %s; %s; %s; %s; Python %s (zlib %s)." % (
        version(["optipng", "-v"]), "cwebp " + version(["cwebp", "-version"]),
        "dwebp " + version(["dwebp", "-version"]), version(["cjxl", "--version"]),
        version(["djxl", "--version"]), version(["gzip", "--version"]), version(["xz", "--version"]),
        sys.version.split()[0], zlib.ZLIB_RUNTIME_VERSION))
    if left_out:
        add("- Left out (not on PATH): %s." % ", ".join(left_out))
    add("")
    add("| method | total bytes | bpd, whole files | all-black 28x28 file, bytes | payload bpd (estimate) "
        "| per image bpd min / median / max | median encode ms / image | round trip |")
    add("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for row in summary:
        add("| " + " | ".join(row) + " |")
    add("")
    add("Raw pixels: %d bytes (8 bpd); the idx slice with its 16-byte header: %d bytes."
        % (count * PIXELS, raw_slice))
    add("")
    add("## Notes")
    add("")
    add("- **bpd, whole files** = 8 x total bytes / (%d x 784): every file counted whole, headers "
        "and containers included (what a user of the tool would store)." % count)
    add("- **payload bpd** subtracts, from every file, the size the same tool gives an all-black "
        "28x28 image: an *estimate* of the fixed header/container overhead, not a measured one "
        "(the all-black file also holds a little image data, so the payload is slightly "
        "under-estimated; per-image overhead that depends on the content is not removed). For "
        "gzip and xz the black reference is an idx file of one black image, subtracted once.")
    add("- Per-image PNG / WebP / JPEG XL files are tiny (28x28): fixed overhead is a large share "
        "of each file, most of all for PNG (8-byte signature + IHDR, IDAT, IEND chunks = 57 bytes "
        "before any zlib data, about 0.58 bpd). gzip and xz see all %d images as one stream, so "
        "they pay their overhead once and can use redundancy across images; they are a reference, "
        "not a per-image codec." % count)
    add("- Every output was decoded and compared with the original pixels: optipng's PNG with a "
        "Python zlib PNG decoder (any colour type / bit depth, non-interlaced), WebP with "
        "`dwebp -ppm` (gray must come back as R = G = B), JPEG XL with `djxl` to PGM, gzip/xz by "
        "decompressing the slice. The minimal PNGs were checked the same way as optipng's.")
    add("- Commands per image: %s. The input is the minimal PNG (optipng works on a copy of it)."
        % "; ".join("`%s`" % t[4] for t in tools))
    if pgm_same + pgm_diff:
        add("- cjxl takes both PNG and PGM here; on the first %d images, PGM input gave %s."
            % (pgm_same + pgm_diff, "byte-identical files" if not pgm_diff else
               "different bytes for %d of them" % pgm_diff))
    add("- Encode times are wall clock per process (fork + exec + the tool's start-up included), "
        "median over the images, on a shared 2-core machine; they show orders of magnitude only. "
        "The minimal PNG's time is in-process Python (no process start). gzip/xz: time for the "
        "whole slice divided by the number of images.")
    add("- cjxl 0.7 runs with `--num_threads=0` (its help: do not use multithreading), djxl with "
        "`--num_threads=1`. cjxl prints, even with `--quiet`, that it assumes sRGB for the input "
        "(no colour space given); the pixels round-trip exactly. `-e 9` is cjxl 0.7's highest "
        "effort, `cwebp -z 9` the slowest lossless preset.")
    if "optipng" in names and "png" in names:
        smaller = sum(o < p for o, p in zip(sizes["optipng"], sizes["png"]))
        larger = sum(o > p for o, p in zip(sizes["optipng"], sizes["png"]))
        add("- optipng made %d of the %d minimal PNGs smaller and %d larger; it leaves a file "
            "unchanged when it finds nothing smaller, so the rest keep our writer's size "
            "(filter 0, zlib level 9)." % (smaller, count, larger))
    add("- Per-image sizes: `mnist-sizes.csv` in the run's work directory (not committed).")
    if total_failures:
        parts = ["%s: images %s" % (k, ", ".join(map(str, v[:20])) + (" ..." if len(v) > 20 else ""))
                 for k, v in failures.items() if v]
        parts += ["%s: the all-black image" % k for k in black_fail]
        parts += ["%s: the idx slice" % k for k, r in refs.items() if not all(x[2] for x in r)]
        add("- **Failures** (details on stderr of the run): %s." % "; ".join(parts))
    add("")
    text = "\n".join(lines)
    if args.report:
        with open(args.report, "w") as f:
            f.write(text)
        print("wrote %s" % args.report, file=sys.stderr)
    print(text)
    print("per-image CSV: %s" % csv_path, file=sys.stderr)
    shutil.rmtree(d, ignore_errors=True)
    return 1 if total_failures else 0


if __name__ == "__main__":
    sys.exit(main())
