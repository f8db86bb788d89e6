"""Lexicon, phrase-structure helpers and templates behind the generated NLI data of :mod:`.nli`.

No NLI corpus can be downloaded here, so MNLI-like training data and HANS-like diagnostics
(McCoy et al. 2019) are built from templates over one small lexicon. Sentences are built as
phrase-structure trees (nested tuples ``(label, *children)`` with words as leaves) and rendered
to text, so that a template's structure is known: the constituent heuristic ("the hypothesis is
a subtree of the premise's parse") can then be checked exactly, not guessed from the string.

Each template is a function ``(Draw) -> (premise tree, hypothesis tree)``; :mod:`.nli` gives
them labels and weights. The vocabulary follows HANS (human nouns, past-tense verbs, a few
function words), which is also what the MNLI-like set uses: HANS tests MNLI models on MNLI-like
words, and only its constructions are new.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple, TypeVar, Union

import numpy as np

T = TypeVar("T")

Tree = tuple[Union[str, "Tree"], ...]
"""A phrase-structure tree ``(label, *children)``; a child is a word or a tree."""
Pair = tuple[Tree, Tree]
"""A (premise, hypothesis) pair of trees, as every template returns."""


class Verb(NamedTuple):
    """A verb's forms: past tense, base form (after "did not") and past participle."""

    past: str
    base: str
    participle: str


PEOPLE = (
    "doctor", "lawyer", "actor", "artist", "banker", "senator", "student", "professor",
    "secretary", "judge", "manager", "athlete", "author", "president", "tourist", "scientist",
)  # fmt: skip
TRANSITIVE = tuple(
    Verb(*forms.split())
    for forms in (
        "saw see seen", "helped help helped", "called call called", "thanked thank thanked",
        "admired admire admired", "avoided avoid avoided", "contacted contact contacted",
        "recommended recommend recommended", "supported support supported",
        "introduced introduce introduced", "encouraged encourage encouraged",
        "advised advise advised", "visited visit visited", "paid pay paid",
        "watched watch watched", "left leave left",
    )
)  # fmt: skip
# Transitive verbs whose object can be left out ("The doctor called."): understood objects and
# the NP/Z garden paths of HANS need them.
OPTIONAL_OBJECT = tuple(
    v for v in TRANSITIVE if v.past in {"called", "helped", "paid", "visited", "watched", "left"}
)
INTRANSITIVE = tuple(
    Verb(*forms.split())
    for forms in (
        "slept sleep slept", "danced dance danced", "ran run run", "shouted shout shouted",
        "waited wait waited", "resigned resign resigned", "laughed laugh laughed",
        "arrived arrive arrived", "smiled smile smiled", "performed perform performed",
        "swam swim swum", "walked walk walked", "stumbled stumble stumbled",
    )
)  # fmt: skip
# Passives whose participle is the past form, so "was thanked by" shares every word with "thanked".
SAME_PARTICIPLE = tuple(v for v in TRANSITIVE if v.participle == v.past)
MOTION = tuple(v for v in INTRANSITIVE if v.past in {"danced", "ran", "swam", "walked", "stumbled"})
# (adjective, antonym, comparative); synonyms are listed separately, for the entailing paraphrase.
ADJECTIVES = (
    ("tall", "short", "taller"), ("young", "old", "younger"), ("rich", "poor", "richer"),
    ("happy", "sad", "happier"), ("calm", "nervous", "calmer"), ("polite", "rude", "more polite"),
    ("healthy", "sick", "healthier"), ("famous", "unknown", "more famous"),
)  # fmt: skip
SYNONYMS = {"happy": "glad", "rich": "wealthy", "sick": "ill", "polite": "courteous",
            "nervous": "anxious", "calm": "relaxed", "famous": "celebrated"}  # fmt: skip
