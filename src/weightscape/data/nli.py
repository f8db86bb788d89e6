"""Generated NLI data: an MNLI-like training set and HANS-like diagnostic sets.

Juneja et al. (2023) sort MNLI finetunes into basins by how they generalise to HANS (McCoy et
al. 2019): models that lean on lexical overlap ("every hypothesis word is in the premise, so it
is entailed") fail HANS's non-entailing pairs. Neither corpus can be downloaded here, so both are
generated from the templates of :mod:`.nli_templates`:

- :func:`generate_mnli_like`: three classes, premise in ``text_a``, hypothesis in ``text_b``.
  As in MNLI, lexical overlap predicts entailment: among pairs with full overlap only
  ``hard_fraction`` are not entailed, and low-overlap pairs are mostly neutral or contradiction.
  The hard minority is what lets a model learn the real rule rather than the heuristic.
- :func:`generate_hans_like`: two classes for one heuristic (lexical overlap, subsequence,
  constituent), half entailing and half non-entailing, every hypothesis satisfying the heuristic.

Both share the lexicon (HANS uses MNLI-like words); the HANS-like sets use HANS's constructions.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from weightscape.data import nli_templates as t
from weightscape.data.nli_templates import Draw, Pair, Tree, render, words
from weightscape.data.task import Task, make_task
from weightscape.errors import WeightscapeError, unknown_name_error

MNLI_LABELS = ("entailment", "neutral", "contradiction")
HANS_LABELS = ("entailment", "non-entailment")
HEURISTICS = ("lexical_overlap", "subsequence", "constituent")
OVERLAP_BINS = ("full", "partial", "low")
ENTAILMENT, NEUTRAL, CONTRADICTION = 0, 1, 2
NON_ENTAILMENT = 1


@dataclass(frozen=True)
class Template:
    """A construction family: how to draw a (premise, hypothesis) pair and its label.

    Attributes:
        name: Family name, e.g. ``"drop_adverb"`` or ``"ln_subject_object_swap"``.
        label: The label index every pair of the family gets.
        build: Draws one pair of trees, or ``None`` to reject the draw.
        weight: Share of its class (MNLI-like) that the family gets.
        group: MNLI-like: ``"full"`` (entailing, full overlap by construction), ``"hard"`` (full
            overlap, not entailed) or ``"other"``; HANS-like: the heuristic.
    """

    name: str
    label: int
    build: Callable[[Draw], Pair | None]
    weight: float = 1.0
    group: str = "other"


@dataclass(frozen=True)
class NliPair:
    """One generated example, with the trees it was rendered from and its family's name."""

    premise_tree: Tree
    hypothesis_tree: Tree
    label: int
    template: str

    @property
    def premise(self) -> str:
        """The premise sentence."""
        return render(self.premise_tree)

    @property
    def hypothesis(self) -> str:
        """The hypothesis sentence."""
        return render(self.hypothesis_tree)


def _family(build: Callable[[Draw], Pair | None], label: int, weight: float, group: str):
    return Template(build.__name__, label, build, weight, group)


MNLI_TEMPLATES: tuple[Template, ...] = (
    _family(t.drop_adverb, ENTAILMENT, 1.0, "full"),
    _family(t.drop_pp, ENTAILMENT, 1.0, "full"),
    _family(t.drop_adjective, ENTAILMENT, 1.0, "full"),
    _family(t.drop_relative_clause, ENTAILMENT, 1.0, "full"),
    _family(t.conjunction_reduction, ENTAILMENT, 1.0, "full"),
    _family(t.passive_to_active, ENTAILMENT, 1.0, "full"),
    _family(t.factive_embedding, ENTAILMENT, 1.0, "full"),
    _family(t.active_to_passive, ENTAILMENT, 0.7, "other"),
    _family(t.hypernym, ENTAILMENT, 0.8, "other"),
    _family(t.adjective_synonym, ENTAILMENT, 0.4, "other"),
    _family(t.verb_hypernym, ENTAILMENT, 0.3, "other"),
    _family(t.unrelated_event, NEUTRAL, 1.5, "other"),
    _family(t.added_modifier, NEUTRAL, 1.0, "other"),
    _family(t.added_reason, NEUTRAL, 0.7, "other"),
    _family(t.reverse_hypernym, NEUTRAL, 0.6, "other"),
    _family(t.added_adjective, NEUTRAL, 0.7, "other"),
    _family(t.other_property, NEUTRAL, 0.8, "other"),
    _family(t.swap_arguments, NEUTRAL, 1.0, "hard"),
    _family(t.passive_swap, NEUTRAL, 0.6, "hard"),
    _family(t.non_factive_embedding, NEUTRAL, 1.0, "hard"),
    _family(t.conditional, NEUTRAL, 0.7, "hard"),
    _family(t.subject_modifier_noun, NEUTRAL, 1.0, "hard"),
    _family(t.negation, CONTRADICTION, 1.5, "other"),
    _family(t.antonym, CONTRADICTION, 1.0, "other"),
    _family(t.no_one, CONTRADICTION, 1.0, "other"),
    _family(t.quantified_antonym, CONTRADICTION, 0.6, "other"),
    _family(t.exclusive_location, CONTRADICTION, 0.8, "other"),
    _family(t.comparative_swap, CONTRADICTION, 0.7, "hard"),
)
"""The MNLI-like construction families; ``docs/nli.md`` shows one example of each."""


