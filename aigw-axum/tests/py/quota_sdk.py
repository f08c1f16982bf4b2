"""Spends QuotaPolicy budgets through the official OpenAI Python SDK.

argv[1] is a JSON plan: {"cases": [{"name", "urls", "model", "headers", "stream",
"max", "pause"}]}. Each case sends chat completions (alternating between its base
URLs) until the gateway answers 429 or `max` requests succeeded, and reports how many
succeeded, the tokens they used and the refusal as the SDK raised it.
"""

import json
import sys
import time

import openai


def run(case):
    spent, ok, refused = 0, 0, None
    for i in range(case.get("max", 60)):
        url = case["urls"][i % len(case["urls"])]
        client = openai.OpenAI(
            base_url=url + "/v1",
            api_key="sk-client",
            max_retries=0,
            default_headers=case.get("headers", {}),
        )
        messages = [{"role": "user", "content": "count these five words please"}]
        try:
            if case.get("stream"):
                used = 0
                for chunk in client.chat.completions.create(
                    model=case["model"], messages=messages, stream=True
                ):
                    if chunk.usage is not None:
                        used = chunk.usage.total_tokens
                spent += used
            else:
                r = client.chat.completions.create(model=case["model"], messages=messages)
                spent += r.usage.total_tokens
            ok += 1
        except openai.RateLimitError as e:
            refused = {
                "status": e.status_code,
                "code": getattr(e, "code", None),
                "type": getattr(e, "type", None),
                "message": e.message,
                "retry_after": e.response.headers.get("retry-after"),
            }
            break
        time.sleep(case.get("pause", 0))
    return {"ok": ok, "spent": spent, "refused": refused}


def main():
    plan = json.loads(sys.argv[1])
    print(json.dumps({c["name"]: run(c) for c in plan["cases"]}))


if __name__ == "__main__":
    main()
