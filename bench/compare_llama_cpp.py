"""llama.cpp side of bench/compare.py, run through llama-cpp-python.

bench/compare.py starts this script in a fresh process for each measurement,
so peak RSS is per configuration. Each command prints one JSON object.

    python bench/compare_llama_cpp.py measure --model M.gguf --prompt-file P.json
        [--lora A.gguf --lora B.gguf --scales 0.5,0.5] [--threads 2] [--runs 3]
    python bench/compare_llama_cpp.py quantize IN.gguf OUT.gguf q8_0|q4_0
    python bench/compare_llama_cpp.py info

Prefill is one timed `Llama.eval` of the whole prompt (n_batch = n_ubatch =
512, so a 512-token prompt is one llama_decode call). Decode is `--gen-tokens`
timed single-token `Llama.eval` calls, each feeding the argmax of the last
logits, as `lora-moe bench` does. Several LoRA adapters are applied at once
with `llama_adapter_lora_init` and `llama_set_adapters_lora`, because the
high-level `Llama(lora_path=...)` takes a single adapter.
"""

import argparse
import ctypes
import json
import sys
import time

import numpy as np
import llama_cpp

from measurement import measure_runs

QUANT_TYPES = {
    "q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0,
    "q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0,
}


def load_model(args, adapter_paths, scales):
    started = time.perf_counter()
    llm = llama_cpp.Llama(
        model_path=args.model,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        n_ctx=args.context,
        n_batch=512,
        n_ubatch=512,
        verbose=False,
    )
    if adapter_paths:
        handles = []
        for path in adapter_paths:
            handle = llama_cpp.llama_adapter_lora_init(llm.model, path.encode())
            if not handle:
                raise RuntimeError(f"llama_adapter_lora_init failed for {path}")
            handles.append(handle)
        count = len(handles)
        adapter_array = (llama_cpp.llama_adapter_lora_p_ctypes * count)(*handles)
        scale_array = (ctypes.c_float * count)(*scales)
        status = llama_cpp.llama_set_adapters_lora(llm.ctx, adapter_array, count, scale_array)
        if status != 0:
            raise RuntimeError(f"llama_set_adapters_lora returned {status}")
    return llm, time.perf_counter() - started


def last_logits_argmax(llm):
    pointer = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
    logits = np.ctypeslib.as_array(pointer, shape=(llm.n_vocab(),))
    return int(logits.argmax())


def run_once(llm, prompt, gen_tokens):
    # reset() sets the token count to 0, so the next eval drops the whole KV cache.
    llm.reset()
    started = time.perf_counter()
    llm.eval(prompt)
    prefill_seconds = time.perf_counter() - started

    token = last_logits_argmax(llm)
    started = time.perf_counter()
    for _ in range(gen_tokens):
        llm.eval([token])
        token = last_logits_argmax(llm)
    decode_seconds = time.perf_counter() - started
    return prefill_seconds, decode_seconds


def measure(args):
    with open(args.prompt_file) as file:
        prompt = json.load(file)
    if len(prompt) + args.gen_tokens > args.context:
        raise SystemExit(f"error: prompt ({len(prompt)}) plus --gen-tokens ({args.gen_tokens}) exceeds --context {args.context}")
    scales = [float(value) for value in args.scales.split(",")] if args.scales else [1.0] * len(args.lora)
    if len(scales) != len(args.lora):
        raise SystemExit(f"error: {len(args.lora)} adapters but {len(scales)} scales")

    llm, load_seconds = load_model(args, args.lora, scales)
    result = measure_runs(lambda: run_once(llm, prompt, args.gen_tokens), len(prompt), args.gen_tokens,
                          args.warmup, args.runs)
    return {**result, "load_s": load_seconds, "threads": args.threads, "adapters": len(args.lora)}


def quantize(args):
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = QUANT_TYPES[args.type]
    params.nthread = args.threads
    # Quantize every matrix, token embedding and output layer included, to the
    # one type. lora-moe's --quantize does the same; llama.cpp's default mix
    # would keep the output layer at Q6_K for Q4_0.
    params.pure = True
    status = llama_cpp.llama_model_quantize(args.input.encode(), args.output.encode(), ctypes.byref(params))
    if status != 0:
        raise SystemExit(f"error: llama_model_quantize returned {status} for {args.input}")
    return {"output": args.output, "type": args.type}


def info(_args):
    return {
        "llama_cpp_python": llama_cpp.__version__,
        "system_info": llama_cpp.llama_print_system_info().decode(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    measure_parser = commands.add_parser("measure", help="time prefill and decode of one configuration")
    measure_parser.add_argument("--model", required=True, help="GGUF model file")
    measure_parser.add_argument("--prompt-file", required=True, help="JSON list of prompt token ids")
    measure_parser.add_argument("--lora", action="append", default=[], help="GGUF LoRA adapter; repeat for several")
    measure_parser.add_argument("--scales", help="comma-separated scale per --lora (default 1 each)")
    measure_parser.add_argument("--gen-tokens", type=int, default=128, help="single-token decode steps (default 128)")
    measure_parser.add_argument("--context", type=int, default=1024, help="n_ctx in tokens (default 1024)")
    measure_parser.add_argument("--threads", type=int, default=2, help="n_threads and n_threads_batch (default 2)")
    measure_parser.add_argument("--runs", type=int, default=3, help="measured runs; medians are reported (default 3)")
    measure_parser.add_argument("--warmup", type=int, default=1, help="unmeasured runs first (default 1)")
    measure_parser.set_defaults(handler=measure)

    quantize_parser = commands.add_parser("quantize", help="quantize a GGUF file with llama_model_quantize")
    quantize_parser.add_argument("input")
    quantize_parser.add_argument("output")
    quantize_parser.add_argument("type", choices=sorted(QUANT_TYPES))
    quantize_parser.add_argument("--threads", type=int, default=2, help="quantization threads (default 2)")
    quantize_parser.set_defaults(handler=quantize)

    info_parser = commands.add_parser("info", help="print the llama-cpp-python version and ggml CPU features")
    info_parser.set_defaults(handler=info)

    args = parser.parse_args()
    json.dump(args.handler(args), sys.stdout)
    print()


if __name__ == "__main__":
    main()
