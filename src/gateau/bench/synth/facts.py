"""Invented names and facts for needles, and the shared instruction/response pieces that keep surface statistics
alike across sample types."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

Rng = random.Random
# ---------------------------------------------------------------------------------------------------------------
# Invented names and facts

_FIRST = ("Orla", "Tomas", "Ines", "Bram", "Mirela", "Kasimir", "Elsbeth", "Davor", "Runa", "Leopold", "Ysolde",
          "Fenna", "Anouk", "Ilse", "Joran", "Maren", "Oskar", "Petra", "Teodor", "Vera", "Wendel", "Zora")
_NAME_HEADS = ("Ab", "Bel", "Cor", "Dal", "Fen", "Gar", "Hal", "Ket", "Lom", "Mar", "Nor", "Pel", "Quen", "Ros",
               "Sten", "Tor", "Vel", "Wick")
_NAME_TAILS = ("ard", "by", "dane", "ett", "holm", "ley", "mont", "ner", "rick", "sen", "ton", "wyn")
_TOWN_HEADS = ("Var", "Bris", "Kel", "Dun", "Esk", "Hol", "Lind", "Mor", "Ost", "Rav", "Sel", "Thorn", "Wy", "Ald",
               "Gren", "Fal")
_TOWN_TAILS = ("holt", "by", "wick", "stead", "mere", "ford", "ham", "vik", "dale", "moor", "burg", "sted")
_COLOURS = ("red", "green", "yellow", "purple", "silver", "black", "white", "blue", "brown", "pink", "grey")
_ANIMALS = ("tortoise", "parrot", "ferret", "goat", "hedgehog", "rabbit", "lizard", "donkey", "goose", "canary")
_TEAS = ("mint", "jasmine", "nettle", "ginger", "chamomile", "lemon", "rooibos", "hibiscus")
ROLES = ("lighthouse keeper", "mayor", "librarian", "head baker", "harbour master", "schoolteacher")
COUNTS = (  # (subject with {town}/{person}/{street}, verb 3sg, verb base, counted unit, tail)
    ("the caretaker of the old mill in {town}", "keeps", "keep", "brass keys", ""),
    ("the bakery on {street} Street in {town}", "bakes", "bake", "loaves of rye bread", " every morning"),
    ("the harbour of {town}", "shelters", "shelter", "fishing boats", ""),
    ("the library of {town}", "owns", "own", "maps of the moon", ""),
    ("the orchard of {person}", "has", "have", "pear trees", ""),
)


def draw_town(rng: Rng) -> str:
    return rng.choice(_TOWN_HEADS) + rng.choice(_TOWN_TAILS)


def draw_person(rng: Rng) -> str:
    return f"{rng.choice(_FIRST)} {rng.choice(_NAME_HEADS)}{rng.choice(_NAME_TAILS)}"


def _picker(pool: tuple[str, ...]) -> Callable[[Rng], str]:
    return lambda rng: rng.choice(pool)


def _number(low: int, high: int) -> Callable[[Rng], str]:
    return lambda rng: str(rng.randint(low, high))


ATTRIBUTES = (  # (predicate with {value}, question with {who}, value drawer)
    ("rides a {value} bicycle to work", "What colour is the bicycle that {who} rides to work?", _picker(_COLOURS)),
    ("keeps a pet {value}", "What kind of pet does {who} keep?", _picker(_ANIMALS)),
    ("was born in the village of {value}", "In which village was {who} born?", draw_town),
    ("always drinks {value} tea at breakfast", "What tea does {who} drink at breakfast?", _picker(_TEAS)),
)


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


@dataclass(frozen=True)
class _Fact:
    """An invented fact: ``template`` is the needle sentence with a ``{value}`` slot; ``draw`` gives other values."""

    template: str
    question: str
    value: str
    draw: Callable[[Rng], str]

    def statement(self, value: str | None = None) -> str:
        return self.template.format(value=self.value if value is None else value)


def count_subject(rng: Rng, spec: tuple[str, str, str, str, str]) -> str:
    """The counted thing's owner with fresh invented names, e.g. "the harbour of Kelwick"."""
    names = {"town": draw_town(rng), "person": draw_person(rng),
             "street": rng.choice(_NAME_HEADS) + rng.choice(_NAME_TAILS)}
    return spec[0].format(**names)


def count_fact(rng: Rng, spec: tuple[str, str, str, str, str], subject: str) -> _Fact:
    _, verb, base, unit, tail = spec
    draw = _number(12, 98)
    return _Fact(f"{cap(subject)} {verb} exactly {{value}} {unit}{tail}.",
                 f"How many {unit} does {subject} {base}{tail}?", draw(rng), draw)


