"""Timing helpers shared by the peer-engine scripts (compare_llama_cpp.py and
compare_transformers.py), so both report the same fields the same way."""

import resource
import statistics


def peak_rss_bytes():
    # Linux reports ru_maxrss in kilobytes.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure_runs(run_once, prompt_tokens, gen_tokens, warmup, runs):
    """Call run_once() warmup + runs times; it returns (prefill_seconds,
    decode_seconds). Return the medians and every measured run's rates in
    tokens per second, and the process's peak RSS."""
    prefill_rates, decode_rates = [], []
    for index in range(warmup + runs):
        prefill_seconds, decode_seconds = run_once()
        if index >= warmup:
            prefill_rates.append(prompt_tokens / prefill_seconds)
            decode_rates.append(gen_tokens / decode_seconds)
    return {
        "prefill_tps": statistics.median(prefill_rates),
        "decode_tps": statistics.median(decode_rates),
        "prefill_tps_runs": prefill_rates,
        "decode_tps_runs": decode_rates,
        "peak_rss_bytes": peak_rss_bytes(),
    }
