"""transformers + peft side of bench/compare.py; each command prints one JSON object.

    python bench/compare_transformers.py adapters --model DIR --out DIR [--count 4]
    python bench/compare_transformers.py measure --model DIR --prompt-file P.json
        [--adapter DIR ... --weights 0.25,...] [--gen-tokens 32] [--threads 2]

`adapters` writes random PEFT LoRA adapters, one per seed, with
save_pretrained. `measure` loads the model in float32, activates every
--adapter at once (PEFT's multi-adapter LoRA forward, each adapter's scaling
multiplied by its weight, nothing merged), times the prompt forward pass and
then --gen-tokens single-token steps with the KV cache, feeding the argmax.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from peft.tuners.lora import LoraLayer
from transformers import AutoModelForCausalLM

from measurement import measure_runs

PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def make_adapters(args):
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    written = []
    for index in range(args.count):
        seed = args.seed + index
        torch.manual_seed(seed)
        config = LoraConfig(r=args.rank, lora_alpha=args.alpha, target_modules=PROJECTIONS,
                            lora_dropout=0.0, task_type="CAUSAL_LM")
        peft_model = get_peft_model(model, config)
        # PEFT starts B at zero, which would make every adapter a no-op; the
        # speed measured does not depend on the values, but outputs should move.
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, parameter in peft_model.named_parameters():
                if "lora_B" in name:
                    parameter.copy_(torch.randn(parameter.shape, generator=generator) * args.b_std)
        out = Path(args.out) / f"expert{index}"
        peft_model.save_pretrained(out)
        written.append(str(out))
        model = peft_model.unload()
    return {"adapters": written, "rank": args.rank, "alpha": args.alpha}


def load_model(args):
    torch.set_num_threads(args.threads)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    if not args.adapter:
        return model.eval()

    weights = [float(value) for value in args.weights.split(",")] if args.weights else [1.0] * len(args.adapter)
    if len(weights) != len(args.adapter):
        raise SystemExit(f"error: {len(args.adapter)} adapters but {len(weights)} weights")
    names = [f"expert{index}" for index in range(len(args.adapter))]
    model = PeftModel.from_pretrained(model, args.adapter[0], adapter_name=names[0])
    for name, path in zip(names[1:], args.adapter[1:]):
        model.load_adapter(path, adapter_name=name)
    model.base_model.set_adapter(names, inference_mode=True)
    for module in model.modules():
        if isinstance(module, LoraLayer):
            for name, weight in zip(names, weights):
                module.set_scale(name, weight)
    return model.eval()


def run_once(model, prompt, gen_tokens):
    input_ids = torch.tensor([prompt])
    # logits_to_keep=1 computes the output layer for the last position only,
    # as generate() does.
    started = time.perf_counter()
    output = model(input_ids=input_ids, use_cache=True, logits_to_keep=1)
    prefill_seconds = time.perf_counter() - started

    cache = output.cache
    token = output.logits[:, -1:].argmax(-1)
    started = time.perf_counter()
    for _ in range(gen_tokens):
        output = model(input_ids=token, cache=cache, use_cache=True, logits_to_keep=1)
        cache = output.cache
        token = output.logits[:, -1:].argmax(-1)
    decode_seconds = time.perf_counter() - started
    return prefill_seconds, decode_seconds


def measure(args):
    with open(args.prompt_file) as file:
        prompt = json.load(file)
    started = time.perf_counter()
    model = load_model(args)
    load_seconds = time.perf_counter() - started

    with torch.inference_mode():
        result = measure_runs(lambda: run_once(model, prompt, args.gen_tokens), len(prompt), args.gen_tokens,
                              args.warmup, args.runs)
    return {**result, "load_s": load_seconds, "threads": torch.get_num_threads(), "adapters": len(args.adapter)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    adapters_parser = commands.add_parser("adapters", help="write random PEFT LoRA adapters")
    adapters_parser.add_argument("--model", required=True, help="Hugging Face model directory")
    adapters_parser.add_argument("--out", required=True, help="directory that receives expert0, expert1, ...")
    adapters_parser.add_argument("--count", type=int, default=4, help="number of adapters (default 4)")
    adapters_parser.add_argument("--rank", type=int, default=16, help="LoRA rank r (default 16)")
    adapters_parser.add_argument("--alpha", type=float, default=32.0, help="lora_alpha (default 32, so scaling 2 at r = 16)")
    adapters_parser.add_argument("--b-std", type=float, default=0.02, help="standard deviation of the random B matrices (default 0.02)")
    adapters_parser.add_argument("--seed", type=int, default=1000, help="seed of the first adapter; adapter i uses seed + i (default 1000)")
    adapters_parser.set_defaults(handler=make_adapters)

    measure_parser = commands.add_parser("measure", help="time prefill and decode of one configuration")
    measure_parser.add_argument("--model", required=True, help="Hugging Face model directory")
    measure_parser.add_argument("--prompt-file", required=True, help="JSON list of prompt token ids")
    measure_parser.add_argument("--adapter", action="append", default=[], help="PEFT adapter directory; repeat for several")
    measure_parser.add_argument("--weights", help="comma-separated blend weight per --adapter (default 1 each)")
    measure_parser.add_argument("--gen-tokens", type=int, default=32, help="single-token decode steps (default 32)")
    measure_parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    measure_parser.add_argument("--runs", type=int, default=1, help="measured runs; medians are reported (default 1)")
    measure_parser.add_argument("--warmup", type=int, default=1, help="unmeasured runs first (default 1)")
    measure_parser.set_defaults(handler=measure)

    args = parser.parse_args()
    json.dump(args.handler(args), sys.stdout)
    print()


if __name__ == "__main__":
    main()
