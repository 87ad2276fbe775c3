#!/usr/bin/env bash
# Measure what enabling AVX2/FMA/F16C in the release build is worth: builds
# lora-moe twice (default flags, and LORA_MOE_PORTABLE=1 for baseline
# x86-64) and runs the same greedy generation on SmolLM2-135M with each,
# printing the median prompt and decode speed of RUNS runs.
#
#   bench/build-flags.sh [RUNS]   (default 3; needs scripts/fetch-models.sh smollm2-135m)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
model=${LORA_MOE_MODELS:-models}/smollm2-135m-instruct
prompt="Explain in a few sentences why the sky is blue."

swift build -c release --product lora-moe >/dev/null
LORA_MOE_PORTABLE=1 swift build -c release --product lora-moe --scratch-path .build/portable >/dev/null

measure() { # LABEL BINARY
    local results=()
    for _ in $(seq "$runs"); do
        results+=("$("$2" generate --model "$model" --prompt "$prompt" --temperature 0 --max-tokens 128 \
            --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["prompt_tps"], d["generation_tps"])')")
    done
    printf '%s\n' "${results[@]}" | python3 -c '
import statistics, sys
rows = [tuple(map(float, line.split())) for line in sys.stdin if line.strip()]
print("%-28s prompt %7.1f tok/s   decode %6.1f tok/s   (median of %d)" % (
    sys.argv[1], statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows), len(rows)))' "$1"
}

measure "AVX2+FMA+F16C (default)" .build/release/lora-moe
measure "baseline x86-64 (portable)" .build/portable/release/lora-moe
