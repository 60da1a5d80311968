#!/usr/bin/env bash
# Classic lossless image codecs (optipng, WebP, JPEG XL; gzip and xz as references) on the
# held-out MNIST test images 8000..9999; writes docs/bench/mnist-tools.md. See README.md here.
#
#   tools/bench-images/run.sh                 # from anywhere in the repository
#   tools/bench-images/run.sh --install       # first apt-get install the tools (root or sudo)
#   tools/bench-images/run.sh --count 20 --report /tmp/mnist-tools.md   # quick try
#
# Options: --install, --data FILE (default ../shared/data/mnist/t10k-images-idx3-ubyte.gz from
# the repository root), --first N (8000), --count N (2000), --report FILE
# (docs/bench/mnist-tools.md; "-" for none), --work DIR (default: a new mktemp -d; the per-image
# CSV is left there). PYTHON overrides python3. Installs nothing unless --install is given.
set -euo pipefail

install_line="apt-get install -y optipng webp libjxl-tools"

self=$(realpath "$0")
root=$(git -C "$(dirname "$self")" rev-parse --show-toplevel)
cd "$root"

data=$(realpath -m "$root/../shared/data/mnist/t10k-images-idx3-ubyte.gz")
first=8000 count=2000 report=docs/bench/mnist-tools.md work= install=0
cmdline="tools/bench-images/run.sh"
while (($#)); do
    case $1 in
        --install) install=1; shift; continue ;;
        --data) data=$2 ;;
        --first) first=$2 ;;
        --count) count=$2 ;;
        --report) report=$2 ;;
        --work) work=$2 ;;
        -h|--help) sed -n '2,12p' "$self" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    (($# >= 2)) || { echo "error: $1 needs a value" >&2; exit 2; }
    cmdline+=" $1 $2"
    shift 2
done
python=${PYTHON:-python3}

if ((install)); then
    sudo=; ((EUID == 0)) || sudo=sudo
    $sudo apt-get update
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $sudo $install_line
fi

missing=()
for t in optipng cwebp dwebp cjxl djxl gzip xz; do
    command -v "$t" >/dev/null || missing+=("$t")
done
if ((${#missing[@]})); then
    echo "missing: ${missing[*]} (install: $install_line; on Debian 12 the packages are" \
        "optipng, webp, libjxl-tools); the run goes on without them" >&2
fi
[[ -r $data ]] || { echo "error: cannot read $data (--data FILE)" >&2; exit 1; }

[[ -n $work ]] || work=$(mktemp -d "${TMPDIR:-/tmp}/bench-images.XXXXXX")
mkdir -p "$work"
echo "work directory: $work" >&2

args=(--data "$data" --first "$first" --count "$count" --work "$work" --command "$cmdline"
    --cpu "$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n1)"
    --tree "$(git describe --always --dirty 2>/dev/null || echo 'not a git checkout')"
    --missing "${missing[*]:-}")
[[ $report == - ]] || args+=(--report "$report")

# One process at a time (the helper runs each tool in turn), at lower priority: the machine is shared.
exec nice -n 10 "$python" "$root/tools/bench-images/bench.py" "${args[@]}"
