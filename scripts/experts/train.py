"""Train the demo LoRA experts on SmolLM2-135M-Instruct, CPU only.

    nice -n 15 .venv/bin/python scripts/experts/train.py --style uppercase
    nice -n 15 .venv/bin/python scripts/experts/train.py --style all

Without flags each style uses its entry in RECIPES, the settings of the
shipped adapters. `--style all` trains all four in about 25 minutes on 2
cores, after about 20 minutes of data generation on first use. Each expert
learns to answer in one style (styles.py): the training pairs are the base
model's own greedy answers to the prompts of prompts.py
(make_data.py, generated on first use), rewritten into the style. The loss
covers the answer tokens and the closing <|im_end|> only, never the prompt.
The adapter is written with PEFT's save_pretrained to examples/experts/STYLE/,
and a record of the hyper-parameters, losses and wall time to
WORK_DIR/STYLE.train.json (wall time and process CPU time: the wall time
grows when other jobs share the cores). Seeds are fixed, so a rerun with the same pinned
versions and thread count gives the same adapter.
"""

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_data  # noqa: E402
import prompts  # noqa: E402
import styles  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUTPUT = REPO / "examples" / "experts"
BASE_MODEL_RECORDED = "models/smollm2-135m-instruct"
MAX_ADAPTER_BYTES = 5 * 1024 * 1024

# Settings of the shipped experts in examples/experts; a flag given on the
# command line replaces the value for every style trained. Upper case is the
# hardest style for this base model, so it also adapts the MLP projections
# and trains longer. Saving it in bfloat16 keeps it under the size budget.
ATTENTION = "q_proj,k_proj,v_proj,o_proj"
RECIPES = {
    "uppercase": {"targets": ATTENTION + ",gate_proj,up_proj,down_proj", "epochs": 1.5, "save_dtype": "bfloat16"},
    "json": {"targets": ATTENTION, "epochs": 0.6, "save_dtype": "float32"},
    "pirate": {"targets": ATTENTION, "epochs": 0.6, "save_dtype": "float32"},
    "brief": {"targets": ATTENTION, "epochs": 0.6, "save_dtype": "float32"},
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--style", required=True, choices=list(styles.STYLES) + ["all"], help="expert to train")
    parser.add_argument("--model", type=Path, default=make_data.DEFAULT_MODEL, help="base model directory")
    parser.add_argument("--work-dir", type=Path, default=make_data.DEFAULT_WORK_DIR,
                        help="directory for the generated data and training records")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="parent directory of the adapter directories")
    parser.add_argument("--rank", type=int, default=8, help="LoRA rank r")
    parser.add_argument("--alpha", type=float, default=16.0, help="LoRA alpha; the scale is alpha / r")
    parser.add_argument("--targets", help="comma-separated projection names (default: the style's recipe)")
    parser.add_argument("--epochs", type=float, help="passes over the training pairs (default: the style's recipe)")
    parser.add_argument("--batch-size", type=int, default=8, help="sequences per optimizer step")
    parser.add_argument("--lr", type=float, default=2e-3, help="peak AdamW learning rate")
    parser.add_argument("--warmup", type=float, default=0.1, help="fraction of steps with a linear warmup")
    parser.add_argument("--seed", type=int, default=0, help="seed for LoRA init, shuffling and pirate openers")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--save-dtype", choices=["float32", "bfloat16"],
                        help="dtype of the saved adapter tensors (default: the style's recipe)")
    parser.add_argument("--check", type=int, default=10,
                        help="after training, generate for this many held-out prompts with transformers+peft and print the metric")
    return parser.parse_args()


def build_examples(tokenizer, pairs):
    """Return [(input_ids, labels)], with labels -100 on the prompt tokens."""
    examples = []
    for prompt, target in pairs:
        prompt_ids = make_data.chat_prompt_ids(tokenizer, prompt)
        answer_ids = tokenizer(target, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
        examples.append((prompt_ids + answer_ids, [-100] * len(prompt_ids) + answer_ids))
    return examples


def collate(batch, pad_id):
    width = max(len(ids) for ids, _ in batch)
    input_ids = torch.tensor([ids + [pad_id] * (width - len(ids)) for ids, _ in batch])
    labels = torch.tensor([labels + [-100] * (width - len(labels)) for _, labels in batch])
    attention_mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in batch])
    return input_ids, attention_mask, labels