def _subcase(name: str, build: Callable[[Draw], Pair], heuristic: str, entailed: bool):
    return Template(name, ENTAILMENT if entailed else NON_ENTAILMENT, build, 1.0, heuristic)


HANS_TEMPLATES: tuple[Template, ...] = (
    _subcase("ln_subject_object_swap", t.swap_arguments, "lexical_overlap", False),
    _subcase("ln_passive", t.ln_passive, "lexical_overlap", False),
    _subcase("ln_conjunction", t.ln_conjunction, "lexical_overlap", False),
    _subcase("ln_relative_clause", t.ln_relative_clause, "lexical_overlap", False),
    _subcase("ln_preposition", t.ln_preposition, "lexical_overlap", False),
    _subcase("le_adverb", t.le_adverb, "lexical_overlap", True),
    _subcase("le_relative_clause", t.le_relative_clause, "lexical_overlap", True),
    _subcase("le_around_preposition", t.le_around_preposition, "lexical_overlap", True),
    _subcase("le_passive", t.passive_to_active, "lexical_overlap", True),
    _subcase("le_conjunction", t.le_conjunction, "lexical_overlap", True),
    _subcase("sn_pp_on_subject", t.sn_pp_on_subject, "subsequence", False),
    _subcase("sn_relative_clause", t.sn_relative_clause_on_subject, "subsequence", False),
    _subcase("sn_np_s", t.sn_np_s, "subsequence", False),
    _subcase("sn_np_z", t.sn_np_z, "subsequence", False),
    _subcase("se_conjunction", t.se_conjunction, "subsequence", True),
    _subcase("se_adverb", t.se_adverb, "subsequence", True),
    _subcase("se_pp_on_object", t.se_pp_on_object, "subsequence", True),
    _subcase("se_relative_clause_on_object", t.se_relative_clause_on_object, "subsequence", True),
    _subcase("se_understood_object", t.se_understood_object, "subsequence", True),
    _subcase("cn_embedded_under_if", t.cn_embedded_under_if, "constituent", False),
    _subcase("cn_embedded_under_verb", t.non_factive_embedding, "constituent", False),
    _subcase("cn_disjunction", t.cn_disjunction, "constituent", False),
    _subcase("cn_adverb", t.cn_adverb, "constituent", False),
    _subcase("ce_embedded_under_since", t.ce_embedded_under_since, "constituent", True),
    _subcase("ce_embedded_under_verb", t.factive_embedding, "constituent", True),
    _subcase("ce_conjunction", t.ce_conjunction, "constituent", True),
    _subcase("ce_adverb", t.ce_adverb, "constituent", True),
)
"""The HANS-like subcases, named after McCoy et al.'s (``ln_`` = lexical overlap, non-entailing)."""


def lexical_overlap(premise: str, hypothesis: str) -> float:
    """Fraction of the hypothesis's words (with repeats) that occur in the premise.

    >>> lexical_overlap("The doctor saw the lawyer.", "The lawyer saw the actor.")
    0.8
    """
    hypothesis_words, premise_words = words(hypothesis), set(words(premise))
    return sum(word in premise_words for word in hypothesis_words) / max(len(hypothesis_words), 1)


def overlap_bin(premise: str, hypothesis: str) -> str:
    """``"full"`` (overlap 1), ``"partial"`` (at least 0.5) or ``"low"`` (below 0.5)."""
    overlap = lexical_overlap(premise, hypothesis)
    return "full" if overlap == 1.0 else "partial" if overlap >= 0.5 else "low"


def is_contiguous_subsequence(premise: str, hypothesis: str) -> bool:
    """Whether the hypothesis's words occur in the premise as one contiguous run.

    >>> is_contiguous_subsequence("The doctor near the actor danced.", "The actor danced.")
    True
    """
    whole, part = words(premise), words(hypothesis)
    return any(whole[i : i + len(part)] == part for i in range(len(whole) - len(part) + 1))


