"""Generate the training data of the demo experts: the base model's own greedy
answers to the training prompts (prompts.py).

    nice -n 15 .venv/bin/python scripts/experts/make_data.py [--work-dir /tmp/lora-moe-experts]

Writes WORK_DIR/base_answers.jsonl, one {"prompt", "category", "answer", "core"}
per line, where "core" is the cleaned first one or two sentences (or null when
the answer is unusable, see styles.core_answer). train.py runs this step itself
when the file is missing. Takes about 20 minutes on 2 CPU cores.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import prompts  # noqa: E402
import styles  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = REPO / "models" / "smollm2-135m-instruct"
DEFAULT_WORK_DIR = Path(os.environ.get("TMPDIR", "/tmp")) / "lora-moe-experts"
MAX_NEW_TOKENS = 72
BATCH_SIZE = 16


def chat_prompt_ids(tokenizer, prompt):
    """Token ids of one user turn rendered with the chat template, ending with
    the assistant header (the same ids `lora-moe generate --prompt` builds)."""
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False).input_ids


def generate_base_answers(model_dir, threads):
    """Return one record per training prompt with the base model's greedy answer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()

    training, _ = prompts.build_prompts()
    # Batches of prompts with similar lengths need less left padding.
    encoded = [(item, chat_prompt_ids(tokenizer, item["prompt"])) for item in training]
    encoded.sort(key=lambda pair: len(pair[1]))
    pad = tokenizer.pad_token_id

    records = []
    start = time.time()
    for first in range(0, len(encoded), BATCH_SIZE):
        batch = encoded[first:first + BATCH_SIZE]
        width = max(len(ids) for _, ids in batch)
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for _, ids in batch])
        attention_mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for _, ids in batch])
        with torch.no_grad():
            output = model.generate(
                input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=MAX_NEW_TOKENS,
                do_sample=False, pad_token_id=pad)
        for (item, _), row in zip(batch, output[:, width:]):
            answer = tokenizer.decode(row, skip_special_tokens=True).strip()
            records.append({
                "prompt": item["prompt"], "category": item["category"],
                "answer": answer, "core": styles.core_answer(answer),
            })
        done = first + len(batch)
        print(f"{done}/{len(encoded)} prompts answered, {time.time() - start:.0f} s", flush=True)
    order = {item["prompt"]: index for index, item in enumerate(training)}
    records.sort(key=lambda record: order[record["prompt"]])
    return records


def load_or_generate(work_dir, model_dir=DEFAULT_MODEL, threads=2):
    """Return the records of WORK_DIR/base_answers.jsonl, generating the file first if it is missing.

    "core" is recomputed from "answer" on every load.
    """
    path = Path(work_dir) / "base_answers.jsonl"
    if not path.exists():
        records = generate_base_answers(model_dir, threads)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_text("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records))
        partial.rename(path)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    # The cleaning rules may have changed since the answers were generated.
    for record in records:
        record["core"] = styles.core_answer(record["answer"])
    return records


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="base model directory")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR, help="directory for base_answers.jsonl")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args()
    records = load_or_generate(args.work_dir, args.model, args.threads)
    usable = sum(record["core"] is not None for record in records)
    print(f"{len(records)} answers in {args.work_dir / 'base_answers.jsonl'}, {usable} usable")
    for style in styles.STYLES:
        print(f"  {style}: {len(styles.style_targets(style, records, seed=0))} training pairs")


if __name__ == "__main__":
    main()