def learning_rate(step, total, peak, warmup_steps):
    """Linear warmup to `peak`, then cosine decay to zero."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total - warmup_steps)
    return peak * 0.5 * (1 + math.cos(math.pi * progress))


def save_adapter(model, directory, save_dtype):
    """Save with PEFT, drop its generated model card, record a repository-relative
    base model path, and cast the tensors when bfloat16 is requested."""
    from safetensors.torch import load_file, save_file

    model.save_pretrained(directory)
    (directory / "README.md").unlink(missing_ok=True)
    config_path = directory / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = BASE_MODEL_RECORDED
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    weights_path = directory / "adapter_model.safetensors"
    if save_dtype == "bfloat16":
        tensors = {name: tensor.to(torch.bfloat16) for name, tensor in load_file(weights_path).items()}
        save_file(tensors, weights_path, metadata={"format": "pt"})
    weights_path.chmod(0o644)  # safetensors creates the file readable by the owner only
    size = weights_path.stat().st_size
    if size > MAX_ADAPTER_BYTES:
        print(f"warning: {weights_path} is {size / 1e6:.1f} MB, over the 5 MiB budget; "
              "lower --rank, use fewer --targets or --save-dtype bfloat16", file=sys.stderr)
    return size


def check_heldout(model, tokenizer, style, count):
    """Generate greedily for the first `count` held-out prompts and print the metric rate."""
    _, heldout = prompts.build_prompts()
    # Spread the checked prompts over all categories.
    step = max(1, len(heldout) // max(1, count))
    chosen = heldout[::step][:count]
    model.eval()
    hits = 0
    for item in chosen:
        ids = torch.tensor([make_data.chat_prompt_ids(tokenizer, item["prompt"])])
        with torch.no_grad():
            output = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=96,
                                    do_sample=False, pad_token_id=tokenizer.pad_token_id)
        text = tokenizer.decode(output[0, ids.shape[1]:], skip_special_tokens=True)
        passed = styles.METRICS[style](text)
        hits += passed
        print(f"  [{'pass' if passed else 'FAIL'}] {item['prompt']}\n         {text!r}")
    print(f"{style}: {hits}/{len(chosen)} held-out checks pass (transformers+peft)")
    return hits, len(chosen)


def train_style(args, style, records):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    random.seed(args.seed)
    torch.manual_seed(args.seed)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    targets = [name.strip() for name in args.targets.split(",") if name.strip()]
    config = LoraConfig(
        task_type="CAUSAL_LM", r=args.rank, lora_alpha=args.alpha, lora_dropout=0.0,
        target_modules=targets, bias="none")
    model = get_peft_model(model, config)
    model.print_trainable_parameters()

    pairs = styles.style_targets(style, records, seed=args.seed)
    examples = build_examples(tokenizer, pairs)
    steps_per_epoch = math.ceil(len(examples) / args.batch_size)
    total_steps = max(1, round(steps_per_epoch * args.epochs))
    warmup_steps = max(1, round(total_steps * args.warmup))
    print(f"{style}: {len(examples)} pairs, {total_steps} steps of {args.batch_size}, "
          f"max length {max(len(ids) for ids, _ in examples)} tokens")

    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=0.0)
    order_rng = random.Random(args.seed)
    order = []
    losses = []
    model.train()
    start = time.time()
    cpu_start = time.process_time()
    for step in range(total_steps):
        if len(order) < args.batch_size:
            epoch_order = list(range(len(examples)))
            order_rng.shuffle(epoch_order)
            order += epoch_order
        batch = [examples[index] for index in order[:args.batch_size]]
        del order[:args.batch_size]
        input_ids, attention_mask, labels = collate(batch, tokenizer.pad_token_id)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, total_steps, args.lr, warmup_steps)
        loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if step % 10 == 0 or step == total_steps - 1:
            recent = losses[-10:]
            print(f"  step {step + 1}/{total_steps} loss {sum(recent) / len(recent):.4f} "
                  f"{time.time() - start:.0f} s", flush=True)
    train_seconds = time.time() - start
    cpu_seconds = time.process_time() - cpu_start

    directory = args.output / style
    size = save_adapter(model, directory, args.save_dtype)
    hits, checked = check_heldout(model, tokenizer, style, args.check) if args.check > 0 else (0, 0)

    record = {
        "style": style, "rank": args.rank, "alpha": args.alpha, "targets": targets,
        "epochs": args.epochs, "steps": total_steps, "batch_size": args.batch_size, "lr": args.lr,
        "warmup": args.warmup, "schedule": "linear warmup, cosine decay", "seed": args.seed,
        "threads": args.threads, "pairs": len(examples), "train_seconds": round(train_seconds, 1),
        "train_cpu_seconds": round(cpu_seconds, 1),
        "final_loss": round(sum(losses[-10:]) / len(losses[-10:]), 4), "adapter_bytes": size,
        "save_dtype": args.save_dtype, "heldout_check": f"{hits}/{checked}",
        "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__,
                     "peft": __import__("peft").__version__},
    }
    args.work_dir.mkdir(parents=True, exist_ok=True)
    (args.work_dir / f"{style}.train.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"{style}: trained in {train_seconds / 60:.1f} min wall, {cpu_seconds / 60:.1f} min CPU, adapter {size / 1e6:.2f} MB in {directory}")
    return record


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    records = make_data.load_or_generate(args.work_dir, args.model, args.threads)
    chosen = styles.STYLES if args.style == "all" else (args.style,)
    for style in chosen:
        settings = argparse.Namespace(**vars(args))
        for key, value in RECIPES[style].items():
            if getattr(settings, key) is None:
                setattr(settings, key, value)
        train_style(settings, style, records)


if __name__ == "__main__":
    main()
