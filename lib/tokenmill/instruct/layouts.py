"""The layouts users' instruction datasets come in, each mapped onto our canonical formats (formats.py).

A layout turns one input record (a JSON line, a Parquet row) into a *conversation*: some of `messages`,
`prompt`/`chosen`/`rejected`, `question`/`answer`/`solution`; `project` then gives the row of the method
being prepared. A record that cannot be mapped raises `Bad(reason, detail)`: the reader turns it into a
counted removal naming the row (or an error naming file and line with `on_error: raise`).

OASST1's message trees span many rows; `oasst1_threads` builds their threads after a keyed shuffle.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .formats import ROLE_ALIASES
from .templates import TemplateError, parse

Message = dict[str, str]


class Bad(Exception):
    """A record that cannot be mapped: ``reason`` (a short code, counted) and ``detail`` (for the log)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass
class Conversation:
    messages: list[Message] | None = None
    prompt: list[Message] | None = None
    chosen: list[Message] | None = None
    rejected: list[Message] | None = None
    question: str | None = None
    answer: str | None = None
    solution: str | None = None
    notes: dict[str, str] = field(default_factory=dict)  # kept in `meta` (e.g. prompt_not_shared)


@dataclass(frozen=True)
class MapOptions:
    """How records are mapped: the layout, renamed fields, the template of `text` rows, GRPO answers, and
    the score margin that makes a preference pair from scored completions."""

    layout: str
    fields: dict[str, str] = field(default_factory=dict)
    template: str = "auto"
    answer_from: str = "auto"  # field | boxed | hashes | last_number | auto
    margin: float = 0.0

    def name(self, key: str) -> str:
        return self.fields.get(key, key)


# ---- messages -------------------------------------------------------------------------------------------

def _content(value: Any, where: str) -> str:
    """A turn's content as a string: OpenAI-style typed parts ({"type": "text", "text": ...}) are joined."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, list) and all(isinstance(p, dict) for p in value):
        texts = []
        for part in value:
            kind = part.get("type", "text")
            if kind != "text" or not isinstance(part.get("text"), str):
                raise Bad("non_text_content", f"{where}: a content part of type {kind!r} (only text parts are kept)")
            texts.append(part["text"])
        return "\n".join(texts)
    raise Bad("non_string_content", f"{where}: content is a {type(value).__name__}, not a string")


def to_message(m: Any, where: str, role_key: str = "role", content_key: str = "content") -> Message:
    """One turn in our form; ShareGPT's from/value and known role aliases are understood, an unknown role is
    kept as written (validation reports it)."""
    if not isinstance(m, dict):
        raise Bad("bad_message", f"{where} is a {type(m).__name__}, not an object")
    role = m.get(role_key, m.get("from", m.get("role")))
    if role is None:
        raise Bad("missing_role", f"{where} has no {role_key!r}")
    if not isinstance(role, str):
        raise Bad("bad_message", f"{where}: role is a {type(role).__name__}")
    if content_key in m:
        raw = m[content_key]
    else:
        raw = m.get("value", m.get("text", m.get("content")))
    return {"role": ROLE_ALIASES.get(role.strip().lower(), role), "content": _content(raw, where)}


def to_messages(value: Any, field_name: str, default_role: str = "user") -> list[Message]:
    """A message list from a list of turns, or from a plain string (one turn of ``default_role``)."""
    if isinstance(value, str):
        return [{"role": default_role, "content": value}]
    if isinstance(value, dict):  # a single turn
        return [to_message(value, f"{field_name}")]
    if not isinstance(value, list):
        raise Bad("bad_field", f"field {field_name!r} is a {type(value).__name__}, not a list of messages or a string")
    return [to_message(m, f"{field_name}[{i}]") for i, m in enumerate(value)]


def _get(record: dict, name: str, required: bool = True) -> Any:
    if name in record and record[name] is not None:
        return record[name]
    if "." in name:
        node: Any = record
        for part in name.split("."):
            if not isinstance(node, dict) or part not in node:
                node = None
                break
            node = node[part]
        if node is not None:
            return node
    if required:
        raise Bad("missing_field", f"field {name!r} is missing")
    return None


def _str(record: dict, name: str, required: bool = True) -> str | None:
    value = _get(record, name, required)
    if value is None:
        return None
    if not isinstance(value, str):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise Bad("bad_field", f"field {name!r} is a {type(value).__name__}, not a string")
    return value


def _with_system(record: dict, opts: MapOptions, messages: list[Message]) -> list[Message]:
    system = _str(record, opts.name("system"), required=False)
    if system and system.strip() and not (messages and messages[0]["role"] == "system"):
        return [{"role": "system", "content": system}, *messages]
    return messages


# ---- answers --------------------------------------------------------------------------------------------

def boxed(text: str) -> str | None:
    r"""The content of the last `\boxed{...}` (or `\fbox{...}`), braces balanced: MATH's final answers."""
    at = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if at < 0:
        return None
    start = text.find("{", at)
    if start < 0:
        rest = text[at + len("\\boxed"):].strip()  # `\boxed 5`
        return rest.split("$")[0].strip() or None
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1:i].strip()
    return None


