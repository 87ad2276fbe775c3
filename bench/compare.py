"""Side-by-side CPU benchmark of lora-moe, llama.cpp and transformers + peft.

Run from the repository root, after building lora-moe in release mode:

    swift build -c release --product lora-moe --scratch-path /tmp/bench-build
    .venv/bin/python bench/compare.py --lora-moe /tmp/bench-build/release/lora-moe \\
        --markdown /tmp/compare.md --json /tmp/compare.json

One run of this script:

1. installs bench/requirements.txt into this virtual environment. llama-cpp-python
   is built from its sdist with CMAKE_ARGS (default "-DGGML_NATIVE=ON
   -DLLAVA_BUILD=OFF"); the wheel is kept under --cache and reused.
2. converts each model directory to GGUF (f32) with the sdist's
   vendor/llama.cpp/convert_hf_to_gguf.py and quantizes it to Q8_0 and Q4_0
   with llama_model_quantize, every matrix to the one type (`pure`), as
   lora-moe's --quantize does.
3. writes 4 random PEFT LoRA adapters per model (r = 16 on q, k, v, o, gate, up
   and down, fixed seeds, non-zero B) and converts them with the sdist's
   convert_lora_to_gguf.py (f32).
4. measures, --rounds times, each model x {Q8_0, Q4_0} x {0, 1, 2, 4 experts
   with equal weights summing to 1}: `lora-moe bench --merge off --kv-cache f16`
   (f16 is llama.cpp's default KV cache type) next to llama.cpp (alternating which goes first), plus lora-moe `--merge on` with 4
   experts; then lora-moe float32 and transformers + peft (float32, fewer
   decode tokens) with 0 and 4 experts.
5. prints markdown tables of the medians over rounds and the ratios the
   project targets, and writes every raw measurement to --json.

Generated files (GGUF models, adapters, the wheel, prompts) go to --cache
(default /tmp/lora-moe-bench), outside the repository. Every engine runs with
--threads compute threads (default 2).
"""

import argparse
import datetime
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
REQUIREMENTS = BENCH / "requirements.txt"
DEFAULT_MODELS = ["smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct"]
QUANTS = [("q8_0", "q8"), ("q4_0", "q4")]  # (GGUF type, lora-moe --quantize)
EXPERT_COUNTS = [0, 1, 2, 4]
ADAPTER_COUNT = 4
MB = 1e6

# The prompt text of `lora-moe bench` (Sources/lora-moe/BenchCommand.swift,
# benchmarkPrompt): tokenized without special tokens and repeated, so every
# engine sees the same token ids.
BENCH_TEXT = (
    "The history of the river valley begins with the farmers who settled its banks, built terraces "
    "on the hills and traded grain with the towns downstream. Over the centuries the bridges, mills "
    "and markets they built shaped the roads that travellers still follow today."
)


