"""Measure the style metrics of the demo experts and of their blends.

    nice -n 15 .venv/bin/python bench/eval_experts.py \\
        [--binary .build/release/lora-moe] [--markdown /tmp/experts-tables.md]

Runs every held-out prompt (examples/experts/heldout_prompts.json, never used
in training) through the base model, each expert alone, and blend sweeps of
two experts with weights (w, 1 - w) for w in --weights. Decoding is greedy.
Every output is scored with all four style metrics (scripts/experts/styles.py),
and the script checks the targets: each expert >= 80% on its own metric, the
base <= 10% on every metric, and each pair's two metrics monotonic
(non-strictly) in w. Exit status 1 when a target is missed.

The default backend runs `lora-moe generate ... --temperature 0 --json` once
per prompt and configuration. `--backend transformers` generates with
transformers+peft instead (for development without the Swift build), and
`--compare N` runs the first N prompts of every configuration through both
and reports where the generated token ids differ.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts" / "experts"))

import styles  # noqa: E402

DEFAULT_BINARY = REPO / ".build" / "release" / "lora-moe"
DEFAULT_MODEL = REPO / "models" / "smollm2-135m-instruct"
DEFAULT_EXPERTS = REPO / "examples" / "experts"
DEFAULT_PROMPTS = DEFAULT_EXPERTS / "heldout_prompts.json"
EXPERT_TARGET = 0.80
BASE_LIMIT = 0.10


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--binary", type=Path, default=DEFAULT_BINARY, help="lora-moe executable")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="base model directory")
    parser.add_argument("--experts-dir", type=Path, default=DEFAULT_EXPERTS, help="directory with one adapter directory per style")
    parser.add_argument("--prompts", type=Path, default=DEFAULT_PROMPTS, help="held-out prompts (JSON list of {\"prompt\": ...})")
    parser.add_argument("--pairs", default="uppercase+pirate,json+brief",
                        help="comma-separated blend pairs A+B; A gets weight w and B gets 1 - w")
    parser.add_argument("--weights", default="0,0.25,0.5,0.75,1", help="comma-separated values of w for the blend sweeps")
    parser.add_argument("--max-tokens", type=int, default=96, help="maximum generated tokens per answer")
    parser.add_argument("--merge", choices=["auto", "on", "off"],
                        help="passed to lora-moe generate --merge (fold the blend into the weights); default: the CLI's default")
    parser.add_argument("--threads", type=int, default=2, help="compute threads for lora-moe and torch")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N prompts (0 = all)")
    parser.add_argument("--backend", choices=["lora-moe", "transformers"], default="lora-moe", help="generator for the scored outputs")
    parser.add_argument("--compare", type=int, default=0,
                        help="also generate the first N prompts of every configuration with transformers+peft and compare token ids")
    parser.add_argument("--outputs", type=Path, default=Path("/tmp/eval_experts_outputs.jsonl"),
                        help="JSONL file that receives every generated output with its metrics")
    parser.add_argument("--markdown", type=Path, help="also write the result tables to this Markdown file")
    return parser.parse_args()


def configurations(pairs, weights):
    """Return [(label, [(style, weight)])]: base, each expert alone, then the blend sweeps."""
    configs = [("base", [])]
    configs += [(style, [(style, 1.0)]) for style in styles.STYLES]
    for first, second in pairs:
        for w in weights:
            configs.append((f"{first}+{second} w={w:g}", [(first, w), (second, round(1 - w, 6))]))
    return configs


class LoraMoeBackend:
    """Generates with the lora-moe CLI, one process per request."""

    name = "lora-moe"

    def __init__(self, args):
        if not args.binary.is_file():
            sys.exit(f"error: lora-moe binary not found at {args.binary}; build it with "
                     "'swift build -c release --product lora-moe' or pass --binary")
        self.args = args

    def generate(self, prompt, experts):
        command = [
            str(self.args.binary), "generate", "--model", str(self.args.model), "--prompt", prompt,
            "--temperature", "0", "--max-tokens", str(self.args.max_tokens),
            "--threads", str(self.args.threads), "--json",
        ]
        if self.args.merge:
            command += ["--merge", self.args.merge]
        if experts:
            command += ["--experts", ",".join(f"{style}={self.args.experts_dir / style}" for style, _ in experts)]
            command += ["--weights", ",".join(f"{weight:g}" for _, weight in experts)]
        completed = subprocess.run(command, capture_output=True, text=True)
        if completed.returncode != 0:
            raise RuntimeError(f"lora-moe failed with exit status {completed.returncode} for prompt {prompt!r}, "
                               f"experts {experts}: {completed.stderr.strip()}")
        result = json.loads(completed.stdout)
        return {key: result[key] for key in ("text", "token_ids", "prompt_tokens", "generated_tokens", "finish_reason")} | {
            "generation_tps": result.get("generation_tps")}


class TransformersBackend:
    """Generates with transformers+peft. A blend activates both adapters and
    multiplies each adapter's scale (alpha / r) by its weight, which gives
    base + sum of w_i * s_i * B_i A_i x, the same sum lora-moe computes."""

    name = "transformers+peft"

    def __init__(self, args):
        import torch
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(args.threads)
        self.torch = torch
        self.args = args
        self.tokenizer = AutoTokenizer.from_pretrained(args.model)
        base = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
        self.model = None
        for style in styles.STYLES:
            path = args.experts_dir / style
            if self.model is None:
                self.model = PeftModel.from_pretrained(base, path, adapter_name=style)
            else:
                self.model.load_adapter(path, adapter_name=style)
        self.model.eval()

    def _lora_layers(self):
        return [module for module in self.model.modules() if hasattr(module, "set_scale") and hasattr(module, "scaling")]

    def generate(self, prompt, experts):
        torch = self.torch
        text = self.tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
        ids = torch.tensor([self.tokenizer(text, add_special_tokens=False).input_ids])
        kwargs = dict(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=self.args.max_tokens,
                      do_sample=False, pad_token_id=self.tokenizer.pad_token_id)
        with torch.no_grad():
            if experts:
                self.model.base_model.set_adapter([style for style, _ in experts])
                for layer in self._lora_layers():
                    for style, weight in experts:
                        layer.set_scale(style, weight)
                output = self.model.generate(**kwargs)
            else:
                with self.model.disable_adapter():
                    output = self.model.generate(**kwargs)
        generated = output[0, ids.shape[1]:].tolist()
        # lora-moe leaves the end-of-sequence token out of token_ids; do the same.
        stopped = bool(generated) and generated[-1] == self.tokenizer.eos_token_id
        visible = generated[:-1] if stopped else generated
        return {
            "text": self.tokenizer.decode(visible, skip_special_tokens=True),
            "token_ids": visible, "prompt_tokens": ids.shape[1], "generated_tokens": len(visible),
            "finish_reason": "stop" if stopped else "length", "generation_tps": None,
        }


def score(text):
    return {style: bool(metric(text)) for style, metric in styles.METRICS.items()}


def run_all(backend, prompts, configs, outputs_path):
    """Generate and score every (configuration, prompt) and return {label: [row]}."""
    rows = {label: [] for label, _ in configs}
    start = time.time()
    with outputs_path.open("w") as outputs:
        for index, (label, experts) in enumerate(configs):
            for item in prompts:
                result = backend.generate(item["prompt"], experts)
                row = {"config": label, "experts": experts, "prompt": item["prompt"], **result,
                       "metrics": score(result["text"])}
                rows[label].append(row)
                outputs.write(json.dumps(row, ensure_ascii=False) + "\n")
            rate = {style: sum(row["metrics"][style] for row in rows[label]) / len(prompts) for style in styles.STYLES}
            print(f"[{index + 1}/{len(configs)}] {label}: "
                  + ", ".join(f"{style} {rate[style]:.0%}" for style in styles.STYLES)
                  + f" ({time.time() - start:.0f} s)", flush=True)
    return rows


def rates(rows):
    return {style: sum(row["metrics"][style] for row in rows) / len(rows) for style in styles.STYLES}


def format_tables(rows, configs, pairs, weights, count, args, backend_name):
    merge = f"; --merge {args.merge}" if args.merge and backend_name == "lora-moe" else ""
    lines = [f"Held-out prompts: {count}; backend: {backend_name}{merge}; greedy; max tokens {args.max_tokens}.", ""]
    header = "| configuration | " + " | ".join(styles.STYLES) + " | mean tokens | finish=length |"
    lines += [header, "|" + "---|" * (len(styles.STYLES) + 3)]
    for label, _ in configs:
        if "+" in label:
            continue
        lines.append(_table_row(label, rows[label]))
    for first, second in pairs:
        lines += ["", f"Blend sweep {first}+{second}: weights {first}=w, {second}=1-w.", "",
                  "| w | " + " | ".join(styles.STYLES) + " | mean tokens | finish=length |",
                  "|" + "---|" * (len(styles.STYLES) + 3)]
        for w in weights:
            lines.append(_table_row(f"{w:g}", rows[f"{first}+{second} w={w:g}"]))
    return "\n".join(lines)


def _table_row(label, rows):
    rate = rates(rows)
    tokens = sum(row["generated_tokens"] for row in rows) / len(rows)
    truncated = sum(row["finish_reason"] == "length" for row in rows)
    return f"| {label} | " + " | ".join(f"{rate[style]:.0%}" for style in styles.STYLES) + f" | {tokens:.1f} | {truncated} |"


def check_targets(rows, pairs, weights):
    """Return a list of missed targets, each a sentence."""
    missed = []
    for style in styles.STYLES:
        alone = rates(rows[style])[style]
        if alone < EXPERT_TARGET:
            missed.append(f"expert {style} scores {alone:.0%} on its own metric, target >= {EXPERT_TARGET:.0%}")
        base = rates(rows["base"])[style]
        if base > BASE_LIMIT:
            missed.append(f"base scores {base:.0%} on the {style} metric, limit <= {BASE_LIMIT:.0%}")
    for first, second in pairs:
        sweep = [rates(rows[f"{first}+{second} w={w:g}"]) for w in sorted(weights)]
        for style, direction in ((first, 1), (second, -1)):
            values = [rate[style] for rate in sweep]
            if any(direction * (later - earlier) < 0 for earlier, later in zip(values, values[1:])):
                trend = "rise" if direction > 0 else "fall"
                missed.append(f"{first}+{second}: {style} metric does not {trend} monotonically with w: "
                              + ", ".join(f"{value:.0%}" for value in values))
    return missed


def compare_backends(args, prompts, configs, rows):
    """Regenerate the first --compare prompts with transformers+peft and list token-id differences."""
    reference = TransformersBackend(args)
    chosen = prompts[:args.compare]
    differences = []
    for label, experts in configs:
        for item, row in zip(chosen, rows[label]):
            other = reference.generate(item["prompt"], experts)
            if other["token_ids"] != row["token_ids"]:
                differences.append({"config": label, "prompt": item["prompt"],
                                    "lora_moe": row["text"], "transformers": other["text"],
                                    "first_difference": _first_difference(row["token_ids"], other["token_ids"])})
    total = len(chosen) * len(configs)
    print(f"compare: {total - len(differences)}/{total} generations have identical token ids in lora-moe and transformers+peft")
    for difference in differences:
        print(json.dumps(difference, ensure_ascii=False, indent=1))
    return differences, total


def _first_difference(left, right):
    for index, (a, b) in enumerate(zip(left, right)):
        if a != b:
            return index
    return min(len(left), len(right))


def main():
    args = parse_args()
    prompts = json.loads(args.prompts.read_text())
    if args.limit:
        prompts = prompts[:args.limit]
    pairs = [tuple(pair.split("+")) for pair in args.pairs.split(",") if pair]
    for pair in pairs:
        if len(pair) != 2 or not set(pair) <= set(styles.STYLES):
            sys.exit(f"error: invalid pair {'+'.join(pair)!r} in --pairs; use two of {', '.join(styles.STYLES)} joined by +")
    weights = [float(value) for value in args.weights.split(",")]
    configs = configurations(pairs, weights)

    backend = LoraMoeBackend(args) if args.backend == "lora-moe" else TransformersBackend(args)
    rows = run_all(backend, prompts, configs, args.outputs)
    tables = format_tables(rows, configs, pairs, weights, len(prompts), args, backend.name)
    print()
    print(tables)

    missed = check_targets(rows, pairs, weights)
    print()
    print("targets: all met" if not missed else "targets missed:\n  " + "\n  ".join(missed))

    comparison = ""
    if args.compare and args.backend == "lora-moe":
        differences, total = compare_backends(args, prompts, configs, rows)
        comparison = (f"\n\nlora-moe vs transformers+peft: {total - len(differences)}/{total} generations "
                      f"(first {min(args.compare, len(prompts))} prompts x {len(configs)} configurations) have identical token ids.")
    if args.markdown:
        args.markdown.write_text(tables + comparison + "\n\n" + ("Targets: all met." if not missed else
                                 "Targets missed:\n\n" + "\n".join(f"- {item}" for item in missed)) + "\n")
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
