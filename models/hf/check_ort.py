"""arca's greedy text against onnxruntime's on a model directory: several prompts x 128 tokens,
through tract (`--engine tract`) and, for a Llama directory with `model.safetensors`, the native
path (`--engine native`, f32). Prints one line per prompt and engine, and a summary.

    python models/hf/check_ort.py models/work/hf/llama-target [--arca target/release/arca]
"""

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import PROMPTS, greedy_ort  # noqa: E402

MORE = ["The committee met in the evening to", "def main():\n    "]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--arca", default="target/release/arca")
    a = ap.parse_args()
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(a.dir, "tokenizer.json"))
    cfg = json.load(open(os.path.join(a.dir, "config.json")))
    eos = cfg.get("eos_token_id")
    engines = ["tract"]
    if cfg.get("model_type") == "llama" and os.path.exists(os.path.join(a.dir, "model.safetensors")):
        engines.append("native")
    equal = {e: 0 for e in engines}
    prompts = [p for p in PROMPTS + MORE if p.strip()]
    for prompt in prompts:
        ids, _ = greedy_ort(a.dir, tok.encode(prompt).ids)
        if eos in ids:
            ids = ids[:ids.index(eos)]
        want = tok.decode(ids)
        for e in engines:
            out = subprocess.run([a.arca, "generate", "-m", a.dir, "--engine", e, "-p", prompt, "-n", "128",
                                  "--temp", "0", "--no-echo", "-q"], capture_output=True, check=True)
            got = out.stdout.decode("utf-8", errors="replace").removesuffix("\n")
            same = got == want
            equal[e] += same
            at = next((i for i, (x, y) in enumerate(zip(got, want)) if x != y), min(len(got), len(want)))
            print(f"{e:6} {'equal' if same else f'differs at char {at}'}: {prompt!r}")
    for e in engines:
        print(f"{e}: {equal[e]}/{len(prompts)} prompts x 128 tokens equal to onnxruntime's greedy text")


if __name__ == "__main__":
    main()
