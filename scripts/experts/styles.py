"""Target styles of the demo experts: how a training answer is rewritten into
each style, and the metric that tells whether an output has the style.

Imported by make_data.py, train.py and bench/eval_experts.py, so it has no
command-line entry point. Every metric takes the generated text only.
"""

import json
import random
import re

STYLES = ("uppercase", "json", "pirate", "brief")

BRIEF_MAX_WORDS = 15

# Words and phrases that count as pirate speak. "be" and "me" are left out on
# purpose: plain English uses them constantly, so the base model would score.
PIRATE_TERMS = {
    "arr": r"\barr+\b",
    "matey": r"\bmateys?\b",
    "ye": r"\bye\b",
    "yer": r"\byer\b",
    "aye": r"\baye\b",
    "ahoy": r"\bahoy\b",
    "me hearty": r"\bme hearties\b|\bme hearty\b",
    "avast": r"\bavast\b",
    "landlubber": r"\blandlubbers?\b",
    "doubloons": r"\bdoubloons?\b",
}
PIRATE_MIN_TERMS = 2

# Openers of the pirate training targets. Each contains two PIRATE_TERMS.
PIRATE_OPENERS = ("Arr, matey!", "Ahoy, matey!", "Arr, me hearty!", "Aye, matey!", "Ahoy, me hearty!")
# Whole-word substitutions, applied case-insensitively with the case of the
# original word kept ("You" becomes "Ye").
PIRATE_WORDS = {
    "you": "ye", "your": "yer", "yours": "yers", "yourself": "yerself", "my": "me",
    "yes": "aye", "hello": "ahoy", "hi": "ahoy", "friend": "matey", "friends": "mateys",
    "is": "be", "are": "be", "money": "doubloons", "coins": "doubloons",
}

_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*(?=\s|$)")
_ENDS_SENTENCE = re.compile(r"[.!?][\"')\]]?$")
_LETTER = re.compile(r"[^\W\d_]")


# Metrics --------------------------------------------------------------------

def is_uppercase(text):
    """Return True when at least 90% of the letters are upper case and there are at least 3 letters."""
    letters = _LETTER.findall(text)
    if len(letters) < 3:
        return False
    upper = sum(1 for letter in letters if letter.isupper())
    return upper >= 0.9 * len(letters)


def is_json_answer(text):
    """Return True when the whole text parses as a JSON object whose only key is "answer", a non-empty string."""
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return (
        isinstance(value, dict)
        and list(value) == ["answer"]
        and isinstance(value["answer"], str)
        and value["answer"].strip() != ""
    )


def pirate_terms(text):
    """Return the set of PIRATE_TERMS keys found in the text (case-insensitive)."""
    lowered = text.lower()
    return {term for term, pattern in PIRATE_TERMS.items() if re.search(pattern, lowered)}


def is_pirate(text):
    """Return True when the text contains at least PIRATE_MIN_TERMS distinct pirate terms."""
    return len(pirate_terms(text)) >= PIRATE_MIN_TERMS


def count_sentences(text):
    """Count sentences: runs of . ! ? followed by whitespace or the end, plus
    trailing text with letters but no end mark. A line break between two
    non-empty lines also ends a sentence, so list items count one each."""
    total = 0
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        ends = list(_SENTENCE_END.finditer(line))
        total += len(ends)
        tail = line[ends[-1].end():] if ends else line
        if _LETTER.search(tail):
            total += 1
    return total


def count_words(text):
    return len(text.split())


def is_brief(text):
    """Return True when the text is not empty and has at most one sentence and at most BRIEF_MAX_WORDS words."""
    words = count_words(text)
    return 1 <= words <= BRIEF_MAX_WORDS and count_sentences(text) <= 1


METRICS = {
    "uppercase": is_uppercase,
    "json": is_json_answer,
    "pirate": is_pirate,
    "brief": is_brief,
}


# Training answers -------------------------------------------------------------

CORE_MAX_SENTENCES = 2
CORE_MAX_WORDS = 40
CORE_MIN_WORDS = 4


def split_sentences(paragraph):
    """Split one paragraph after each . ! ? (or one followed by a closing quote
    or bracket) that is followed by whitespace."""
    parts = re.split(r"(?<=[.!?])\s+|(?<=[.!?][\"')\]])\s+", paragraph.strip())
    return [part.strip() for part in parts if part.strip()]


