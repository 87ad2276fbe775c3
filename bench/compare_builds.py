#!/usr/bin/env python3
"""Decode and prefill speed of two lora-moe builds, measured in one run.

Runs `lora-moe bench` of a baseline build and a candidate build, alternating
between them, on each model and quantization, as the base model and with the
same experts unmerged. Prints one Markdown table with each build's medians and
the experts' cost relative to that build's own base.

    swift build -c release --product lora-moe                      # candidate
    git worktree add /tmp/baseline <commit> && (cd /tmp/baseline && swift build -c release --product lora-moe)
    .venv/bin/python bench/compare_builds.py \\
        --baseline /tmp/baseline/.build/release/lora-moe --candidate .build/release/lora-moe \\
        --experts-dir /tmp/lora-moe-bench/adapters

--experts-dir contains one directory per model with PEFT adapters expert0 ...
expert3, as bench/compare.py writes them (`compare_transformers.py adapters`).
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def bench(binary, model_dir, quantize, experts, args):
    command = [str(binary), "bench", "--model", str(model_dir), "--threads", str(args.threads),
               "--prompt-tokens", str(args.prompt_tokens), "--gen-tokens", str(args.gen_tokens),
               "--runs", str(args.runs), "--warmup", "1", "--json", "--quantize", quantize, "--kv-cache", "f16"]
    if experts:
        command += ["--experts", ",".join(str(path) for path in experts),
                    "--weights", ",".join([str(1 / len(experts))] * len(experts)), "--merge", "off"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr}")
    return json.loads(result.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True, help="lora-moe binary to compare against")
    parser.add_argument("--candidate", type=Path, required=True, help="lora-moe binary under test")
    parser.add_argument("--experts-dir", type=Path, required=True, help="directory of <model>/expert0...expert3")
    parser.add_argument("--models-dir", type=Path, default=REPO / "models")
    parser.add_argument("--models", default="smollm2-135m-instruct,qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--quantize", default="q8,q4", help="comma-separated --quantize values")
    parser.add_argument("--experts", type=int, default=4, help="number of experts in the blend (default 4)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--runs", type=int, default=2, help="runs per `lora-moe bench` call (default 2)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--prompt-tokens", type=int, default=512)
    parser.add_argument("--gen-tokens", type=int, default=128)
    args = parser.parse_args()

    builds = {"baseline": args.baseline, "candidate": args.candidate}
    for name, binary in builds.items():
        if not binary.is_file():
            sys.exit(f"--{name} {binary}: not found; build it with 'swift build -c release --product lora-moe'")
    for model in args.models.split(","):
        for index in range(args.experts):
            adapter = args.experts_dir / model / f"expert{index}"
            if not (adapter / "adapter_config.json").is_file():
                sys.exit(f"--experts-dir: {adapter} is not a PEFT adapter directory; "
                         "write them with 'bench/compare_transformers.py adapters'")
    samples = {}  # (model, quantize, build, experts) -> [(prefill, decode, rss)]
    for round_index in range(args.rounds):
        for model in args.models.split(","):
            experts = [args.experts_dir / model / f"expert{index}" for index in range(args.experts)]
            for quantize in args.quantize.split(","):
                # Alternate the order between rounds so neither build always runs first.
                order = list(builds.items()) if round_index % 2 == 0 else list(reversed(builds.items()))
                for name, binary in order:
                    for count in (0, args.experts):
                        measured = bench(binary, args.models_dir / model, quantize, experts[:count], args)
                        key = (model, quantize, name, count)
                        samples.setdefault(key, []).append(
                            (measured["prefill_tps"], measured["decode_tps"], measured["peak_rss_bytes"]))
                        print(f"round {round_index} {model} {quantize} {name} experts={count}: "
                              f"prefill {measured['prefill_tps']:.1f}, decode {measured['decode_tps']:.1f} tok/s",
                              file=sys.stderr, flush=True)

    print(f"| model | weights | build | base decode tok/s | {args.experts} experts decode tok/s | "
          f"experts vs own base | {args.experts} experts prefill tok/s | {args.experts} experts peak RSS MB |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for model in args.models.split(","):
        for quantize in args.quantize.split(","):
            for name in builds:
                base = samples[(model, quantize, name, 0)]
                blend = samples[(model, quantize, name, args.experts)]
                base_decode = statistics.median(sample[1] for sample in base)
                blend_decode = statistics.median(sample[1] for sample in blend)
                blend_prefill = statistics.median(sample[0] for sample in blend)
                blend_rss = statistics.median(sample[2] for sample in blend) / 1e6
                print(f"| {model} | {quantize.upper()} | {name} | {base_decode:.1f} | {blend_decode:.1f} | "
                      f"{blend_decode / base_decode:.2f} | {blend_prefill:.1f} | {blend_rss:.0f} |")


if __name__ == "__main__":
    main()