def overlap_table(task: Task) -> dict[str, np.ndarray]:
    """Label counts per overlap bin of a pair task: ``{bin: counts of shape (num_labels,)}``."""
    if task.text_b is None:
        raise WeightscapeError(f"overlap_table needs a sentence-pair task; '{task.name}' is not.")
    table = {name: np.zeros(task.num_labels, dtype=np.int64) for name in OVERLAP_BINS}
    for premise, hypothesis, label in zip(task.text_a, task.text_b, task.labels, strict=True):
        table[overlap_bin(premise, hypothesis)][label] += 1
    return table


def mnli_like_pairs(n: int, seed: int = 0, hard_fraction: float = 0.1) -> list[NliPair]:
    """The pairs of :func:`generate_mnli_like`, with their trees and family names."""
    _check_count(n, "n", "generate_mnli_like")
    _check_seed(seed, "generate_mnli_like")
    if not isinstance(hard_fraction, numbers.Real) or not 0.0 <= hard_fraction <= 0.5:
        raise WeightscapeError(
            "The 'hard_fraction' parameter of generate_mnli_like must be a number in [0, 0.5]. "
            f"Got {hard_fraction!r} instead."
        )
    return _draw(_mnli_quotas(int(n), float(hard_fraction)), np.random.default_rng(seed))


def generate_mnli_like(n: int, seed: int = 0, hard_fraction: float = 0.1) -> Task:
    """Generate an MNLI-like 3-class NLI task of ``n`` distinct pairs.

    Classes are balanced to within one pair (entailment and contradiction get ``round(n / 3)``
    each). Entailing pairs come from construction families that keep every hypothesis word in
    the premise (dropping a modifier, a conjunct, a relative clause; passive to active; factive
    embedding) plus about a quarter that paraphrase (hypernyms, synonyms, active to passive).
    Non-entailing pairs mostly add or change words (an unrelated event, an added modifier,
    negation, antonyms, "no one"), except the hard families (argument swap, non-factive
    embedding, conditional, ...), which keep full overlap.

    Args:
        n: Number of pairs.
        seed: Seed of the draws; the same seed gives the same task.
        hard_fraction: Among pairs whose hypothesis words all occur in the premise, the fraction
            that are not entailed (neutral or contradiction). The default 0.1 makes the overlap
            heuristic right on 90% of full-overlap pairs, as a shortcut a model can take, while
            leaving enough counter-examples to learn the real rule; 0 removes them.

    Raises:
        WeightscapeError: For invalid arguments, or an ``n`` too large for the lexicon to give
            distinct pairs.
    """
    pairs = mnli_like_pairs(n, seed, hard_fraction)
    return _to_task("mnli_like", pairs, MNLI_LABELS)


def hans_like_pairs(
    heuristic: str, n_per_label: int, seed: int = 0, exclude: Task | None = None
) -> list[NliPair]:
    """The pairs of :func:`generate_hans_like`, with their trees and subcase names."""
    if heuristic not in HEURISTICS:
        raise unknown_name_error("HANS heuristic", str(heuristic), HEURISTICS)
    _check_count(n_per_label, "n_per_label", "generate_hans_like")
    _check_seed(seed, "generate_hans_like")
    quotas = []
    for label in (ENTAILMENT, NON_ENTAILMENT):
        subcases = [s for s in HANS_TEMPLATES if s.group == heuristic and s.label == label]
        quotas += _allocate(subcases, int(n_per_label))
    # One stream per heuristic, so the three sets of a suite are drawn independently.
    rng = np.random.default_rng([seed, 1 + HEURISTICS.index(heuristic)])
    return _draw(quotas, rng, _pair_set(exclude))


def generate_hans_like(
    heuristic: str, n_per_label: int, seed: int = 0, exclude: Task | None = None
) -> Task:
    """Generate a HANS-like diagnostic task for one heuristic of McCoy et al. (2019).

    Every hypothesis satisfies the heuristic, so a model that follows it predicts entailment
    throughout: right on the entailing half, wrong on the non-entailing half. As in HANS, the
    heuristics nest and each set targets only its own: ``lexical_overlap`` hypotheses use only
    premise words but are not contiguous runs of the premise; ``subsequence`` hypotheses are
    contiguous runs but not constituents; ``constituent`` hypotheses are clauses of the
    premise's tree. Subcases (``HANS_TEMPLATES``) share each half equally.

    Args:
        heuristic: One of :data:`HEURISTICS`.
        n_per_label: Pairs per label; the task has ``2 * n_per_label`` rows.
        seed: Seed of the draws.
        exclude: A pair task (the training set) whose (premise, hypothesis) pairs must not
            reappear here. A few would otherwise: the MNLI-like hard families include HANS's
            argument swap and passive.

    Raises:
        WeightscapeError: For an unknown heuristic or invalid counts.
    """
    pairs = hans_like_pairs(heuristic, n_per_label, seed, exclude)
    return _to_task(f"hans_like_{heuristic}", pairs, HANS_LABELS)