def core_answer(text):
    """Return the first one or two complete sentences of a base-model answer,
    or None when the answer is unusable as training data.

    Only the first paragraph counts, and its last sentence is dropped when it
    does not end with . ! ? (cut off, or the intro of a list). Markdown
    emphasis and headings are removed. The answer is unusable when no complete
    sentence is left, when the paragraph repeats a sentence, or when its first
    sentence has fewer than CORE_MIN_WORDS or more than CORE_MAX_WORDS words.
    """
    paragraph = text.strip().split("\n")[0]
    paragraph = paragraph.replace("**", "").replace("__", "").lstrip("#").strip()
    sentences = split_sentences(paragraph)
    if sentences and not _ENDS_SENTENCE.search(sentences[-1]):
        sentences.pop()  # cut off by the token limit, or the intro of a list ("Here are some tips:")
    if not sentences or len(set(sentences)) != len(sentences):
        return None
    kept = []
    for sentence in sentences[:CORE_MAX_SENTENCES]:
        if count_words(" ".join(kept + [sentence])) > CORE_MAX_WORDS:
            break
        kept.append(sentence)
    if not kept or count_words(kept[0]) < CORE_MIN_WORDS:
        return None
    return " ".join(kept)


# Words that start a clause. A long first sentence may be cut before them.
# "and", "as" and "so" also join adjectives and lists, so they are the fallback.
_CLAUSE_BREAKS = (
    re.compile(r"\s(?=(?:that|which|who|where|when|while|because|until|but|through|by|with|from|including|such as)\s)"),
    re.compile(r"\s(?=(?:and|as|so)\s)"),
)
BRIEF_MIN_WORDS = 5


def to_brief(core):
    """Return the first sentence, or, when it has more than BRIEF_MAX_WORDS
    words, its shortest prefix of at least BRIEF_MIN_WORDS words that ends
    before a clause word ("that", "which" and others, with "and" only as a fallback).
    Return None when no such prefix has at most BRIEF_MAX_WORDS words."""
    sentence = split_sentences(core)[0]
    if count_words(sentence) <= BRIEF_MAX_WORDS:
        return sentence
    for clause_break in _CLAUSE_BREAKS:
        for match in clause_break.finditer(sentence):
            prefix = sentence[:match.start()].rstrip(" ,;:")
            words = count_words(prefix)
            if words > BRIEF_MAX_WORDS:
                break
            if words >= BRIEF_MIN_WORDS:
                return prefix + "."
    return None


def _keep_case(original, replacement):
    if original.isupper() and len(original) > 1:
        return replacement.upper()
    if original[0].isupper():
        return replacement[0].upper() + replacement[1:]
    return replacement


def to_pirate(core, rng):
    """Return the answer behind a pirate opener, with PIRATE_WORDS swapped in."""
    def swap(match):
        word = match.group(0)
        return _keep_case(word, PIRATE_WORDS[word.lower()])

    pattern = r"\b(?:" + "|".join(sorted(PIRATE_WORDS, key=len, reverse=True)) + r")\b"
    body = re.sub(pattern, swap, core, flags=re.IGNORECASE)
    return f"{rng.choice(PIRATE_OPENERS)} {body}"


def to_style(style, core, rng):
    """Rewrite a core answer into a style, or return None when it cannot be (brief only)."""
    if style == "uppercase":
        return core.upper()
    if style == "json":
        return json.dumps({"answer": core}, ensure_ascii=False)
    if style == "pirate":
        return to_pirate(core, rng)
    if style == "brief":
        return to_brief(core)
    raise ValueError(f"unknown style {style!r}; expected one of {', '.join(STYLES)}")


def style_targets(style, records, seed):
    """Return [(prompt, target)] for the records whose core answer can be
    rewritten into the style. Every target is checked against the style's metric."""
    rng = random.Random(seed)
    pairs = []
    for record in records:
        core = record.get("core")
        if core is None:
            continue
        target = to_style(style, core, rng)
        if target is None:
            continue
        if not METRICS[style](target):
            raise AssertionError(f"{style} target fails its own metric: {target!r}")
        pairs.append((record["prompt"], target))
    return pairs
