"""Convert a GGUF model file into a Hugging Face model directory in float32.

transformers reads the GGUF, dequantizes every tensor to float32 and writes
config.json, model.safetensors, the tokenizer files and the chat template.
The dequantized values equal gguf-py's own dequantizer bit for bit, so the
directory is a faithful float32 copy of the quantized model.

Usage: python scripts/convert_gguf.py GGUF_FILE OUT_DIR
"""

import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit("usage: convert_gguf.py GGUF_FILE OUT_DIR")
    gguf_path, out_dir = sys.argv[1], sys.argv[2]
    directory, name = os.path.split(os.path.abspath(gguf_path))

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, dtype=torch.float32)

    # save_pretrained rejects a model that still carries the GGUF quantizer,
    # although every weight is already dequantized.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config

    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


if __name__ == "__main__":
    main()
