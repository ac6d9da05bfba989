"""Chat templates: messages -> one training string and back, for the named templates we ship, and through a
tokenizer's own `chat_template` (`transformers` `apply_chat_template`) from a local directory.

Named templates: `chatml` (`<|im_start|>role ... <|im_end|>`), `llama2` (`<s>[INST] <<SYS>> ... [/INST] ...
</s>`, Meta's Llama-2-chat layout), `alpaca` (the Stanford Alpaca prompt with `### Instruction:` /
`### Response:` blocks). `parse` inverts `render` for each, so messages -> text -> messages round-trips.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

Message = dict[str, str]

TEMPLATES = ("chatml", "llama2", "alpaca")

ALPACA_PREAMBLE = ("Below is an instruction that describes a task. Write a response that appropriately "
                   "completes the request.")


class TemplateError(ValueError):
    """A conversation the template cannot express (e.g. llama2 with a tool turn), or text it did not write."""


def _chatml(messages: list[Message]) -> str:
    return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)


_CHATML = re.compile(r"<\|im_start\|>([^\n]*)\n(.*?)<\|im_end\|>\n?", re.S)


def _parse_chatml(text: str) -> list[Message]:
    found = [{"role": r, "content": c} for r, c in _CHATML.findall(text)]
    if not found:
        raise TemplateError("no <|im_start|> ... <|im_end|> turns")
    return found


def _pairs(messages: list[Message], template: str) -> tuple[str | None, list[tuple[str, str | None]]]:
    """(system, [(user, assistant or None)]) for templates that only know alternating user/assistant turns."""
    system = None
    rest = messages
    if rest and rest[0]["role"] == "system":
        system, rest = rest[0]["content"], rest[1:]
    pairs: list[tuple[str, str | None]] = []
    for i in range(0, len(rest), 2):
        user = rest[i]
        reply = rest[i + 1] if i + 1 < len(rest) else None
        if user["role"] != "user" or (reply is not None and reply["role"] != "assistant"):
            raise TemplateError(f"{template} needs an optional system turn then alternating user/assistant turns; "
                                f"got roles {[m['role'] for m in messages]}")
        pairs.append((user["content"], reply["content"] if reply else None))
    return system, pairs


def _llama2(messages: list[Message]) -> str:
    system, pairs = _pairs(messages, "llama2")
    out = []
    for i, (user, reply) in enumerate(pairs):
        if i == 0 and system is not None:
            user = f"<<SYS>>\n{system}\n<</SYS>>\n\n{user}"
        out.append(f"<s>[INST] {user} [/INST]" + (f" {reply} </s>" if reply is not None else ""))
    return "".join(out)


_LLAMA2 = re.compile(r"<s>\[INST\] (.*?) \[/INST\](?: (.*?) </s>)?", re.S)
_SYS = re.compile(r"\A<<SYS>>\n(.*?)\n<</SYS>>\n\n", re.S)


def _parse_llama2(text: str) -> list[Message]:
    out: list[Message] = []
    for i, (user, reply) in enumerate(_LLAMA2.findall(text)):
        if i == 0:
            sys_match = _SYS.match(user)
            if sys_match:
                out.append({"role": "system", "content": sys_match.group(1)})
                user = user[sys_match.end():]
        out.append({"role": "user", "content": user})
        if reply:
            out.append({"role": "assistant", "content": reply})
    if not out:
        raise TemplateError("no <s>[INST] ... [/INST] turns")
    return out


def _alpaca(messages: list[Message]) -> str:
    system, pairs = _pairs(messages, "alpaca")
    out = [system if system is not None else ALPACA_PREAMBLE]
    for user, reply in pairs:
        out.append(f"\n\n### Instruction:\n{user}\n\n### Response:\n")
        if reply is not None:
            out.append(reply)
    return "".join(out)


_ALPACA = re.compile(r"\n\n### Instruction:\n(.*?)\n\n(?:### Input:\n(.*?)\n\n)?### Response:\n(.*?)(?=\n\n### Instruction:\n|\Z)",
                     re.S)


def _parse_alpaca(text: str) -> list[Message]:
    start = text.find("\n\n### Instruction:\n")
    if start < 0:
        raise TemplateError("no '### Instruction:' block")
    out: list[Message] = []
    preamble = text[:start]
    if preamble != ALPACA_PREAMBLE and not preamble.startswith("Below is an instruction"):
        out.append({"role": "system", "content": preamble})
    for instruction, extra, reply in _ALPACA.findall(text[start:]):
        out.append({"role": "user", "content": instruction + (f"\n\n{extra}" if extra else "")})
        if reply:
            out.append({"role": "assistant", "content": reply})
    return out


RENDER: dict[str, Callable[[list[Message]], str]] = {"chatml": _chatml, "llama2": _llama2, "alpaca": _alpaca}
PARSE: dict[str, Callable[[str], list[Message]]] = {"chatml": _parse_chatml, "llama2": _parse_llama2,
                                                     "alpaca": _parse_alpaca}


def render(messages: list[Message], template: str, add_generation_prompt: bool = False) -> str:
    """``messages`` as one string in the named ``template``; with ``add_generation_prompt`` it ends where the
    assistant's reply starts (what a prompt-only string needs)."""
    text = RENDER[template](messages)
    if add_generation_prompt and template == "chatml":
        text += "<|im_start|>assistant\n"
    return text  # llama2 and alpaca already end at the reply after a final user turn


def detect(text: str) -> str | None:
    """Which named template wrote ``text`` (None: none of ours)."""
    if "<|im_start|>" in text:
        return "chatml"
    if "[INST]" in text:
        return "llama2"
    if "### Instruction:" in text:
        return "alpaca"
    return None


def parse(text: str, template: str = "auto") -> list[Message]:
    """The messages of a templated string (``template`` "auto": detected from its markers)."""
    name = detect(text) if template == "auto" else template
    if name is None:
        raise TemplateError("the text has none of the markers of chatml, llama2 or alpaca")
    return PARSE[name](text)


_HF_LOCK = threading.Lock()
_HF_CACHE: dict[tuple, object] = {}


def hf_tokenizer(path: str, shipped_name: str | None = None):
    """A `transformers` tokenizer with a chat template, loaded from a local directory once per process."""
    key = (path, shipped_name)
    with _HF_LOCK:
        tok = _HF_CACHE.get(key)
        if tok is None:
            import os

            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            from transformers import AutoTokenizer

            from ..io.artifacts import local_dir

            tok = AutoTokenizer.from_pretrained(local_dir(path, shipped_name, "tokenizer"), local_files_only=True)
            if not getattr(tok, "chat_template", None):
                from ..errors import ConfigError

                raise ConfigError(f"tokenizer {path!r} has no chat_template; use a named template "
                                  f"({', '.join(TEMPLATES)}) or a tokenizer that has one")
            _HF_CACHE[key] = tok
    return tok


def render_hf(messages: list[Message], tok, add_generation_prompt: bool = False) -> str:
    """``messages`` through the tokenizer's own chat template (as the model will see them in training)."""
    return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