def log(message):
    print(f"[{datetime.datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def run_command(command, env=None, capture=True, log_file=None):
    """Run `command`; return (stdout, wall seconds, child CPU seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    if log_file is not None:
        with open(log_file, "w") as stream:
            result = subprocess.run(command, env=env, stdout=stream, stderr=subprocess.STDOUT, text=True)
    else:
        result = subprocess.run(command, env=env, stdout=subprocess.PIPE if capture else None,
                                stderr=subprocess.PIPE if capture else None, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if result.returncode != 0:
        detail = f"see {log_file}" if log_file is not None else (result.stderr or "")[-2000:]
        raise RuntimeError(f"command failed with exit status {result.returncode}: {' '.join(map(str, command))}\n{detail}")
    return (result.stdout if capture and log_file is None else ""), wall, cpu


# ---------------------------------------------------------------- setup


def read_pins():
    pins = {}
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.strip()] = version.strip()
    return pins


def installed_version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def ensure_llama_cpp(cache, cmake_args):
    """Install the pinned benchmark packages; return (llama-cpp-python version, sdist source dir)."""
    pins = read_pins()
    pinned_version = pins.pop("llama-cpp-python")
    missing = [f"{name}=={version}" for name, version in pins.items() if installed_version(name) != version]
    if missing:
        log(f"installing {' '.join(missing)}")
        run_command([sys.executable, "-m", "pip", "install", "--quiet", *missing], capture=False)

    sdist_dir = cache / "sdist"
    sdist = sdist_dir / f"llama_cpp_python-{pinned_version}.tar.gz"
    if not sdist.exists():
        log(f"downloading the llama-cpp-python {pinned_version} sdist")
        run_command([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", "llama-cpp-python",
                     "-d", str(sdist_dir), f"llama-cpp-python=={pinned_version}"], capture=False)
    source = cache / "src" / f"llama_cpp_python-{pinned_version}"
    if not (source / "vendor" / "llama.cpp" / "convert_hf_to_gguf.py").exists():
        log(f"unpacking {sdist.name}")
        with tarfile.open(sdist) as archive:
            archive.extractall(cache / "src", filter="data")

    if installed_version("llama-cpp-python") != pinned_version:
        # The wheel depends on CMAKE_ARGS, so the cache keys on them.
        key = hashlib.sha256(cmake_args.encode()).hexdigest()[:12]
        wheel_dir = cache / "wheels" / key
        wheels = sorted(wheel_dir.glob(f"llama_cpp_python-{pinned_version}-*.whl"))
        if not wheels:
            log(f"building llama-cpp-python {pinned_version} from source (CMAKE_ARGS={cmake_args!r}); this takes 10-20 minutes on 2 cores")
            env = dict(os.environ, CMAKE_ARGS=cmake_args, CMAKE_BUILD_PARALLEL_LEVEL=str(os.cpu_count() or 2))
            # Put the venv's cmake and ninja on PATH for the build without isolation.
            env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
            wheel_dir.mkdir(parents=True, exist_ok=True)
            run_command([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheel_dir), str(sdist)],
                        env=env, log_file=cache / "llama-cpp-python-build.log")
            wheels = sorted(wheel_dir.glob(f"llama_cpp_python-{pinned_version}-*.whl"))
        log(f"installing {wheels[-1].name}")
        run_command([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--force-reinstall", str(wheels[-1])], capture=False)
    return pinned_version, source


def vendored_llama_cpp_commit(source, version):
    """Return the llama.cpp commit that the sdist's CHANGELOG.md names for `version`."""
    section = re.search(rf"^## \[{re.escape(version)}\](.*?)^## \[", (source / "CHANGELOG.md").read_text(), re.S | re.M)
    match = re.search(r"llama\.cpp@([0-9a-f]{7,40})", section.group(1)) if section else None
    return match.group(1) if match else "unknown"


def convert_models(models, source, cache):
    """Write f32, Q8_0 and Q4_0 GGUF files; return {model: {type: path}}."""
    llama_cpp_dir = source / "vendor" / "llama.cpp"
    out_dir = cache / "gguf"
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for model in models:
        f32 = out_dir / f"{model.name}-f32.gguf"
        if not f32.exists():
            log(f"converting {model.name} to {f32}")
            partial = f32.with_suffix(".partial")
            run_command([sys.executable, str(llama_cpp_dir / "convert_hf_to_gguf.py"), str(model), "--outtype", "f32",
                         "--outfile", str(partial)], log_file=out_dir / f"{model.name}-convert.log")
            partial.rename(f32)
        files[model.name] = {"f32": f32}
        for gguf_type, _ in QUANTS:
            quantized = out_dir / f"{model.name}-{gguf_type}.gguf"
            if not quantized.exists():
                log(f"quantizing {f32.name} to {gguf_type}")
                partial = quantized.with_suffix(".partial")
                run_command([sys.executable, str(BENCH / "compare_llama_cpp.py"), "quantize", str(f32), str(partial), gguf_type])
                partial.rename(quantized)
            files[model.name][gguf_type] = quantized
    return files


def make_adapters(models, source, cache):
    """Write PEFT adapters and their GGUF conversions; return {model: [(peft dir, gguf path)]}."""
    convert_lora = source / "vendor" / "llama.cpp" / "convert_lora_to_gguf.py"
    adapters = {}
    for model in models:
        out = cache / "adapters" / model.name
        peft_dirs = [out / f"expert{index}" for index in range(ADAPTER_COUNT)]
        if not all((directory / "adapter_model.safetensors").exists() for directory in peft_dirs):
            log(f"writing {ADAPTER_COUNT} random LoRA adapters for {model.name}")
            run_command([sys.executable, str(BENCH / "compare_transformers.py"), "adapters", "--model", str(model),
                         "--out", str(out), "--count", str(ADAPTER_COUNT)])
        pairs = []
        for directory in peft_dirs:
            gguf = out / f"{directory.name}.gguf"
            if not gguf.exists():
                log(f"converting {directory} to {gguf.name}")
                partial = gguf.with_suffix(".partial")
                run_command([sys.executable, str(convert_lora), str(directory), "--base", str(model), "--outtype", "f32",
                             "--outfile", str(partial)], log_file=out / f"{directory.name}-convert.log")
                partial.rename(gguf)
            pairs.append((directory, gguf))
        adapters[model.name] = pairs
    return adapters


def write_prompt(model, count, cache):
    """Write the `lora-moe bench` prompt of `model` as a JSON list of token ids."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model / "tokenizer.json"))
    unit = tokenizer.encode(BENCH_TEXT, add_special_tokens=False).ids
    tokens = []
    while len(tokens) < count:
        tokens += unit
    path = cache / "prompts" / f"{model.name}-{count}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(tokens[:count]))
    return path


# ---------------------------------------------------------------- measurements


class Bench:
    def __init__(self, args, files, adapters, prompts):
        self.args = args
        self.files = files
        self.adapters = adapters
        self.prompts = prompts
        self.results = []  # one dict per measurement
        self.env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
                        OPENBLAS_NUM_THREADS=str(args.threads), TOKENIZERS_PARALLELISM="false")

    def record(self, round_index, engine, model, weights, experts, merge, measured, wall, cpu):
        # These keys replace lora-moe's own "model" (a directory name) and
        # "experts" (a list of adapter names).
        entry = {**measured, **dict(round=round_index, engine=engine, model=model, weights=weights, experts=experts,
                                    merge=merge, wall_s=wall, cpu_s=cpu, loadavg=os.getloadavg())}
        self.results.append(entry)
        log(f"round {round_index} {engine:12} {model} {weights} experts={experts}{' merged' if merge == 'on' else ''}: "
            f"prefill {measured['prefill_tps']:.1f} tok/s, decode {measured['decode_tps']:.1f} tok/s, "
            f"CPU {cpu / wall:.2f} of {self.args.threads} cores")

    def lora_moe(self, round_index, model, weights, quantize, experts, merge):
        args = self.args
        command = [str(args.lora_moe), "bench", "--model", str(args.models_dir / model), "--threads", str(args.threads),
                   "--prompt-tokens", str(args.prompt_tokens), "--gen-tokens", str(args.gen_tokens),
                   "--runs", str(args.runs), "--warmup", "1", "--json"]
        if quantize:
            # llama.cpp keeps its KV cache in f16 by default; the quantized
            # runs match it. The f32 runs (beside transformers) keep f32.
            command += ["--quantize", quantize, "--kv-cache", "f16"]
        if experts:
            command += ["--experts", ",".join(str(directory) for directory, _ in self.adapters[model][:experts]),
                        "--weights", ",".join([str(1 / experts)] * experts), "--merge", merge]
        output, wall, cpu = run_command(command, env=self.env)
        self.record(round_index, "lora-moe", model, weights, experts, merge, json.loads(output), wall, cpu)

    def llama_cpp(self, round_index, model, weights, experts):
        args = self.args
        command = [sys.executable, str(BENCH / "compare_llama_cpp.py"), "measure", "--model", str(self.files[model][weights]),
                   "--prompt-file", str(self.prompts[model]), "--gen-tokens", str(args.gen_tokens),
                   "--context", str(args.context), "--threads", str(args.threads), "--runs", str(args.runs), "--warmup", "1"]
        for _, gguf in self.adapters[model][:experts]:
            command += ["--lora", str(gguf)]
        if experts:
            command += ["--scales", ",".join([str(1 / experts)] * experts)]
        output, wall, cpu = run_command(command, env=self.env)
        self.record(round_index, "llama.cpp", model, weights, experts, "off", json.loads(output), wall, cpu)

    def transformers(self, round_index, model, experts):
        args = self.args
        command = [sys.executable, str(BENCH / "compare_transformers.py"), "measure", "--model", str(args.models_dir / model),
                   "--prompt-file", str(self.prompts[model]), "--gen-tokens", str(args.hf_gen_tokens),
                   "--threads", str(args.threads), "--runs", "1", "--warmup", "1"]
        for directory, _ in self.adapters[model][:experts]:
            command += ["--adapter", str(directory)]
        if experts:
            command += ["--weights", ",".join([str(1 / experts)] * experts)]
        output, wall, cpu = run_command(command, env=self.env)
        self.record(round_index, "transformers", model, "f32", experts, "off", json.loads(output), wall, cpu)

    def run_round(self, round_index):
        # Alternate which engine goes first, so a slow spell of the shared
        # machine does not always fall on the same engine.
        first_lora_moe = round_index % 2 == 0
        for model in self.args.model_names:
            for weights, quantize in QUANTS:
                for experts in EXPERT_COUNTS:
                    steps = [lambda: self.lora_moe(round_index, model, weights, quantize, experts, "off"),
                             lambda: self.llama_cpp(round_index, model, weights, experts)]
                    for step in (steps if first_lora_moe else reversed(steps)):
                        step()
                self.lora_moe(round_index, model, weights, quantize, ADAPTER_COUNT, "on")
            for experts in (0, ADAPTER_COUNT):
                steps = [lambda: self.lora_moe(round_index, model, "f32", None, experts, "off"),
                         lambda: self.transformers(round_index, model, experts)]
                for step in (steps if first_lora_moe else reversed(steps)):
                    step()


# ---------------------------------------------------------------- report


def median_of(results, key, **match):
    values = [entry[key] for entry in results if all(entry[name] == value for name, value in match.items())]
    return statistics.median(values) if values else None


def ratio(numerator, denominator):
    return numerator / denominator if numerator is not None and denominator else None


def cell(value, digits=1):
    return "–" if value is None else f"{value:.{digits}f}"


def rss_bound_bytes(model_dir, experts, adapters, context):
    """Peak RSS bound: model file + KV cache (f32) + 1.2 x adapter bytes + 150 MB."""
    config = json.loads((model_dir / "config.json").read_text())
    head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads") or config["num_attention_heads"]
    kv_cache = 2 * config["num_hidden_layers"] * kv_heads * head_dim * context * 4
    model_file = sum(path.stat().st_size for path in model_dir.glob("*.safetensors"))
    adapter_bytes = sum((directory / "adapter_model.safetensors").stat().st_size for directory, _ in adapters[:experts])
    return model_file + kv_cache + 1.2 * adapter_bytes + 150 * MB


def report(bench, args):
    results = bench.results
    lines = []
    lines.append(f"Medians over {args.rounds} rounds; each round's value is the median of {args.runs} runs after one warm-up "
                 f"run. Prompt {args.prompt_tokens} tokens, decode {args.gen_tokens} tokens, {args.threads} threads. "
                 f"Ratios in brackets are the targets. MB = 10^6 bytes.")
    lines.append("")
    lines.append("| model | weights | experts | lora-moe prefill tok/s | llama.cpp prefill tok/s | prefill ratio (≥ 0.8) "
                 "| lora-moe decode tok/s | llama.cpp decode tok/s | decode ratio (≥ 1.0) | lora-moe vs its base (≥ 0.9, merged ≥ 0.98) "
                 "| llama.cpp vs its base | lora-moe peak RSS MB | RSS bound MB | llama.cpp peak RSS MB |")
    lines.append("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for model in args.model_names:
        for weights, _ in QUANTS:
            base_ours = median_of(results, "decode_tps", engine="lora-moe", model=model, weights=weights, experts=0)
            base_theirs = median_of(results, "decode_tps", engine="llama.cpp", model=model, weights=weights, experts=0)
            for experts, merge in [(count, "off") for count in EXPERT_COUNTS] + [(ADAPTER_COUNT, "on")]:
                ours = dict(engine="lora-moe", model=model, weights=weights, experts=experts, merge=merge)
                theirs = dict(engine="llama.cpp", model=model, weights=weights, experts=experts)
                prefill_ours = median_of(results, "prefill_tps", **ours)
                prefill_theirs = median_of(results, "prefill_tps", **theirs)
                decode_ours = median_of(results, "decode_tps", **ours)
                decode_theirs = median_of(results, "decode_tps", **theirs)
                rss = median_of(results, "peak_rss_bytes", **ours)
                rss_theirs = median_of(results, "peak_rss_bytes", **theirs)
                bound = rss_bound_bytes(args.models_dir / model, experts, bench.adapters[model], args.prompt_tokens + args.gen_tokens)
                label = f"{experts} merged" if merge == "on" else str(experts)
                lines.append(
                    f"| {model} | {weights.upper()} | {label} | {cell(prefill_ours)} | {cell(prefill_theirs)} "
                    f"| {cell(ratio(prefill_ours, prefill_theirs), 2)} | {cell(decode_ours)} | {cell(decode_theirs)} "
                    f"| {cell(ratio(decode_ours, decode_theirs), 2)} | {cell(ratio(decode_ours, base_ours), 2)} "
                    f"| {cell(ratio(decode_theirs, base_theirs), 2)} | {cell(rss / MB if rss else None, 0)} "
                    f"| {cell(bound / MB, 0)} | {cell(rss_theirs / MB if rss_theirs else None, 0)} |")
    lines.append("")
    lines.append(f"transformers + peft runs float32 and decodes {args.hf_gen_tokens} tokens after the same prompt "
                 f"(lora-moe: {args.gen_tokens}); its adapters stay unmerged.")
    lines.append("")
    lines.append("| model | experts | transformers prefill tok/s | transformers decode tok/s | lora-moe F32 decode tok/s "
                 "| F32 ratio | lora-moe Q8_0 decode tok/s | Q8_0 ratio (≥ 10) | lora-moe F32 peak RSS MB | RSS bound MB "
                 "| transformers peak RSS MB |")
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for model in args.model_names:
        for experts in (0, ADAPTER_COUNT):
            hf = dict(engine="transformers", model=model, experts=experts)
            ours_f32 = dict(engine="lora-moe", model=model, weights="f32", experts=experts, merge="off")
            decode_hf = median_of(results, "decode_tps", **hf)
            decode_f32 = median_of(results, "decode_tps", **ours_f32)
            decode_q8 = median_of(results, "decode_tps", engine="lora-moe", model=model, weights="q8_0", experts=experts, merge="off")
            rss = median_of(results, "peak_rss_bytes", **ours_f32)
            rss_hf = median_of(results, "peak_rss_bytes", **hf)
            bound = rss_bound_bytes(args.models_dir / model, experts, bench.adapters[model], args.prompt_tokens + args.gen_tokens)
            lines.append(
                f"| {model} | {experts} | {cell(median_of(results, 'prefill_tps', **hf))} | {cell(decode_hf, 2)} "
                f"| {cell(decode_f32)} | {cell(ratio(decode_f32, decode_hf), 1)} | {cell(decode_q8)} "
                f"| {cell(ratio(decode_q8, decode_hf), 1)} | {cell(rss / MB if rss else None, 0)} | {cell(bound / MB, 0)} "
                f"| {cell(rss_hf / MB if rss_hf else None, 0)} |")
    lines.append("")
    lines.append(f"CPU use of each measuring process, CPU seconds / wall seconds (at most {args.threads}), load included:")
    lines.append("")
    for engine in ("lora-moe", "llama.cpp", "transformers"):
        shares = [entry["cpu_s"] / entry["wall_s"] for entry in results if entry["engine"] == engine]
        if shares:
            lines.append(f"- {engine}: median {statistics.median(shares):.2f}, min {min(shares):.2f}, max {max(shares):.2f}")
    return "\n".join(lines)


def uptime():
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lora-moe", type=Path, default=Path("/tmp/bench-build/release/lora-moe"),
                        help="release lora-moe executable (default /tmp/bench-build/release/lora-moe)")
    parser.add_argument("--models-dir", type=Path, default=REPO / "models", help="directory of the model directories")
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated model directory names")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/lora-moe-bench"),
                        help="directory for the wheel, GGUF files, adapters and prompts (default /tmp/lora-moe-bench)")
    parser.add_argument("--cmake-args", default="-DGGML_NATIVE=ON -DLLAVA_BUILD=OFF",
                        help="CMAKE_ARGS for the llama-cpp-python build (default: native CPU, no multimodal library)")
    parser.add_argument("--threads", type=int, default=2, help="compute threads of every engine (default 2)")
    parser.add_argument("--prompt-tokens", type=int, default=512, help="prompt length in tokens (default 512)")
    parser.add_argument("--gen-tokens", type=int, default=128, help="decode steps for lora-moe and llama.cpp (default 128)")
    parser.add_argument("--hf-gen-tokens", type=int, default=32, help="decode steps for transformers + peft (default 32)")
    parser.add_argument("--context", type=int, default=1024, help="llama.cpp n_ctx (default 1024)")
    parser.add_argument("--rounds", type=int, default=3, help="passes over every configuration (default 3)")
    parser.add_argument("--runs", type=int, default=2, help="measured runs per configuration and round (default 2)")
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    parser.add_argument("--json", type=Path, help="write every measurement and the run's metadata to this file")
    parser.add_argument("--setup-only", action="store_true", help="install, convert and write adapters, then stop")
    args = parser.parse_args()
    args.model_names = [name for name in args.models.split(",") if name]
    for name in args.model_names:
        if not (args.models_dir / name / "config.json").exists():
            parser.error(f"model directory {args.models_dir / name} not found; run scripts/fetch-models.sh")
    if not args.setup_only and not os.access(args.lora_moe, os.X_OK):
        parser.error(f"--lora-moe {args.lora_moe} is not an executable; build it with "
                     "swift build -c release --product lora-moe --scratch-path /tmp/bench-build")
    return args


def main():
    args = parse_args()
    if Path(sys.prefix).resolve() != (REPO / ".venv").resolve():
        log(f"warning: running outside {REPO / '.venv'}; packages go to {sys.prefix}")
    args.cache.mkdir(parents=True, exist_ok=True)
    started = time.time()
    uptime_before = uptime()
    log(f"uptime: {uptime_before}")

    version, source = ensure_llama_cpp(args.cache, args.cmake_args)
    commit = vendored_llama_cpp_commit(source, version)
    models = [args.models_dir / name for name in args.model_names]
    files = convert_models(models, source, args.cache)
    adapters = make_adapters(models, source, args.cache)
    prompts = {model.name: write_prompt(model, args.prompt_tokens, args.cache) for model in models}
    info = json.loads(run_command([sys.executable, str(BENCH / "compare_llama_cpp.py"), "info"])[0])
    log(f"llama-cpp-python {version}, llama.cpp {commit}; ggml: {info['system_info']}")
    if args.setup_only:
        return

    bench = Bench(args, files, adapters, prompts)
    uptime_rounds = []
    for round_index in range(args.rounds):
        uptime_rounds.append(uptime())
        log(f"round {round_index + 1} of {args.rounds}; uptime: {uptime_rounds[-1]}")
        bench.run_round(round_index)
    uptime_after = uptime()
    log(f"uptime: {uptime_after}")

    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model_name = re.search(r"Model name:\s*(.+)", lscpu)
    metadata = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "minutes": (time.time() - started) / 60,
        "cpu": model_name.group(1).strip() if model_name else platform.processor(),
        "uptime_before": uptime_before, "uptime_rounds": uptime_rounds, "uptime_after": uptime_after,
        "llama_cpp_python": version, "llama_cpp_commit": commit, "cmake_args": args.cmake_args,
        "ggml_system_info": info["system_info"],
        "torch": installed_version("torch"), "transformers": installed_version("transformers"),
        "peft": installed_version("peft"), "python": platform.python_version(),
        "lora_moe": str(args.lora_moe), "arguments": sys.argv[1:],
        "gguf_bytes": {model: {kind: path.stat().st_size for kind, path in kinds.items()} for model, kinds in files.items()},
    }
    tables = report(bench, args)
    header = (f"{metadata['date']}, {metadata['cpu']}, {metadata['minutes']:.0f} minutes; llama-cpp-python {version} "
              f"(llama.cpp {commit}), torch {metadata['torch']}, transformers {metadata['transformers']}, peft {metadata['peft']}\n"
              f"uptime before: {uptime_before}\nuptime after:  {uptime_after}\n")
    print(header)
    print(tables)
    if args.markdown:
        args.markdown.write_text(header + "\n" + tables + "\n")
    if args.json:
        args.json.write_text(json.dumps({"metadata": metadata, "results": bench.results}, indent=1))


if __name__ == "__main__":
    main()