def hans_like_suite(
    n_per_label: int, seed: int = 0, exclude: Task | None = None
) -> dict[str, Task]:
    """All HANS-like tasks and their halves, keyed by task name.

    Keys: ``hans_like_<heuristic>`` (both labels), ``hans_like_<heuristic>_entailing`` and
    ``hans_like_<heuristic>_non_entailing`` for each heuristic. Juneja et al. score reliance on
    a heuristic by accuracy on the non-entailing half. The halves keep the two-label set and the
    ids of the whole task. ``exclude`` is passed to :func:`generate_hans_like`.
    """
    suite: dict[str, Task] = {}
    for heuristic in HEURISTICS:
        task = generate_hans_like(heuristic, n_per_label, seed, exclude)
        suite[task.name] = task
        for label, suffix in ((ENTAILMENT, "entailing"), (NON_ENTAILMENT, "non_entailing")):
            rows = np.flatnonzero(task.labels == label)
            suite[f"{task.name}_{suffix}"] = task.select(rows, name=f"{task.name}_{suffix}")
    return suite


def _mnli_quotas(n: int, hard_fraction: float) -> list[tuple[Template, int]]:
    n_entail = n_contradict = round(n / 3)
    by_label = {
        (label, hard): [
            f for f in MNLI_TEMPLATES if f.label == label and (f.group == "hard") == hard
        ]
        for label in (ENTAILMENT, NEUTRAL, CONTRADICTION)
        for hard in (False, True)
    }
    quotas = _allocate(by_label[ENTAILMENT, False], n_entail)
    full = sum(count for family, count in quotas if family.group == "full")
    hard_total = round(hard_fraction / (1.0 - hard_fraction) * full)
    hard = _allocate(by_label[NEUTRAL, True] + by_label[CONTRADICTION, True], hard_total)
    hard_counts = {label: sum(c for f, c in hard if f.label == label) for label in (1, 2)}
    quotas += hard
    quotas += _allocate(by_label[NEUTRAL, False], n - n_entail - n_contradict - hard_counts[1])
    quotas += _allocate(by_label[CONTRADICTION, False], n_contradict - hard_counts[2])
    return quotas


def _allocate(families: list[Template], total: int) -> list[tuple[Template, int]]:
    """Split ``total`` over families in proportion to their weights (largest remainders)."""
    weights = np.array([family.weight for family in families])
    exact = max(total, 0) * weights / weights.sum()
    counts = np.floor(exact).astype(int)
    order = np.argsort(counts - exact, kind="stable")  # largest remainder first
    counts[order[: max(total, 0) - counts.sum()]] += 1
    return list(zip(families, counts.tolist(), strict=True))


def _draw(
    quotas: Iterable[tuple[Template, int]],
    rng: np.random.Generator,
    exclude: frozenset[tuple[str, str]] = frozenset(),
) -> list[NliPair]:
    """Draw each family's quota of distinct pairs not in ``exclude``, then shuffle them all."""
    draw, seen, pairs = Draw(rng), set(exclude), []
    for family, count in quotas:
        made, attempts = 0, 0
        while made < count:
            attempts += 1
            if attempts > 50 * count + 1000:
                raise WeightscapeError(
                    f"Could not draw {count} distinct pairs of the '{family.name}' construction "
                    f"from the lexicon (got {made}). Ask for fewer pairs."
                )
            built = family.build(draw)
            if built is None:
                continue
            pair = NliPair(*built, label=family.label, template=family.name)
            key = (pair.premise, pair.hypothesis)
            if key not in seen:
                seen.add(key)
                pairs.append(pair)
                made += 1
    return [pairs[i] for i in rng.permutation(len(pairs))]


def _pair_set(task: Task | None) -> frozenset[tuple[str, str]]:
    if task is None:
        return frozenset()
    if task.text_b is None:
        raise WeightscapeError(
            f"The 'exclude' task must hold sentence pairs; '{task.name}' has no text_b."
        )
    return frozenset(zip(task.text_a, task.text_b, strict=True))


def _to_task(name: str, pairs: list[NliPair], label_names: tuple[str, ...]) -> Task:
    return make_task(
        name,
        [pair.premise for pair in pairs],
        [pair.label for pair in pairs],
        label_names,
        text_b=[pair.hypothesis for pair in pairs],
    )


def _check_count(value: int, parameter: str, owner: str) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise WeightscapeError(
            f"The '{parameter}' parameter of {owner} must be an int >= 1. Got {value!r} instead."
        )


def _check_seed(seed: int, owner: str) -> None:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise WeightscapeError(
            f"The 'seed' parameter of {owner} must be an int >= 0. Got {seed!r} instead."
        )