def after_hashes(text: str) -> str | None:
    """GSM8K's final answer: what follows `####`, thousands separators removed."""
    if "####" not in text:
        return None
    value = text.rsplit("####", 1)[1].strip()
    return re.sub(r"(?<=\d),(?=\d{3}\b)", "", value) or None


_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?")
_THE_ANSWER = re.compile(r"(?:the (?:final )?answer is|answer:)\s*\$?([^\n$]+?)\$?\s*\.?\s*$", re.I | re.M)


def last_number(text: str) -> str | None:
    found = _NUMBER.findall(text)
    return re.sub(r"(?<=\d),(?=\d{3}\b)", "", found[-1]).rstrip(".") if found else None


def extract_answer(text: str | None, how: str) -> str | None:
    """The verifiable answer in a worked solution: by ``how`` (boxed, hashes, last_number), or "auto":
    a boxed answer, else GSM8K's `####`, else an explicit "The answer is ..." line."""
    if not text:
        return None
    if how == "boxed":
        return boxed(text)
    if how == "hashes":
        return after_hashes(text)
    if how == "last_number":
        return last_number(text)
    found = boxed(text) or after_hashes(text)
    if found:
        return found
    match = _THE_ANSWER.findall(text)
    return match[-1].strip() if match else None


# ---- layouts --------------------------------------------------------------------------------------------

def _messages(record: dict, opts: MapOptions) -> Conversation:
    name = opts.name("messages")
    value = _get(record, name)
    return Conversation(messages=_with_system(record, opts, to_messages(value, name)))


def _sharegpt(record: dict, opts: MapOptions) -> Conversation:
    name = opts.fields.get("messages", "conversations")
    value = _get(record, name)
    if not isinstance(value, list):
        raise Bad("bad_field", f"field {name!r} is a {type(value).__name__}, not a list of turns")
    turns = [to_message(m, f"{name}[{i}]", "from", "value") for i, m in enumerate(value)]
    return Conversation(messages=_with_system(record, opts, turns))


def _alpaca(record: dict, opts: MapOptions) -> Conversation:
    instruction = _str(record, opts.name("instruction"))
    extra = _str(record, opts.name("input"), required=False)
    output = _str(record, opts.name("output"))
    user = instruction + (f"\n\n{extra}" if extra and extra.strip() else "")
    return Conversation(messages=_with_system(record, opts, [{"role": "user", "content": user},
                                                             {"role": "assistant", "content": output}]))


def _strings(record: dict, key: str, required: bool = True) -> list[str]:
    value = _get(record, key, required=required)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Bad("not_a_string_list", f"field {key!r} is not a list of strings")
    return value


def _personachat(record: dict, opts: MapOptions) -> Conversation:
    """PersonaChat (truecased): the dialogue `history` so far, the true reply as the last of `candidates`
    (the ConvAI2 convention), and the replying speaker's `personality` as the system turn. Turns alternate,
    ending with the reply; "__ SILENCE __" (the partner said nothing) is left out."""
    history = _strings(record, opts.name("history"))
    candidates = _strings(record, opts.name("candidates"))
    if not candidates:
        raise Bad("no_reply", "`candidates` is empty: no true reply")
    turns = history + [candidates[-1]]
    n = len(turns)
    msgs = [{"role": "assistant" if (n - 1 - i) % 2 == 0 else "user", "content": t}
            for i, t in enumerate(turns) if t.strip() not in ("__ SILENCE __", "__ SILENCE __.")]
    persona = _strings(record, opts.name("personality"), required=False)
    if persona:
        msgs.insert(0, {"role": "system", "content": "Your persona: " + " ".join(persona)})
    return Conversation(messages=msgs)


