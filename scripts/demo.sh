#!/usr/bin/env bash
# Show a LoRA blend at work on SmolLM2-135M-Instruct: the base answer, one
# expert's answer, and a 70/30 blend of two experts, all greedy.
#
#   scripts/demo.sh ["PROMPT"]
#
# Fetches the model on first use (Python environment and model conversion,
# several minutes) and builds lora-moe in release mode. After the build the
# three answers take about 15 seconds on 2 CPU cores.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
model=models/smollm2-135m-instruct
experts=examples/experts
prompt=${1:-"What is the moon made of?"}

if [ ! -f "$model/model.safetensors" ]; then
    scripts/setup-python.sh
    scripts/fetch-models.sh smollm2-135m
fi

swift build -c release --product lora-moe
lora_moe="$(swift build -c release --show-bin-path)/lora-moe"

generate() {
    "$lora_moe" generate --model "$model" --prompt "$prompt" --temperature 0 --max-tokens 80 "$@"
}

echo
echo "prompt: $prompt"
echo
echo "=== base model ==="
generate
echo
echo "=== expert: pirate ==="
generate --experts "pirate=$experts/pirate"
echo
echo "=== blend: 70% pirate + 30% brief (pirate speak, one short sentence) ==="
generate --experts "pirate=$experts/pirate,brief=$experts/brief" --weights 0.7,0.3
