"""Measure `lora-moe serve` throughput with 1, 4 and 8 concurrent clients.

Starts the server on 127.0.0.1 with three experts, then for each client
count runs that many clients at once, each sending chat completions with
its own blend (8 different blends in all) for a fixed number of rounds.
Reports generated tokens per second over the wall time of each run, the
ratio to one client, and the median request latency.

Usage: python bench/serve_concurrency.py [--binary .build/release/lora-moe]
           [--model models/smollm2-135m-instruct] [--max-tokens 64] [--rounds 2]
"""

import argparse
import json
import re
import statistics
import subprocess
import threading
import time
import urllib.request

ADAPTERS = "Tests/Fixtures/real/smollm2-135m-instruct/adapters"
BLENDS = [
    {}, {"a": 1.0}, {"b": 1.0}, {"c": 1.0},
    {"a": 0.5, "b": 0.5}, {"a": 0.7, "c": 0.3}, {"b": 0.6, "c": -0.2}, {"a": 0.3, "b": 0.3, "c": 0.3},
]
PROMPTS = [
    "Describe a walk in the forest.", "Explain how rain forms.", "Write about a city at night.",
    "Tell me about the history of bread.", "Describe the ocean.", "Explain what a computer does.",
    "Write about a winter morning.", "Describe a busy market.",
]


def post(url, body):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.load(response)


def run_clients(base, clients, rounds, max_tokens):
    tokens = []
    latencies = []
    lock = threading.Lock()

    def client(index):
        for round_index in range(rounds):
            blend_index = (index + round_index * clients) % len(BLENDS)
            body = {
                "model": "base", "experts": BLENDS[blend_index],
                "messages": [{"role": "user", "content": PROMPTS[blend_index]}],
                "max_tokens": max_tokens, "temperature": 0.7, "seed": index,
                # Generate exactly max_tokens so every run does the same work.
                "stop": [],
            }
            start = time.perf_counter()
            result = post(base + "/v1/chat/completions", body)
            with lock:
                latencies.append(time.perf_counter() - start)
                tokens.append(result["usage"]["completion_tokens"])

    threads = [threading.Thread(target=client, args=(index,)) for index in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    return sum(tokens), elapsed, statistics.median(latencies)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=".build/release/lora-moe")
    parser.add_argument("--model", default="models/smollm2-135m-instruct")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--base-only", action="store_true", help="send every request to the base model (no experts)")
    parser.add_argument("--quantize", choices=["q8", "q4"], help="pass --quantize to the server")
    arguments = parser.parse_args()

    if arguments.base_only:
        BLENDS[:] = [{}] * len(BLENDS)
    experts = ",".join(f"{name}={ADAPTERS}/{name}" for name in "abc")
    command = [arguments.binary, "serve", "--model", arguments.model, "--experts", experts, "--port", "0", "--max-batch", "8"]
    if arguments.quantize:
        command += ["--quantize", arguments.quantize]
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        for line in server.stderr:
            match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
            if match:
                port = int(match.group(1))
                break
        if port is None:
            raise SystemExit("the server did not start")
        threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()
        base = f"http://127.0.0.1:{port}"

        run_clients(base, 1, 1, 8)  # warm-up
        rows = []
        for clients in (1, 4, 8):
            generated, elapsed, latency = run_clients(base, clients, arguments.rounds, arguments.max_tokens)
            rows.append((clients, generated, elapsed, generated / elapsed, latency))
        single = rows[0][3]
        print("| clients | generated tokens | wall s | tokens/s | vs 1 client | median latency s |")
        print("|---|---|---|---|---|---|")
        for clients, generated, elapsed, rate, latency in rows:
            print(f"| {clients} | {generated} | {elapsed:.1f} | {rate:.1f} | {rate / single:.2f}x | {latency:.2f} |")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
