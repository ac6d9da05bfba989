"""Generated web-like documents for the quality tests and bench: prose, lists, forums, shops, spam,
repeated blocks, code, lorem ipsum, hashtags and other-script pages, each with random knobs so documents
fall on both sides of every published threshold. Deterministic for a seed."""

from __future__ import annotations

import random

from .texts import LOREM, SENTENCES

_SUBJECTS = ["the committee", "our neighbour", "a young engineer", "the old bakery", "most visitors",
             "the city council", "my grandmother", "the research team", "a local farmer", "the new manager",
             "every student", "the small museum", "their youngest son", "the regional bank", "two nurses",
             "the football club", "a retired teacher", "the night train", "the village choir", "this company",
             "Maria", "Dr. Patel", "the U.S. office", "our family", "the author", "the health ministry"]
_VERBS = ["published", "repaired", "discussed", "ignored", "painted", "described", "sold", "borrowed",
          "measured", "planted", "cancelled", "explained", "rebuilt", "visited", "translated", "reviewed",
          "ordered", "tested", "organised", "photographed", "delivered", "replaced", "studied", "questioned"]
_OBJECTS = ["the annual report", "an old wooden bridge", "the long-term budget", "a rare variety of apple",
            "the harbour walls", "several broken windows", "the winter timetable", "a map of the valley",
            "the results of the survey", "three hundred books", "the water supply", "a quiet garden",
            "the school's heating system", "an unusual request", "the missing letters", "the festival program",
            "a cheaper alternative", "the evening lectures", "our recycling plan", "the footpath by the river"]
_TAILS = ["last Tuesday", "after the storm", "in 2019", "for the third time", "without much fuss",
          "before the holidays", "at 6 a.m.", "despite the rain", "with great care", "under pressure",
          "in front of the station", "for about $1,200", "during the summer of 1998", "as planned",
          "on behalf of 14 families", "within 3.5 hours", "at the end of March", "because nobody else would"]
_CONNECT = ["However,", "Meanwhile,", "As a result,", "Later that week,", "In the end,", "Surprisingly,",
            "According to the report,", "Even so,", "For example,", "Not long after,"]
_REMARKS = ["It wasn't easy, but it worked.", "Nobody expected that.", "I don't think they'll stop now.",
            "That's what people remember.", "We're still waiting for an answer.", "Can you believe it?",
            "You'd be surprised how often that happens!", "It's worth a visit (really).",
            'She said: "we will see."', "The details are at www.example.org/report.", "Prices start at £15."]
_NAV = ["Home", "About us", "Contact", "Privacy Policy", "Terms of Use", "Login", "Sign in", "Subscribe",
        "Read more", "Share", "Next page", "Items in cart: 0", "Search", "Menu", "Archive", "FAQ"]
_BOILER = ["This website uses cookies to improve your experience.", "Please enable JavaScript to view this page.",
           "Copyright 2024 Example Media. All rights reserved.", "By continuing you accept our cookie policy.",
           "3 likes", "12 comments", "Posted by admin", "Click here to read more", "Add to cart",
           "Free shipping on orders over $50", "Follow us on social media"]
_SPAM_WORDS = ["cheap", "best", "buy", "online", "discount", "viagra", "casino", "loan", "free", "win",
               "deal", "offer", "click", "now", "bonus", "crypto", "sale", "price"]
_CODE = ["function init() {", "  var x = document.getElementById('main');", "  if (x) { x.hidden = false; }",
         "}", "for (let i = 0; i < 10; i++) {", "  console.log(i);", "}", "// javascript required"]
_OTHER = {"zh": "城市的老面包店每天早上六点开门，七点时排队的人已经到了公交车站。我们的导游解释说，这条河每隔几十年就会改道。",
          "ja": "角の古いパン屋は朝六時に開き、七時にはもう行列がバス停まで続いています。案内人によると、この川は大洪水のたびに流れを変えるそうです。",
          "th": "ร้านขนมปังเก่าตรงหัวมุมเปิดตอนหกโมงเช้า และพอเจ็ดโมงคิวก็ยาวไปถึงป้ายรถเมล์แล้ว"}


def _sentence(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.12:
        return rng.choice(_REMARKS)
    if r < 0.2:
        return rng.choice(SENTENCES["en"])
    s = f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_TAILS)}"
    if rng.random() < 0.3:
        s = f"{rng.choice(_CONNECT)} {s}"
    if rng.random() < 0.2:
        s += f", and {rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}"
    s = s[0].upper() + s[1:]
    return s + rng.choice([".", ".", ".", ".", "!", "?", "...", ""])


def _paragraph(rng: random.Random, n: int) -> str:
    return " ".join(_sentence(rng) for _ in range(n))


def _article(rng: random.Random, words: int) -> list[str]:
    lines = [f"{rng.choice(_SUBJECTS).title()} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}"]
    while sum(len(x.split()) for x in lines) < words:
        lines.append(_paragraph(rng, rng.randint(1, 6)))
        if rng.random() < 0.15:
            lines.append(rng.choice(_BOILER))
    return lines


def _listicle(rng: random.Random, words: int) -> list[str]:
    bullet = rng.choice(["- ", "• ", "* ", "1. "])
    lines = [f"Top tips: {rng.choice(_OBJECTS)}"]
    share = rng.random()
    while sum(len(x.split()) for x in lines) < words:
        if rng.random() < share:
            lines.append(bullet + " ".join(_sentence(rng).split()[: rng.randint(2, 12)]))
        else:
            lines.append(_sentence(rng))
    return lines


