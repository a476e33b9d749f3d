#!/usr/bin/env python3
"""The official `openai` Python client against `percept serve`: the API is only compatible if
an unmodified client can use it. Exits non-zero with a message on the first mismatch and prints
one JSON summary line on success.

    openai_client.py BASE_URL --image assets/images/coffee.png --audio assets/audio/jfk.wav
"""
import argparse
import base64
import json
import mimetypes
import sys

try:
    import openai
except ImportError:
    sys.exit("openai_client.py: the `openai` package is missing: python3 -m pip install openai")


def check(cond, what):
    if not cond:
        sys.exit(f"openai_client.py: {what}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base_url", help="http://IP:PORT of percept serve")
    ap.add_argument("--image", required=True)
    ap.add_argument("--audio", required=True)
    ap.add_argument("--max-tokens", type=int, default=12)
    ap.add_argument("--api-key", default="unused")
    a = ap.parse_args()

    client = openai.OpenAI(base_url=a.base_url.rstrip("/") + "/v1", api_key=a.api_key,
                           max_retries=0, timeout=120)
    summary = {"openai": openai.__version__}

    if a.api_key != "unused":
        wrong = openai.OpenAI(base_url=client.base_url, api_key=a.api_key + "-wrong", max_retries=0)
        try:
            wrong.models.list()
            check(False, "a wrong API key was accepted")
        except openai.AuthenticationError:
            summary["wrong_key"] = "refused with 401"

    listed = client.models.list().data
    models = [m.id for m in listed]
    check(models, "GET /v1/models listed no models")
    # percept tags each model with its kind (llm, speech, ...) in an extension field.
    kind = {m.id: ((m.model_extra or {}).get("percept") or {}).get("kind") for m in listed}
    whisper = next((m for m in models if kind[m] == "speech"), None)
    llm = next((m for m in models if kind[m] == "llm"), None)
    check(llm and whisper, f"no llm and speech model among {kind}")
    summary["models"] = models

    mime = mimetypes.guess_type(a.image)[0] or "image/png"
    with open(a.image, "rb") as f:
        data_url = f"data:{mime};base64,{base64.b64encode(f.read()).decode()}"
    chat = client.chat.completions.create(
        model=llm,
        max_tokens=a.max_tokens,
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": data_url}},
        ]}],
    )
    check(chat.object == "chat.completion", f"chat object is {chat.object!r}")
    check(chat.choices, "chat with an image returned no choices")
    answer = chat.choices[0].message.content or ""
    check(answer.strip(), "chat with an image returned an empty answer")
    check(chat.choices[0].finish_reason in ("stop", "length"), f"finish_reason {chat.choices[0].finish_reason!r}")
    check(chat.usage is None or chat.usage.completion_tokens <= a.max_tokens,
          f"{chat.usage.completion_tokens if chat.usage else '?'} tokens for max_tokens={a.max_tokens}")
    summary["image_answer"] = answer

    pieces, finish, chunks, extension = [], None, 0, None
    stream = client.chat.completions.create(
        model=llm,
        max_tokens=a.max_tokens,
        stream=True,
        messages=[{"role": "user", "content": "Name three colours."}],
    )
    for chunk in stream:
        chunks += 1
        check(chunk.object == "chat.completion.chunk", f"chunk object is {chunk.object!r}")
        if chunks == 1:
            extension = (chunk.model_extra or {}).get("percept")
        for choice in chunk.choices:
            if choice.delta.content:
                pieces.append(choice.delta.content)
            if choice.finish_reason:
                finish = choice.finish_reason
    streamed = "".join(pieces)
    check(streamed.strip(), "streamed chat gave no text")
    check(len(pieces) > 1, f"streamed chat came in {len(pieces)} piece(s), not token by token")
    check(finish in ("stop", "length"), f"streamed finish_reason {finish!r}")
    check(extension is not None, "the first chunk lacks the `percept` extension")
    summary["streamed"] = streamed
    summary["chunks"] = chunks

    with open(a.audio, "rb") as f:
        tr = client.audio.transcriptions.create(model=whisper or "whisper-1", file=f)
    check("country" in tr.text.lower(), f"transcript lacks 'country': {tr.text!r}")
    summary["transcript"] = tr.text
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