def _blended_skill_talk(record: dict, opts: MapOptions) -> Conversation:
    """BlendedSkillTalk: the two seed utterances (`previous_utterance`), then the free speaker's and the
    guided speaker's messages alternating; the guided speaker (the one trained to blend skills) is the
    assistant, with its persona (second of `personas`) as the system turn."""
    seed = _strings(record, opts.name("previous_utterance"), required=False)
    free = _strings(record, opts.name("free_messages"))
    guided = _strings(record, opts.name("guided_messages"))
    msgs = [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(seed)]
    if len(seed) % 2:  # an odd seed ends with the free speaker's line: the guided speaker answers next
        msgs = msgs[1:] if msgs else msgs
    for user, reply in zip(free, guided, strict=False):
        msgs += [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]
    personas = _strings(record, opts.name("personas"), required=False)
    if len(personas) > 1 and personas[1].strip():
        msgs.insert(0, {"role": "system", "content": "Your persona: " + personas[1]})
    return Conversation(messages=msgs)


def _prompt_completion(record: dict, opts: MapOptions) -> Conversation:
    prompt = to_messages(_get(record, opts.name("prompt")), opts.name("prompt"), "user")
    completion = to_messages(_get(record, opts.name("completion")), opts.name("completion"), "assistant")
    return Conversation(messages=_with_system(record, opts, prompt + completion))


def _question_answer(record: dict, opts: MapOptions) -> Conversation:
    question = _str(record, opts.name("question"))
    answer = _str(record, opts.name("answer"))
    solution = _str(record, opts.name("solution"), required=False)
    how = "field" if opts.answer_from == "auto" else opts.answer_from
    final = answer if how == "field" else extract_answer(answer, how)
    reply = solution if solution else answer
    return Conversation(messages=[{"role": "user", "content": question}, {"role": "assistant", "content": reply}],
                        question=question, answer=final, solution=solution or (answer if final != answer else None))


def _gsm8k(record: dict, opts: MapOptions) -> Conversation:
    question = _str(record, opts.name("question"))
    worked = _str(record, opts.name("answer"))
    final = extract_answer(worked, "hashes" if opts.answer_from == "auto" else opts.answer_from)
    return Conversation(messages=[{"role": "user", "content": question}, {"role": "assistant", "content": worked}],
                        question=question, answer=final, solution=worked)


def _math(record: dict, opts: MapOptions) -> Conversation:
    problem = _str(record, opts.fields.get("question", "problem"))
    solution = _str(record, opts.name("solution"))
    final = extract_answer(solution, "boxed" if opts.answer_from == "auto" else opts.answer_from)
    return Conversation(messages=[{"role": "user", "content": problem}, {"role": "assistant", "content": solution}],
                        question=problem, answer=final, solution=solution)


def _split_prompt(chosen: list[Message], rejected: list[Message], conv: Conversation) -> Conversation:
    """Implicit-prompt preference data (full conversations in chosen and rejected): the shared turns before
    the last assistant turn are the prompt; conversations that do not share them are noted."""
    cut = max((i for i, m in enumerate(chosen) if m["role"] == "assistant"), default=len(chosen))
    prompt = chosen[:cut]
    if rejected[:cut] != prompt:
        conv.notes["prompt_not_shared"] = "true"
        shared = 0
        while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
            shared += 1
        cut = min(cut, shared)
        prompt = chosen[:cut]
    conv.prompt, conv.chosen, conv.rejected = prompt, chosen[cut:], rejected[cut:]
    return conv


def _preference(record: dict, opts: MapOptions) -> Conversation:
    chosen = to_messages(_get(record, opts.name("chosen")), opts.name("chosen"), "assistant")
    rejected = to_messages(_get(record, opts.name("rejected")), opts.name("rejected"), "assistant")
    raw_prompt = _get(record, opts.name("prompt"), required=False)
    conv = Conversation()
    if raw_prompt is None:  # TRL's implicit prompt: it is the shared start of both conversations
        return _split_prompt(chosen, rejected, conv)
    prompt = _with_system(record, opts, to_messages(raw_prompt, opts.name("prompt"), "user"))
    n = len(prompt)
    starts_c, starts_r = chosen[:n] == prompt, rejected[:n] == prompt
    if starts_c and starts_r:  # conversational form that repeats the prompt in both
        chosen, rejected = chosen[n:], rejected[n:]
    elif starts_c != starts_r:
        conv.notes["prompt_not_shared"] = "true"
    conv.prompt, conv.chosen, conv.rejected = prompt, chosen, rejected
    return conv