ADVERBS = (
    "quickly",
    "quietly",
    "happily",
    "carefully",
    "slowly",
    "suddenly",
    "eagerly",
    "politely",
)
PLACE_PREPOSITIONS = ("in", "near", "behind", "outside")
PLACES = ("park", "library", "museum", "station", "office", "hotel", "theater", "garden")
PERSON_PREPOSITIONS = ("near", "behind", "beside")  # "the doctor near the actor"
FACTIVE = ("knew", "realized", "learned", "noticed", "forgot", "remembered")
NON_FACTIVE = ("thought", "believed", "hoped", "said", "suspected", "assumed", "claimed")
NP_S_VERBS = ("knew", "believed", "forgot", "remembered", "heard")  # take an NP or a clause
VERIDICAL_ADVERBS = ("certainly", "clearly", "obviously", "definitely", "undoubtedly")
NON_VERIDICAL_ADVERBS = ("perhaps", "maybe", "probably", "supposedly", "allegedly", "hopefully")
VERIDICAL_SUBORDINATORS = ("because", "although", "since", "after", "while")
NON_VERIDICAL_SUBORDINATORS = ("if", "unless", "whether or not")


def lexicon_words() -> frozenset[str]:
    """Every content and function word the templates can produce (for documentation and tests)."""
    pieces = [*PEOPLE, *PLACES, *ADVERBS, *PLACE_PREPOSITIONS, *PERSON_PREPOSITIONS, *FACTIVE]
    pieces += [*NON_FACTIVE, *NP_S_VERBS, *VERIDICAL_ADVERBS, *NON_VERIDICAL_ADVERBS]
    pieces += [*VERIDICAL_SUBORDINATORS, *NON_VERIDICAL_SUBORDINATORS, *SYNONYMS.values()]
    pieces += [word for verb in TRANSITIVE + INTRANSITIVE for word in verb]
    pieces += [word for triple in ADJECTIVES for word in triple]
    pieces += ["the a person someone who that and or did not was by than no one anyone every moved"]
    return frozenset(word for piece in pieces for word in piece.split())


def node(label: str, *children: str | Tree | None) -> Tree:
    """Build a tree node, dropping ``None`` children (optional modifiers that were not drawn)."""
    return (label, *(child for child in children if child is not None))


def the(noun: str | None, adjective: str | None = None) -> Tree | None:
    """The definite noun phrase ``the [adjective] noun``; ``None`` for no noun (no object)."""
    return None if noun is None else node("NP", "the", adjective, noun)


def clause(subject: Tree, verb: str, obj: Tree | None = None) -> Tree:
    """The clause ``subject verb [object]``: ``(S subject (VP verb object))``."""
    return node("S", subject, node("VP", verb, obj))


def leaves(tree: str | Tree) -> list[str]:
    """The words of a tree in order (a leaf may hold several words, e.g. ``"whether or not"``)."""
    if isinstance(tree, str):
        return [tree]
    return [word for child in tree[1:] for word in leaves(child)]


def render(tree: Tree) -> str:
    """The sentence a tree spells: words joined, commas attached, capitalised, full stop."""
    text = " ".join(leaves(tree)).replace(" ,", ",")
    return text[0].upper() + text[1:] + "."


def words(text: str) -> tuple[str, ...]:
    """Lower-cased words of a sentence without punctuation: the unit of every overlap check."""
    return tuple(re.findall(r"[a-z]+", text.lower()))


def constituents(tree: Tree) -> set[tuple[str, ...]]:
    """The word sequence spanned by every node of ``tree`` (punctuation ignored)."""
    spans = {words(" ".join(leaves(tree)))}
    for child in tree[1:]:
        if not isinstance(child, str):
            spans |= constituents(child)
    return spans


