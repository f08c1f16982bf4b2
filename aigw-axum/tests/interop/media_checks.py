"""Images, audio, rerank and tokenize through the gateway with the official SDKs:
`openai` (images.generate, audio.speech.with_streaming_response, audio.transcriptions
and audio.translations with a WAV file generated here) and `cohere` (v2.rerank).

Usage: media_checks.py BASE_URL CHECK... ; prints one JSON object of results."""
import io
import json
import math
import struct
import sys
import wave

import cohere
import openai
import requests

BASE = sys.argv[1]
oa = openai.OpenAI(base_url=BASE + "/v1", api_key="client-key", max_retries=0, timeout=30)


def wav_file(seconds=0.5, rate=16000):
    """A real RIFF/WAVE file: 16-bit mono, a 440 Hz tone."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        frames = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
                          for i in range(int(seconds * rate)))
        w.writeframes(frames)
    buf.seek(0)
    buf.name = "tone.wav"
    return buf


def images():
    r = oa.images.generate(model="gpt-image-1", prompt="a tiny square", n=1)
    return {"count": len(r.data), "png": r.data[0].b64_json.startswith("iVBORw0KGgo"),
            "output_tokens": r.usage.output_tokens if r.usage else None}


def speech():
    with oa.audio.speech.with_streaming_response.create(
            model="gpt-4o-mini-tts", voice="alloy", input="hello from the gateway") as r:
        audio = b"".join(r.iter_bytes())
        return {"status": r.status_code, "content_type": r.headers.get("content-type"),
                "id3": audio.startswith(b"ID3"), "has_text": b"hello from the gateway" in audio}


def speech_sse():
    with oa.audio.speech.with_streaming_response.create(
            model="gpt-4o-mini-tts", voice="alloy", input="stream these words please",
            stream_format="sse") as r:
        types = []
        for line in r.iter_lines():
            if line.startswith("data: "):
                types.append(json.loads(line[6:])["type"])
        return {"content_type": r.headers.get("content-type"), "first": types[0],
                "last": types[-1], "events": len(types)}


def transcription():
    r = oa.audio.transcriptions.create(model="whisper-1", file=wav_file())
    t = oa.audio.transcriptions.create(model="gpt-4o-mini-transcribe", file=wav_file())
    return {"text": r.text, "usage_type": r.usage.type, "seconds": r.usage.seconds,
            "total_tokens": t.usage.total_tokens if t.usage else None}


def translation():
    r = oa.audio.translations.create(model="whisper-1", file=wav_file(1.0),
                                     response_format="verbose_json")
    return {"text": r.text, "duration": r.duration}


def rerank():
    co = cohere.ClientV2(api_key="client-key", base_url=BASE + "/cohere")
    r = co.v2.rerank(model="rerank-v3.5", query="capital of France",
                     documents=["Berlin is in Germany", "Paris is the capital of France",
                                "Tokyo"], top_n=2)
    return {"order": [x.index for x in r.results], "units": r.meta.billed_units.search_units}


def tokenize():
    r = requests.post(BASE + "/tokenize", json={"model": "gpt-4o-mini", "prompt": "four words right here"},
                      headers={"authorization": "Bearer client-key"}, timeout=30)
    return {"status": r.status_code, "count": r.json().get("count")}


def unsupported():
    """An endpoint a backend does not serve: a 422 naming both."""
    try:
        oa.images.generate(model="claude-sonnet-4", prompt="x")
        return None
    except openai.APIStatusError as e:
        return {"status": e.status_code, "message": e.message}


CHECKS = {"images": images, "speech": speech, "speech_sse": speech_sse,
          "transcription": transcription, "translation": translation, "rerank": rerank,
          "tokenize": tokenize, "unsupported": unsupported}

if __name__ == "__main__":
    print(json.dumps({name: CHECKS[name]() for name in sys.argv[2:]}))