_HH_TURN = re.compile(r"\n\n(Human|Assistant):[ ]?")


def hh_turns(transcript: str, where: str) -> list[Message]:
    """An Anthropic HH transcript (`\\n\\nHuman: ... \\n\\nAssistant: ...`) as messages."""
    parts = _HH_TURN.split("\n\n" + transcript.lstrip("\n") if not transcript.startswith("\n\n") else transcript)
    if len(parts) < 3 or parts[0].strip():
        raise Bad("bad_transcript", f"{where}: not a '\\n\\nHuman: ... \\n\\nAssistant: ...' transcript")
    roles = {"Human": "user", "Assistant": "assistant"}
    return [{"role": roles[parts[i]], "content": parts[i + 1].strip()} for i in range(1, len(parts), 2)]


def _hh_rlhf(record: dict, opts: MapOptions) -> Conversation:
    chosen = hh_turns(_str(record, opts.name("chosen")), opts.name("chosen"))
    rejected = hh_turns(_str(record, opts.name("rejected")), opts.name("rejected"))
    return _split_prompt(chosen, rejected, Conversation())


def _ultrafeedback(record: dict, opts: MapOptions) -> Conversation:
    """Scored completions -> (best, worst) when their score differs by more than the margin; or the
    binarized layout (chosen_response / rejected_response with ratings)."""
    prompt = [{"role": "user", "content": _str(record, opts.fields.get("prompt", "instruction"))}]
    completions = _get(record, opts.name("completions"), required=False)
    if completions is not None:
        if not isinstance(completions, list):
            raise Bad("bad_field", f"field 'completions' is a {type(completions).__name__}, not a list")
        scored = []
        for i, c in enumerate(completions):
            if not isinstance(c, dict):
                raise Bad("bad_message", f"completions[{i}] is a {type(c).__name__}, not an object")
            score = c.get(opts.fields.get("score", "overall_score"))
            text = c.get(opts.fields.get("response", "response"))
            if isinstance(score, (int, float)) and isinstance(text, str):
                scored.append((float(score), i, text))
        if len(scored) < 2:
            raise Bad("no_pair", f"{len(scored)} scored completion(s); a pair needs two")
        best = max(scored, key=lambda s: (s[0], -s[1]))
        worst = min(scored, key=lambda s: (s[0], s[1]))
        c_text, r_text, c_score, r_score = best[2], worst[2], best[0], worst[0]
    else:
        c_text = _str(record, opts.fields.get("chosen", "chosen_response"))
        r_text = _str(record, opts.fields.get("rejected", "rejected_response"))
        c_score = _get(record, opts.fields.get("chosen_score", "chosen_rating"), required=False)
        r_score = _get(record, opts.fields.get("rejected_score", "rejected_rating"), required=False)
    if isinstance(c_score, (int, float)) and isinstance(r_score, (int, float)) and c_score - r_score <= opts.margin:
        raise Bad("no_margin", f"chosen score {c_score} - rejected score {r_score} <= margin {opts.margin}")
    conv = Conversation(prompt=prompt, chosen=[{"role": "assistant", "content": c_text}],
                        rejected=[{"role": "assistant", "content": r_text}])
    if isinstance(c_score, (int, float)):
        conv.notes.update(score_chosen=str(c_score), score_rejected=str(r_score))
    return conv


def _text(record: dict, opts: MapOptions) -> Conversation:
    text = _str(record, opts.name("text"))
    try:
        return Conversation(messages=parse(text, opts.template))
    except TemplateError as exc:
        raise Bad("unknown_template", str(exc)) from None


@dataclass(frozen=True)
class Layout:
    fn: Callable[[dict, MapOptions], Conversation]
    needs: tuple[str, ...]  # input fields that identify it (after `fields` renames)
    gives: tuple[str, ...]  # the methods it can feed
    why: str