class Draw:
    """Seeded draws from the lexicon; every template takes one, so generation is deterministic."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def one(self, options: Sequence[T]) -> T:
        """One option, uniformly."""
        return options[int(self.rng.integers(len(options)))]

    def coin(self, p: float = 0.5) -> bool:
        """True with probability ``p``."""
        return bool(self.rng.random() < p)

    def people(self, k: int) -> list[str]:
        """``k`` distinct person nouns, so that no sentence names one person twice by accident."""
        return [PEOPLE[i] for i in self.rng.choice(len(PEOPLE), size=k, replace=False)]

    def maybe(self, noun: str) -> str | None:
        """``noun`` or, half the time, ``None``: an optional object."""
        return noun if self.coin() else None

    def verb(self, transitive: bool) -> Verb:
        """A transitive or an intransitive verb."""
        return self.one(TRANSITIVE if transitive else INTRANSITIVE)

    def place(self, exclude: str | None = None) -> tuple[str, str]:
        """A (preposition, place) pair; ``exclude`` keeps a second place different."""
        return self.one(PLACE_PREPOSITIONS), self.one([p for p in PLACES if p != exclude])

    def event(self, subject: str, obj: str | None) -> Tree:
        """A random clause: ``subject`` with a transitive verb on ``obj``, or intransitive."""
        return clause(the(subject), self.verb(obj is not None).past, the(obj))


# --- Phrases shared by the templates -----------------------------------------------------------


def verb_phrase(d: Draw, obj: str | None) -> Tree:
    """A verb phrase: a transitive verb on ``obj``, or an intransitive verb when it is None."""
    return node("VP", d.verb(obj is not None).past, the(obj))


def someone(d: Draw) -> Tree:
    """The hypernym of every person noun: "a person" or "someone"."""
    return node("NP", "a", "person") if d.coin() else node("NP", "someone")


def place_pp(d: Draw) -> Tree:
    """A locative prepositional phrase, "in the park"."""
    prep, place = d.place()
    return node("PP", prep, the(place))


def passive(patient: str, verb: Verb, agent: str) -> Tree:
    """ "The patient was <participle> by the agent"."""
    return node("S", the(patient), node("VP", "was", verb.participle, node("PP", "by", the(agent))))


def two_events(d: Draw) -> tuple[Tree, Tree]:
    """Two random clauses about four different people."""
    a, b, c, e = d.people(4)
    return d.event(a, d.maybe(b)), d.event(c, d.maybe(e))


# --- MNLI-like construction families: (premise, hypothesis) trees; labels live in .nli ---------
# A template may return None to reject a draw (e.g. an unrelated event that reused the verb).
# docs/nli.md shows an example of each.


def drop_adverb(d: Draw) -> Pair:
    a, b = d.people(2)
    core, adverb = verb_phrase(d, d.maybe(b)), node("ADVP", d.one(ADVERBS))
    vp = node("VP", adverb, core) if d.coin() else node("VP", core, adverb)
    return node("S", the(a), vp), node("S", the(a), core)


def drop_pp(d: Draw) -> Pair:
    a, b = d.people(2)
    core = verb_phrase(d, d.maybe(b))
    return node("S", the(a), node("VP", core, place_pp(d))), node("S", the(a), core)


def drop_adjective(d: Draw) -> Pair:
    a, b = d.people(2)
    obj, verb, adjective = d.maybe(b), d.verb(True).past, d.one(ADJECTIVES)[0]
    if obj is None:
        verb = d.verb(False).past
        return clause(the(a, adjective), verb), clause(the(a), verb)
    premise = clause(the(a), verb, the(obj, adjective)) if d.coin() else None
    premise = premise or clause(the(a, adjective), verb, the(obj))
    return premise, clause(the(a), verb, the(obj))


def relative_clause(d: Draw, other: str) -> Tree:
    """A subject or object relative clause about ``other``."""
    verb = d.verb(True).past
    if d.coin():
        return node("RC", "who", node("VP", verb, the(other)))  # who saw the actor
    return node("RC", "who", node("S", the(other), node("VP", verb)))  # who the actor saw


def drop_relative_clause(d: Draw) -> Pair:
    a, b, c = d.people(3)
    core = verb_phrase(d, d.maybe(c))
    return node("S", node("NP", the(a), relative_clause(d, b)), core), node("S", the(a), core)


def conjunction_reduction(d: Draw) -> Pair:
    if d.coin():
        first, second = two_events(d)
        return node("S", first, ",", "and", second), d.one((first, second))
    a, b, c = d.people(3)
    core = verb_phrase(d, d.maybe(c))
    subject = node("NP", the(a), "and", the(b))
    return node("S", subject, core), node("S", the(d.one((a, b))), core)


def passive_to_active(d: Draw) -> Pair:
    a, b = d.people(2)
    verb = d.one(SAME_PARTICIPLE)
    return passive(b, verb, a), clause(the(a), verb.past, the(b))


def factive_embedding(d: Draw) -> Pair:
    a, b, c = d.people(3)
    embedded = d.event(a, d.maybe(b))
    return clause(the(c), d.one(FACTIVE), node("SBAR", "that", embedded)), embedded


def active_to_passive(d: Draw) -> Pair:
    a, b = d.people(2)
    verb = d.verb(True)
    return clause(the(a), verb.past, the(b)), passive(b, verb, a)


def hypernym(d: Draw) -> Pair:
    a, b = d.people(2)
    core = verb_phrase(d, d.maybe(b))
    premise = node("S", the(a), node("VP", core, place_pp(d)) if d.coin() else core)
    return premise, node("S", someone(d), core)


def adjective_synonym(d: Draw) -> Pair:
    a, b = d.people(2)
    adjective = d.one(sorted(SYNONYMS))
    premise = node("S", the(a, adjective), verb_phrase(d, d.maybe(b)))
    return premise, node("S", the(a), node("VP", "was", SYNONYMS[adjective]))


def verb_hypernym(d: Draw) -> Pair:
    (a,) = d.people(1)
    motion = node("VP", d.one(MOTION).past)
    premise = node("S", the(a), node("VP", motion, place_pp(d)) if d.coin() else motion)
    return premise, node("S", someone(d), node("VP", "moved"))


def unrelated_event(d: Draw) -> Pair | None:
    first, second = two_events(d)
    if first[2][1] == second[2][1]:  # same verb: not unrelated enough
        return None
    return (node("S", first[1], node("VP", first[2], place_pp(d))) if d.coin() else first), second


def added_modifier(d: Draw) -> Pair:
    premise, hypothesis = drop_adverb(d) if d.coin() else drop_pp(d)
    return hypothesis, premise


def added_reason(d: Draw) -> Pair:
    first, second = two_events(d)
    return first, node("S", first, node("SBAR", "because", second))


def reverse_hypernym(d: Draw) -> Pair:
    a, b = d.people(2)
    core = verb_phrase(d, d.maybe(b))
    return node("S", someone(d), core), node("S", the(a), core)


def added_adjective(d: Draw) -> Pair:
    premise, hypothesis = drop_adjective(d)
    return hypothesis, premise


def other_property(d: Draw) -> Pair:
    a, b = d.people(2)
    obj = d.maybe(b)
    adjective = d.one(d.one(ADJECTIVES)[:2])
    subject = d.one((a, obj)) if obj else a
    return d.event(a, obj), node("S", the(subject), node("VP", "was", adjective))


def swap_arguments(d: Draw) -> Pair:
    a, b = d.people(2)
    verb = d.verb(True).past
    return clause(the(a), verb, the(b)), clause(the(b), verb, the(a))


def passive_swap(d: Draw) -> Pair:
    a, b = d.people(2)
    verb = d.one(SAME_PARTICIPLE)
    return passive(b, verb, a), clause(the(b), verb.past, the(a))


def non_factive_embedding(d: Draw) -> Pair:
    a, b, c = d.people(3)
    embedded = d.event(a, d.maybe(b))
    return clause(the(c), d.one(NON_FACTIVE), node("SBAR", "that", embedded)), embedded


def conditional(d: Draw) -> Pair:
    first, second = two_events(d)
    return node("S", node("SBAR", "if", first), ",", second), first


def subject_modifier_noun(d: Draw) -> Pair:
    a, b, c = d.people(3)
    core = verb_phrase(d, d.maybe(c))
    if d.coin():
        subject = node("NP", the(a), node("PP", d.one(PERSON_PREPOSITIONS), the(b)))
    else:
        subject = node("NP", the(a), node("RC", "who", node("VP", d.verb(True).past, the(b))))
    return node("S", subject, core), node("S", the(b), core)


def negation(d: Draw) -> Pair:
    a, b = d.people(2)
    obj = d.maybe(b)
    verb = d.verb(obj is not None)
    positive = clause(the(a), verb.past, the(obj))
    negative = node("S", the(a), node("VP", "did", "not", verb.base, the(obj)))
    return (positive, negative) if d.coin() else (negative, positive)


def antonym(d: Draw) -> Pair:
    a, b = d.people(2)
    adjective, opposite = d.one(ADJECTIVES)[:2]
    if d.coin():
        adjective, opposite = opposite, adjective
    premise = node("S", the(a, adjective), verb_phrase(d, d.maybe(b)))
    premise = premise if d.coin() else node("S", the(a), node("VP", "was", adjective))
    return premise, node("S", the(a), node("VP", "was", opposite))


def no_one(d: Draw) -> Pair:
    a, b = d.people(2)
    premise = d.event(a, d.maybe(b))
    verb, obj = premise[2][1], node("NP", "anyone") if len(premise[2]) > 2 else None
    return premise, node("S", node("NP", "no", "one"), node("VP", verb, obj))


def quantified_antonym(d: Draw) -> Pair:
    a, b = d.people(2)
    adjective, opposite = d.one(ADJECTIVES)[:2]
    premise = node("S", the(a, adjective), verb_phrase(d, d.maybe(b)))
    return premise, node("S", node("NP", "every", "person"), node("VP", "was", opposite))


def exclusive_location(d: Draw) -> Pair:
    a, b = d.people(2)
    place = d.one(PLACES)
    _, other = d.place(exclude=place)
    premise = node(
        "S", the(a), node("VP", verb_phrase(d, d.maybe(b)), node("PP", "in", the(place)))
    )
    return premise, node("S", the(a), node("VP", "was", node("PP", "in", the(other))))


def comparative_swap(d: Draw) -> Pair:
    a, b = d.people(2)
    comparative = d.one(ADJECTIVES)[2]
    return tuple(  # type: ignore[return-value]
        node("S", the(x), node("VP", "was", comparative, "than", the(y)))
        for x, y in ((a, b), (b, a))
    )


# --- HANS-like subcases (McCoy et al. 2019), named as there: ln_/le_ lexical overlap, sn_/se_
# subsequence, cn_/ce_ constituent; n = non-entailing, e = entailing. As in HANS, the sets are
# disjoint in kind: lexical-overlap hypotheses are not contiguous runs of the premise, and
# subsequence hypotheses are contiguous runs that are not constituents of its tree.


def _transitive_pair(d: Draw) -> tuple[str, str]:
    first, second = (TRANSITIVE[i].past for i in d.rng.choice(len(TRANSITIVE), 2, replace=False))
    return first, second


def ln_passive(d: Draw) -> Pair:
    a, b = d.people(2)
    verb = d.one(SAME_PARTICIPLE)
    return passive(a, verb, b), clause(the(a), verb.past, the(b))


def ln_conjunction(d: Draw) -> Pair:
    a, b, c = d.people(3)
    verb = d.verb(True).past
    return clause(the(a), verb, node("NP", the(b), "and", the(c))), clause(the(b), verb, the(c))


def ln_relative_clause(d: Draw) -> Pair:
    a, b, c = d.people(3)
    inner, outer = _transitive_pair(d)
    subject = node("NP", the(a), node("RC", "who", node("S", the(b), node("VP", inner))))
    return clause(subject, outer, the(c)), clause(the(b), outer, the(c))


def ln_preposition(d: Draw) -> Pair:
    a, b, c = d.people(3)
    verb = d.verb(True).past
    subject = node("NP", the(a), node("PP", d.one(PERSON_PREPOSITIONS), the(b)))
    return clause(subject, verb, the(c)), clause(the(c), verb, the(b))


def le_adverb(d: Draw) -> Pair:
    a, b = d.people(2)
    core = verb_phrase(d, b)
    premise = node("S", the(a), node("VP", node("ADVP", d.one(ADVERBS)), core))
    return premise, node("S", the(a), core)


def le_relative_clause(d: Draw) -> Pair:
    premise, _ = ln_relative_clause(d)
    subject, outer = premise[1], premise[2]
    return premise, node("S", subject[1], outer)


def le_around_preposition(d: Draw) -> Pair:
    premise, _ = ln_preposition(d)
    return premise, node("S", premise[1][1], premise[2])


def le_conjunction(d: Draw) -> Pair:
    premise, _ = ln_conjunction(d)
    return premise, clause(premise[1], premise[2][1], premise[2][2][3])


def sn_pp_on_subject(d: Draw) -> Pair:
    a, b, c = d.people(3)
    core = verb_phrase(d, d.maybe(c))
    subject = node("NP", the(a), node("PP", d.one(PERSON_PREPOSITIONS), the(b)))
    return node("S", subject, core), node("S", the(b), core)


def sn_relative_clause_on_subject(d: Draw) -> Pair:
    a, b, c = d.people(3)
    inner, outer = _transitive_pair(d)
    subject = node("NP", the(a), node("RC", "who", node("VP", inner, the(b))))
    return clause(subject, outer, the(c)), clause(the(b), outer, the(c))


def sn_np_s(d: Draw) -> Pair:
    a, b, c = d.people(3)
    verb = d.one(NP_S_VERBS)
    premise = clause(the(a), verb, d.event(b, c))
    return premise, clause(the(a), verb, the(b))


def sn_np_z(d: Draw) -> Pair:
    a, b = d.people(2)
    verb, then = d.one(OPTIONAL_OBJECT).past, d.verb(False).past
    subordinate = node("SBAR", d.one(VERIDICAL_SUBORDINATORS), clause(the(a), verb))
    return node("S", subordinate, clause(the(b), then)), clause(the(a), verb, the(b))


def se_conjunction(d: Draw) -> Pair:
    a, b, c = d.people(3)
    core = verb_phrase(d, d.maybe(c))
    return node("S", node("NP", the(a), "and", the(b)), core), node("S", the(b), core)


def se_adverb(d: Draw) -> Pair:
    a, b = d.people(2)
    core = verb_phrase(d, b)
    premise = node("S", the(a), node("VP", core, node("ADVP", d.one(ADVERBS))))
    return premise, node("S", the(a), core)


def se_pp_on_object(d: Draw) -> Pair:
    a, b, c = d.people(3)
    verb = d.verb(True).past
    obj = node("NP", the(b), node("PP", d.one(PERSON_PREPOSITIONS), the(c)))
    return clause(the(a), verb, obj), clause(the(a), verb, the(b))


def se_relative_clause_on_object(d: Draw) -> Pair:
    a, b, c = d.people(3)
    outer, inner = _transitive_pair(d)
    obj = node("NP", the(b), node("RC", "who", node("VP", inner, the(c))))
    return clause(the(a), outer, obj), clause(the(a), outer, the(b))


def se_understood_object(d: Draw) -> Pair:
    a, b = d.people(2)
    verb = d.one(OPTIONAL_OBJECT).past
    return clause(the(a), verb, the(b)), clause(the(a), verb)


def _embedded(d: Draw, head: tuple[str, ...], pick_either: bool) -> Pair:
    first, second = two_events(d)
    premise = node("S", node("SBAR", d.one(head), first), ",", second)
    return premise, d.one((first, second)) if pick_either else first


def _coordinated(d: Draw, conjunction: str) -> Pair:
    first, second = two_events(d)
    return node("S", first, ",", conjunction, second), d.one((first, second))


def _adverb_on_clause(d: Draw, adverbs: tuple[str, ...]) -> Pair:
    first, _ = two_events(d)
    return node("S", node("ADVP", d.one(adverbs)), first), first


def cn_embedded_under_if(d: Draw) -> Pair:
    return _embedded(d, NON_VERIDICAL_SUBORDINATORS, pick_either=False)


def cn_disjunction(d: Draw) -> Pair:
    return _coordinated(d, "or")


def cn_adverb(d: Draw) -> Pair:
    return _adverb_on_clause(d, NON_VERIDICAL_ADVERBS)


def ce_embedded_under_since(d: Draw) -> Pair:
    return _embedded(d, VERIDICAL_SUBORDINATORS, pick_either=True)


def ce_conjunction(d: Draw) -> Pair:
    return _coordinated(d, "and")


def ce_adverb(d: Draw) -> Pair:
    return _adverb_on_clause(d, VERIDICAL_ADVERBS)