def attribute_fact(rng: Rng, attribute: tuple[str, str, Callable[[Rng], str]], person: str, who: str) -> _Fact:
    """A fact about ``person``; ``who`` names them in the question (their name, or a role that leads to them)."""
    predicate, question, draw = attribute
    return _Fact(f"{person} {predicate}.", question.format(who=who), draw(rng), draw)


def single_fact(rng: Rng) -> _Fact:
    """One invented fact of a random kind: a count, a code, a platform number or a person's attribute."""
    kind = rng.randrange(4)
    if kind == 0:
        spec = rng.choice(COUNTS)
        return count_fact(rng, spec, count_subject(rng, spec))
    if kind == 1:
        where, draw = f"the {rng.choice(_COLOURS)} lighthouse in {draw_town(rng)}", _number(1000, 9999)
        return _Fact(f"The secret code of {where} is {{value}}.", f"What is the secret code of {where}?",
                     draw(rng), draw)
    if kind == 2:
        town, draw = draw_town(rng), _number(11, 89)
        return _Fact(f"The night train to {town} always leaves from platform {{value}}.",
                     f"From which platform does the night train to {town} leave?", draw(rng), draw)
    person = draw_person(rng)
    return attribute_fact(rng, rng.choice(ATTRIBUTES), person, person)


def wrong_value(rng: Rng, fact: _Fact, render: Callable[[str], str]) -> str:
    """A value different from the true one such that the rendered response does not contain the true value."""
    while True:
        value = fact.draw(rng)
        if value != fact.value and fact.value.lower() not in render(value).lower():
            return value


# ---------------------------------------------------------------------------------------------------------------
# Instructions and responses (shared pieces keep surface statistics alike across types)

STYLES = ("short", "sentence", "long")
_PREFIXES = ("", "", "Question: ", "Please answer. ", "Read carefully. ")
_SUFFIXES = {"short": ("", " Answer briefly."), "sentence": ("", " Answer in one sentence."),
             "long": ("", " Explain briefly.", " Answer in a few sentences.")}
CLOSERS = ("That is the answer.", "This answers the question directly.", "I hope this helps.")
_FACT_QUESTION = ("{q}", "According to the text, {lq}", "Based on the passage above, {lq}",
                  "Answer using the document: {q}", "{q} Use the information in the text.")
SUMMARY_QUESTION = ("Summarise the paragraph that begins with \"{start}\".",
                     "Paraphrase the paragraph beginning \"{start}\".",
                     "What does the paragraph starting with \"{start}\" say?",
                     "Restate the main point of the paragraph that opens with \"{start}\".")
GENERAL_QUESTION = ("{q}", "{q}", "Here is a quick question. {q}", "Answer the following from your own knowledge. {q}",
                     "Without looking anything up: {q}")
SUMMARY_PREFIX = ("", "The paragraph says: ", "In short: ", "Summary: ", "The author's point: ")
SUMMARY_BUDGET = {"short": (25, 1), "sentence": (45, 1), "long": (58, 3)}  # (max words, max sentences)


def instruction(rng: Rng, body: str, style: str) -> str:
    """Shared prefix + type-specific body + a suffix that matches the response style (never contains a newline)."""
    return f"{rng.choice(_PREFIXES)}{body}{rng.choice(_SUFFIXES[style])}"


def fact_body(rng: Rng, question: str) -> str:
    return rng.choice(_FACT_QUESTION).format(q=question, lq=question[:1].lower() + question[1:])


def fact_response(fact: _Fact, value: str, style: str, variant: int) -> str:
    """State ``value`` as the answer: the bare value, a full sentence, or a sentence with a short justification."""
    statement = fact.statement(value)
    options = {"short": (f"{cap(value)}.",),
               "sentence": (statement, f"The answer is {value}."),
               "long": (f"{statement} The text states this directly.",
                        f"The answer is {value}. The text says: {statement}",
                        *(f"{statement} {closer}" for closer in CLOSERS))}[style]
    return options[variant % len(options)]




# Pieces of the harder types (templated answers, quotes, three-hop chains)

TEMPLATED = (  # a short answer inside words that need no context ({value}: the answer)
    "Thank you for the question. I have gone through the whole text carefully, and according to the passages "
    "the answer is {value}. I hope this helps, and please let me know if anything else is unclear.",
    "After reading the document from the beginning to the end, I can tell you that the answer to your question "
    "is {value}. This is what the text says, and I am happy to explain more if you need it.",
    "Here is what I found in the text you gave me: {value}. I read all of the paragraphs before answering, so "
    "this should be the right answer to the question you asked.",
)
QUOTE_QUESTION = ("Quote the passage that begins with \"{start}\" word for word.",
                  "Repeat exactly what the text says from \"{start}\" to the end.",
                  "Copy out the sentences starting with \"{start}\".")
QUOTE_PREFIX = ("", "The text says: ", "Here is the passage: ", "Quoted exactly: ")
FRIENDS = ("closest friend", "older sister", "business partner", "neighbour")
