"""Call a running `lora-moe serve` with the official openai Python client.

Runs a chat completion, the same chat streamed, a text completion and a
chat with a per-request blend in the `experts` extension field, and prints
one JSON object with the texts so a test can compare them with the CLI's.

Usage: python scripts/server/openai_client_check.py BASE_URL
"""

import json
import sys

from openai import OpenAI


def main() -> None:
    client = OpenAI(base_url=sys.argv[1] + "/v1", api_key="unused", max_retries=0, timeout=120)
    messages = [{"role": "user", "content": "Name three animals."}]
    sampling = {"temperature": 0.9, "seed": 11, "max_tokens": 16}

    chat = client.chat.completions.create(model="a:0.7+b:0.3", messages=messages, **sampling)
    streamed = client.chat.completions.create(model="a:0.7+b:0.3", messages=messages, stream=True, **sampling)
    streamed_text = "".join(chunk.choices[0].delta.content or "" for chunk in streamed if chunk.choices)
    completion = client.completions.create(model="base", prompt="The capital of France is", max_tokens=6, temperature=0)
    extension = client.chat.completions.create(
        model="base", messages=messages, extra_body={"experts": {"b": 1.0}}, **sampling)
    models = [model.id for model in client.models.list()]

    print(json.dumps({
        "chat": chat.choices[0].message.content,
        "chat_finish_reason": chat.choices[0].finish_reason,
        "chat_usage": chat.usage.completion_tokens,
        "streamed": streamed_text,
        "completion": completion.choices[0].text,
        "extension": extension.choices[0].message.content,
        "models": models,
    }))


if __name__ == "__main__":
    main()