LAYOUTS: dict[str, Layout] = {
    "oasst1": Layout(lambda r, o: Conversation(), ("message_id", "parent_id", "role", "text"), ("sft",),
                     "OASST1 message rows (message_id, parent_id, role, text): one thread per tree"),
    "sharegpt": Layout(_sharegpt, ("conversations",), ("sft",), "ShareGPT `conversations` of {from, value} turns"),
    "messages": Layout(_messages, ("messages",), ("sft", "grpo"), "a `messages` list of {role, content}"),
    "ultrafeedback": Layout(_ultrafeedback, ("instruction", "completions"), ("dpo", "sft"),
                            "UltraFeedback scored `completions`: best vs worst by score"),
    "ultrafeedback_binarized": Layout(_ultrafeedback, ("instruction", "chosen_response", "rejected_response"),
                                      ("dpo", "sft"), "binarized UltraFeedback (chosen_/rejected_response)"),
    "dpo": Layout(_preference, ("prompt", "chosen", "rejected"), ("dpo", "sft"), "`prompt`, `chosen`, `rejected`"),
    "hh_rlhf": Layout(_hh_rlhf, ("chosen", "rejected"), ("dpo", "sft"),
                      "`chosen`/`rejected` transcripts (\\n\\nHuman: / \\n\\nAssistant:) without a prompt"),
    "alpaca": Layout(_alpaca, ("instruction", "output"), ("sft",), "Alpaca `instruction`, `input`, `output`"),
    "gsm8k": Layout(_gsm8k, ("question", "answer"), ("grpo", "sft"), "GSM8K `question` and `answer` ending in '#### N'"),
    "math": Layout(_math, ("problem", "solution"), ("grpo", "sft"), "MATH `problem` and `solution` with \\boxed{}"),
    "prompt_completion": Layout(_prompt_completion, ("prompt", "completion"), ("sft",), "`prompt` and `completion`"),
    "question_answer": Layout(_question_answer, ("question", "answer"), ("grpo", "sft"), "`question` and `answer`"),
    "text": Layout(_text, ("text",), ("sft",), "one templated `text` (chatml, llama2 or alpaca markers)"),
    "personachat": Layout(_personachat, ("personality", "history", "candidates"), ("sft",),
                          "PersonaChat `history` + true reply (last of `candidates`), `personality`"),
    "blended_skill_talk": Layout(_blended_skill_talk, ("free_messages", "guided_messages"), ("sft",),
                                 "BlendedSkillTalk `free_messages` / `guided_messages` after `previous_utterance`"),
}

# A layout that refines another: when both match, the refinement is meant (not an ambiguity).
REFINES = {"gsm8k": {"question_answer"}, "dpo": {"hh_rlhf"}, "ultrafeedback_binarized": set(),
           "sharegpt": {"text"}, "messages": {"text"}, "alpaca": {"text"}, "oasst1": {"text"}}
# Layouts that are the canonical form of a method (nothing to convert).
CANONICAL = {"sft": {"messages"}, "dpo": {"dpo"}, "grpo": {"question_answer"}}


def project(conv: Conversation, use: str, answer_from: str = "auto") -> dict[str, Any]:
    """The canonical columns of ``use`` from a conversation (a missing part raises Bad)."""
    if use == "sft":
        if conv.messages is not None:
            return {"messages": conv.messages}
        if conv.chosen is not None:
            return {"messages": (conv.prompt or []) + conv.chosen}
        raise Bad("no_messages", "nothing to train on")
    if use == "dpo":
        if conv.chosen is None or conv.rejected is None:
            raise Bad("not_preference", "no chosen/rejected pair")
        return {"prompt": conv.prompt or [], "chosen": conv.chosen, "rejected": conv.rejected}
    if conv.question is not None:
        return {"question": conv.question, "answer": conv.answer, "solution": conv.solution}
    msgs = conv.messages or []
    users = [m["content"] for m in msgs if m["role"] == "user"]
    replies = [m["content"] for m in msgs if m["role"] == "assistant"]
    if not users:
        raise Bad("no_question", "no user turn to ask")
    solution = replies[-1] if replies else None
    return {"question": users[0], "answer": extract_answer(solution, answer_from), "solution": solution}