def _forum(rng: random.Random, words: int) -> list[str]:
    lines: list[str] = []
    while sum(len(x.split()) for x in lines) < words:
        r = rng.random()
        if r < 0.3:
            lines.append(" ".join(_sentence(rng).split()[: rng.randint(1, 6)]) + rng.choice(["...", "…", "", "?"]))
        elif r < 0.45:
            lines.append(rng.choice(["lol", "+1", "thanks!!", ":)", "same here", "bump", "Quote:"]))
        else:
            lines.append(_sentence(rng))
    return lines


def _shop(rng: random.Random, words: int) -> list[str]:
    lines = list(rng.sample(_NAV, rng.randint(3, 10)))
    while sum(len(x.split()) for x in lines) < words:
        r = rng.random()
        if r < 0.35:
            lines.append(rng.choice(_BOILER))
        elif r < 0.6:
            lines.append(f"{rng.choice(_OBJECTS).capitalize()} - ${rng.randint(2, 900)}.{rng.randint(0, 99):02d}")
        else:
            lines.append(_sentence(rng))
    lines.extend(rng.sample(_NAV, rng.randint(2, 6)))
    return lines


def _spam(rng: random.Random, words: int) -> list[str]:
    lines: list[str] = []
    tags = rng.random() < 0.5
    while sum(len(x.split()) for x in lines) < words:
        w = [rng.choice(_SPAM_WORDS) for _ in range(rng.randint(3, 15))]
        if tags:
            w = ["#" + x if rng.random() < 0.6 else x for x in w]
        lines.append(" ".join(w))
        if rng.random() < 0.3:
            lines.append(_sentence(rng))
    return lines


def _repeated(rng: random.Random, words: int) -> list[str]:
    block = _article(rng, max(20, words // rng.randint(2, 6)))
    lines: list[str] = []
    while sum(len(x.split()) for x in lines) < words:
        lines.extend(block if rng.random() < 0.7 else [_sentence(rng)])
    return lines


def _code(rng: random.Random, words: int) -> list[str]:
    lines = _article(rng, words // 2)
    pos = rng.randint(0, len(lines))
    return lines[:pos] + _CODE[: rng.randint(1, len(_CODE))] + lines[pos:]


def _lorem(rng: random.Random, words: int) -> list[str]:
    lines = _article(rng, words)
    lines.insert(rng.randint(0, len(lines)), LOREM)
    return lines


def _other(rng: random.Random, words: int) -> list[str]:
    lang = rng.choice(sorted(_OTHER))
    return [_OTHER[lang] * rng.randint(1, 3) for _ in range(max(1, words // 40))]


def _short(rng: random.Random, words: int) -> list[str]:
    return [_sentence(rng) for _ in range(rng.randint(1, 5))]


_KINDS = [("article", _article, 40), ("listicle", _listicle, 10), ("forum", _forum, 10), ("shop", _shop, 10),
          ("spam", _spam, 6), ("repeated", _repeated, 8), ("code", _code, 4), ("lorem", _lorem, 2),
          ("other", _other, 3), ("short", _short, 7)]


def generate_docs(n: int, seed: int = 7, mean_words: int = 586, min_words: int = 200,
                  max_words: int = 5000) -> list[dict]:
    """``n`` documents {id, kind, text, url}; lengths log-normal around ``mean_words`` within the bounds."""
    rng = random.Random(seed)
    # Short pages only when the caller allows documents under 50 words.
    kinds, fns, weights = zip(*[(k, f, w) for k, f, w in _KINDS if k != "short" or min_words < 50], strict=True)
    docs = []
    for i in range(n):
        k = rng.choices(range(len(kinds)), weights)[0]
        target = int(min(max_words, max(min_words, rng.lognormvariate(0, 0.8) * mean_words * 0.78)))
        lines = fns[k](rng, target)
        sep = rng.choice(["\n", "\n", "\n\n", "\n \n"])
        text = sep.join(lines)
        if rng.random() < 0.05:
            text = "\n" + text + "\n"
        docs.append({"id": f"gen-{seed}-{i:06d}", "kind": kinds[k], "text": text,
                     "url": f"https://www.site{rng.randint(1, 500)}.example.com/{kinds[k]}/{i}"})
    return docs


def labelled_docs(n: int, seed: int = 11, noise: float = 0.03, mean_words: int = 300) -> list[dict]:
    """``n`` documents {id, text, label} for training a quality classifier: half good prose (articles, label
    1) and half spam, shop boilerplate and keyword lists (label 0); a ``noise`` share of labels is flipped,
    as in real reference-vs-crawl data, so a perfect score is not expected."""
    rng = random.Random(seed)
    bad = [_spam, _shop, _listicle]
    docs = []
    for i in range(n):
        good = i % 2 == 0
        words = int(min(3000, max(40, rng.lognormvariate(0, 0.6) * mean_words)))
        lines = _article(rng, words) if good else rng.choice(bad)(rng, words)
        label = int(good) if rng.random() >= noise else int(not good)
        docs.append({"id": f"qlab-{seed}-{i:06d}", "text": "\n".join(lines), "label": label})
    return docs