def flat_text(row: dict[str, Any], use: str) -> str:
    """All of a row's content, one turn per paragraph: what text stages see by default."""
    if use == "sft":
        parts = [m["content"] for m in row["messages"]]
    elif use == "dpo":
        parts = [m["content"] for key in ("prompt", "chosen", "rejected") for m in row[key]]
    else:
        parts = [row["question"], row["solution"] or row["answer"] or ""]
    return "\n\n".join(p for p in parts if p)


# ---- OASST1 trees ---------------------------------------------------------------------------------------

def oasst1_threads(rows: list[dict], paths: str = "best") -> list[tuple[str, list[Message], dict[str, str]]]:
    """Threads of one OASST1 tree: (leaf message id, messages root -> leaf, meta). ``paths`` "best" follows
    the best-ranked reply (rank 0; unranked replies after ranked ones) at each turn to one thread per tree;
    "all" gives one thread per leaf. Deleted messages and their subtrees are left out."""
    by_parent: dict[str | None, list[dict]] = {}
    for r in rows:
        if r.get("deleted"):
            continue
        by_parent.setdefault(r.get("parent_id"), []).append(r)
    roots = by_parent.get(None, [])
    out = []

    def order(children: list[dict]) -> list[dict]:
        return sorted(children, key=lambda c: (c.get("rank") is None, c.get("rank") or 0, c["message_id"]))

    def walk(node: dict, path: list[dict]) -> None:
        path = path + [node]
        children = order(by_parent.get(node["message_id"], []))
        if paths == "best" and children:
            walk(children[0], path)
            return
        if not children:
            messages = [{"role": ROLE_ALIASES.get(str(n.get("role")).lower(), str(n.get("role"))),
                         "content": n.get("text") or ""} for n in path]
            meta = {"tree_id": str(path[0].get("tree") or path[0].get("message_tree_id") or path[0]["message_id"]),
                    "lang": str(path[0].get("lang") or "")}
            out.append((node["message_id"], messages, {k: v for k, v in meta.items() if v}))
            return
        for child in children:
            walk(child, path)

    for root in sorted(roots, key=lambda r: r["message_id"]):
        walk(root, [])
    return out


# ---- detection ------------------------------------------------------------------------------------------

@dataclass
class Detected:
    layout: str | None
    why: str
    candidates: list[str]
    ambiguous: bool


def detect(sample: list[dict], use: str, fields: dict[str, str] | None = None) -> Detected:
    """Which layout a sample of records is in, for ``use``, and why (ambiguous when two unrelated layouts
    that can feed ``use`` both match)."""
    fields = fields or {}
    keys: set[str] = set()
    for record in sample:
        keys.update(k for k, v in record.items() if v is not None)
    renamed = {fields.get(k, k) for k in keys} | keys | set(fields)
    matched = [name for name, lay in LAYOUTS.items() if all(fields.get(n, n) in renamed for n in lay.needs)]
    # Content checks that tell look-alikes apart.
    first = next((r for r in sample if r), {})
    if "hh_rlhf" in matched and not isinstance(first.get(fields.get("chosen", "chosen")), str):
        matched.remove("hh_rlhf")
    if "hh_rlhf" in matched and "Human:" not in str(first.get(fields.get("chosen", "chosen"), "")):
        matched.remove("hh_rlhf")
    if "gsm8k" in matched and not any("####" in str(r.get(fields.get("answer", "answer"), "")) for r in sample):
        matched.remove("gsm8k")
    if "messages" in matched:
        value = first.get(fields.get("messages", "messages"))
        if isinstance(value, list) and value and isinstance(value[0], dict) and "from" in value[0]:
            matched.remove("messages")
            matched.insert(0, "sharegpt")
    refined = {r for m in matched for r in REFINES.get(m, set())}
    kept = [m for m in matched if m not in refined]
    fitting = [m for m in kept if use in LAYOUTS[m].gives]
    if not fitting:
        found = ", ".join(sorted(keys)) or "none"
        if kept:
            return Detected(None, f"the records look like {kept[0]} ({LAYOUTS[kept[0]].why}), which cannot feed "
                            f"{use}", kept, False)
        return Detected(None, f"no known layout matches the fields ({found})", [], False)
    chosen = fitting[0]
    return Detected(chosen, LAYOUTS[chosen].why, fitting, len(fitting) > 1)
