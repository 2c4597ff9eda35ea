"""What a question names, and whether the corpus and the cited passages are about it.

An answer is only worth showing when it is about the thing asked: a hazard ratio from
Pragmatica-Lung is not KEYNOTE-189's, however well the passage supports the sentence. The
entities a question names are found by general patterns (registry ids, trial-name shapes such
as KEYNOTE-189 / CheckMate 227 / HARMONi-A, drug-name stems, gene and biomarker symbols,
disease names, years), never from lists of the indexed documents' names, and matched with
spacing, hyphens and case ignored and through the aliases the corpus defines
("pembrolizumab (Keytruda)").

Three uses:
- before generating, a question naming something the corpus never mentions is answered
  with "The indexed documents do not mention X" (``absent_from``);
- a figure is shown only when the passage it comes from is about the trial or drug asked
  for: the nearest sentence up to the figure that names a trial (or drug) must name the one
  asked (``figure_topic``);
- a sentence that answers must cite passages that mention what the question names.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import blingfire

EntityKind = Literal["trial-id", "trial", "drug", "gene", "disease", "year"]

_TRIAL_ID = re.compile(r"\b(?:NCT\d{8}|ISRCTN\d{8}|\d{4}-\d{6}-\d{2}|CTR\d{8})\b", re.I)
# A word, with a number or code that follows it after a space ("CheckMate 227", "SWOG S2302",
# "KRAS G12C"), and the hyphenated parts it carries ("HARMONi-A", "PD-L1", "Pragmatica-Lung").
_WORD = re.compile(r"(?<![\w\-–])[^\W_]+(?:[-–][^\W_]+)*")
_QUALIFIED_SYMBOL = re.compile(r"([A-Z][A-Z0-9]*(?:-[A-Z0-9]+)*)(?:-[a-z]+)+")
_SITE = re.compile(r"\.(?:gov|org|com|net|eu|int)\b", re.I)
_CODE = re.compile(r"\s(\d{1,4}[A-Z]{0,2}|[A-Z]\d{2,4}[A-Z]?)\b")
# International nonproprietary name stems (WHO INN): -mab antibodies, -nib kinase
# inhibitors, platins, taxanes and the other common anticancer stems.
_DRUG = re.compile(
    r"[A-Za-z][a-z]{2,}(?:mab|nib|tinib|ciclib|parib|lisib|rafenib|rasib|sidenib|degib|zomib|"
    r"clax|cept|platin|taxel|rubicin|mustine|trexed|citabine|tecan|mycin|sertib|lutamide|relix|"
    r"leukin|olimus|tide|leucel|vedotin|tansine)"
)
# An investigational agent's code: OSE2101, MK-3475, BNT116 (gene symbols carry 1-2 digits).
_AGENT_CODE = re.compile(r"[A-Z]{2,5}-?\d{3,6}[A-Z]?")
_MUTATION = re.compile(r"[A-Z]\d{2,4}[A-Z]")  # G12C, V600E, T790M
_DISEASE_HEAD = re.compile(
    r"\b(?:cancers?|carcinomas?|adenocarcinomas?|melanomas?|lymphomas?|leuka?emias?|sarcomas?|"
    r"glioblastomas?|gliomas?|myelomas?|mesotheliomas?|neuroblastomas?|blastomas?)\b",
    re.I,
)
_NAME_AFTER = re.compile(r"\s+[A-Z][a-z]")
_YEAR = re.compile(r"\b(?:19[5-9]\d|20[0-4]\d)\b")
# Words before a disease head that qualify the patients, not the disease (kept out of the
# name so that "metastatic breast cancer" is looked up as "breast cancer").
_QUALIFIERS_WORDS = """
    metastatic advanced recurrent refractory relapsed locally early late early-stage late-stage
    resectable unresectable resected operable inoperable untreated previously treated
    pretreated newly diagnosed primary secondary human pediatric paediatric adult common rare
    solid invasive aggressive stage localized localised progressive persistent the a an of in
    with for and or to on by patients patient what which who how why when where does do did is
    are was were can could should has have had
"""
_QUALIFIERS = frozenset(_QUALIFIERS_WORDS.split())
# Acronyms that name measures, statistics, bodies and documents, not trials or genes.
_NOT_NAMES_WORDS = """
    FDA EMA ASCO ESMO AACR WHO NCCN NIH NCI USA UK EU USA AND THE FOR WITH NOT DNA RNA MRNA CT
    MRI PET HR OR CI OS PFS DFS EFS ORR DCR DOR TRAE TRAES AE AES SAE QOL ICB ICI TME TKI IO IT
    RT SOC TMB IHC PCR RECIST BMI ECOG NSCLC SCLC HCC CRC AML CLL ALL CML MDS NCT ID IDS DOI
    PMID PMCID IV III II VI VII VIII IX XI XII
"""
_NOT_NAMES = frozenset(_NOT_NAMES_WORDS.split())


@dataclass(frozen=True, slots=True)
class Entity:
    text: str
    kind: EntityKind
    start: int
    end: int


def named_entities(text: str) -> list[Entity]:
    """The trials, registry ids, drugs, genes/biomarkers, diseases and years ``text`` names."""
    found: list[Entity] = []
    taken: list[tuple[int, int]] = []

    def add(start: int, end: int, kind: EntityKind) -> None:
        if any(start < b and end > a for a, b in taken):
            return
        found.append(Entity(text[start:end], kind, start, end))
        taken.append((start, end))

    for m in _TRIAL_ID.finditer(text):
        add(m.start(), m.end(), "trial-id")
    for m in _WORD.finditer(text):
        if _SITE.match(text, m.end()):
            continue  # "ClinicalTrials.gov": a website, not a name
        end = m.end()
        symbol = _QUALIFIED_SYMBOL.fullmatch(m.group(0))
        if symbol:  # "EGFR-mutant", "PD-L1-positive": the gene, not the phrase
            end = m.start() + len(symbol.group(1))
        code = _CODE.match(text, end)
        head = m.group(0)
        if code and (head.isupper() or _MUTATION.fullmatch(code.group(1)) or _mixed(head)):
            end = code.end()  # "CHECKMATE 227", "SWOG S2302", "KRAS G12C" ("List 3" is not)
        kind = word_kind(text[m.start() : end], first=not text[: m.start()].strip())
        if kind is not None:
            add(m.start(), end, kind)
    for m in _DISEASE_HEAD.finditer(text):
        if m.group(0)[0].isupper() and _NAME_AFTER.match(text, m.end()):
            continue  # "Fox Chase Cancer Center", "Lung Cancer Congress": an organisation
        start = _disease_start(text, m.start())
        head = m.group(0).lower().rstrip("s")
        if start < m.start() or (head.endswith("oma") and head != "carcinoma"):
            add(start, m.end(), "disease")  # a bare "cancer" names nothing in particular
    for m in _YEAR.finditer(text):
        add(m.start(), m.end(), "year")
    found.sort(key=lambda e: e.start)
    return found


def word_kind(word: str, *, first: bool = False) -> EntityKind | None:
    """The kind of name one word (with its hyphenated parts and trailing code) has, if any."""
    if _TRIAL_ID.fullmatch(word):
        return "trial-id"
    head, _, code = word.partition(" ")
    if re.fullmatch(r"[A-Z]{2,}s", head):
        head = head[:-1]  # CGRPs, TRAEs: a plural acronym
    parts = re.split(r"[-–]", head)
    letters = "".join(c for c in head if c.isalpha())
    if not letters:
        return None
    if (_DRUG.fullmatch(head) or _AGENT_CODE.fullmatch(head)) and not code:
        return "drug"
    if head.upper() in _NOT_NAMES or parts[0].upper() in _NOT_NAMES:
        return None
    if code and _MUTATION.fullmatch(code) and head.isupper():
        return "gene"  # KRAS G12C
    if _MUTATION.fullmatch(head):
        return "gene"  # V600E
    mixed = _mixed(head)
    if mixed and head[:1].isupper() and len(letters) >= 6:
        return "trial"  # IMpower150, HARMONi-A, CheckMate (DPiM, ScPif1p: symbols, below)
    if code and head.isupper() and len(letters) >= 4:
        return "trial"  # CHECKMATE 227, SWOG S2302
    if len(parts) > 1 and all(
        p.isalpha() and p[0].isupper() and p[1:].islower() and len(p) > 2 for p in parts
    ):
        return None if first else "trial"  # Pragmatica-Lung
    if mixed:
        return None
    if letters.isupper() and len(letters) >= 2:
        alpha = re.match(r"[A-Z]+", head)
        run = len(alpha.group(0)) if alpha else 0
        if run >= 5 and not re.search(r"[A-Z]\d", head):
            return "trial"  # KEYNOTE-189, POSEIDON, MONALEESA-2 (BRCA1, SMARCA4: genes)
        return "gene"  # EGFR, PD-L1, IL-12, CTLA-4, HER2, JAK1, OSE2101 (an agent code)
    return None


def _mixed(word: str) -> bool:
    """Mixed case inside a word: IMpower, HARMONi, CheckMate."""
    inner = word[1:]
    return any(c.isupper() for c in inner) and any(
        a.isupper() and b.islower() for a, b in itertools.pairwise(inner)
    )


def _disease_start(text: str, head: int) -> int:
    """Start of the disease name ending at ``head``: the organ or tissue word before it
    ("breast cancer", "renal cell carcinoma"), not the qualifiers of the patients
    ("metastatic") nor a verb ("exercise reduces cancer")."""
    words = list(re.finditer(r"[A-Za-z][A-Za-z-]*", text[:head]))
    start = head
    for m in reversed(words[-3:]):
        word = m.group(0).lower()
        if text[m.end() : start].strip(" ") or not _is_modifier(word):
            break
        start = m.start()
        if word != "cell":  # "renal cell carcinoma" takes one more word, others stop here
            break
    return start


def _is_modifier(word: str) -> bool:
    if word in _QUALIFIERS or len(word) < 3:
        return False
    # Verbs and plural nouns do not name a disease: "reduces", "increasing", "treated".
    return not word.endswith(("s", "ing", "ed", "ly")) or word.endswith(("ous", "ious"))


@lru_cache(maxsize=4096)
def mention_pattern(term: str) -> re.Pattern[str]:
    """``term`` with case, hyphens, dashes and spacing between its parts ignored.

    "KEYNOTE-189" matches "Keynote 189" and "KEYNOTE189"; "adenovirus–IL-12" matches
    "adenovirus IL-12". A plural "s" is allowed; a longer word is not ("small cell lung
    cancer" is not in "non-small cell lung cancer").
    """
    parts = re.findall(r"[^\W\d_]+|\d+(?:\.\d+)?", term)
    if not parts:
        return re.compile(re.escape(term), re.I)
    last = parts[-1]
    if len(last) > 3 and last.endswith("s") and not last.endswith("ss"):
        parts[-1] = last[:-1]  # "cancers", "CGRPs": the plural "s" is optional below
    body = r"[\s\-–—/]*".join(re.escape(p) for p in parts)
    if parts[-1].isalpha() and parts[-1].isupper() and len(parts[-1]) >= 2:
        body += r"\d{0,2}"  # a gene family names its members: "JAK" is in "JAK1"
    # A symbol may follow a hyphen ("adenovirus–IL-12", "anti-PD-1"); a lower-case word may
    # not ("small cell lung cancer" is not in "non-small cell lung cancer").
    before = r"(?<![\w])" if parts[0].isupper() or parts[0].isdigit() else r"(?<![\w\-–])"
    return re.compile(rf"{before}{body}s?(?![\w])", re.I)


def mentions(text: str, term: str, aliases: Callable[[str], set[str]] | None = None) -> bool:
    """Whether ``text`` names ``term`` or one of its aliases."""
    if mention_pattern(term).search(text):
        return True
    return any(mention_pattern(a).search(text) for a in (aliases(term) if aliases else ()))


Aliases = Callable[[str], set[str]]


@dataclass(frozen=True, slots=True)
class Cited:
    """A cited passage as the grounding checks read it."""

    text: str  # the passage, as the model saw it
    label: str = ""  # its document's title and section (and date)
    before: str = ""  # the document text just before it: what it continues


# Kinds a figure belongs to: a number is about the trial, or the drug, its passage is about.
FIGURE_KINDS: tuple[frozenset[str], ...] = (frozenset({"trial", "trial-id"}), frozenset({"drug"}))


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of ``text`` (Bling Fire, as the chunker cuts them)."""
    if not text.strip():
        return []
    _, offsets = blingfire.text_to_sentences_and_offsets(text)
    return [(int(a), int(b)) for a, b in offsets]


def is_grounded(
    entity: Entity, cited: Cited, aliases: Aliases | None = None, at: int | None = None
) -> bool:
    """Whether the passage is about ``entity``.

    For a trial or a drug, with ``at`` (the end, in ``cited.text``, of the sentence that backs
    a claim): the nearest sentence up to there that names one of that kind must name it, or
    the label must; a passage naming none of that kind is about what its document named
    last before it. Without ``at``: the passage or its label names it, or the sentence it
    continues does. A gene, disease or year: the passage, its label or its paragraph names it.
    """
    if mentions(cited.label, entity.text, aliases):
        return True
    kinds = next((k for k in FIGURE_KINDS if entity.kind in k), None)
    if kinds is None:
        paragraph = cited.before.rsplit("\n\n", 1)[-1]
        return mentions(f"{paragraph}\n{cited.text}", entity.text, aliases)
    if at is None:
        if mentions(cited.text, entity.text, aliases):
            return True
        names = topic(cited.before, len(cited.before), kinds)
    else:
        names = topic(f"{cited.before}{cited.text}", len(cited.before) + at, kinds)
    return any(_same(entity.text, name, aliases) for name in names)


def topic(text: str, position: int, kinds: frozenset[str]) -> tuple[str, ...]:
    """The names of ``kinds`` in the nearest sentence of ``text`` up to ``position`` naming any.

    A figure is about what the closest preceding sentence naming a trial (or a drug) names:
    "In KEYNOTE-789, ... . The median PFS was 5.6 months." puts 5.6 under KEYNOTE-789,
    whatever came before.
    """
    spans = [span for span in sentence_spans(text[:position]) if span[0] < position]
    for start, end in reversed(spans):
        names = tuple(e.text for e in named_entities(text[start:end]) if e.kind in kinds)
        if names:
            return names
    return ()


def figure_owner(
    positions: Sequence[int],
    asked: Sequence[Entity],
    cited: Cited,
    aliases: Aliases | None = None,
) -> str | None:
    """What a figure of ``cited`` belongs to, when that is not what the question asks about.

    ``positions`` are the offsets in ``cited.text`` where the figure ends. For each kind of
    name the question gives (a trial, a drug), the nearest sentence up to the figure that
    names one of that kind must name one the question names; the figure is fine when any
    place it occurs passes. Returns the other names (for the reason shown), or None.
    """
    wanted = [k for k in FIGURE_KINDS if any(e.kind in k for e in asked)]
    if not wanted or not positions:
        return None
    text = f"{cited.before}{cited.text}"
    owners: list[str] = []
    for offset in positions:
        wrong: list[str] = []
        for kinds in wanted:
            names = topic(text, len(cited.before) + offset, kinds)
            mine = [e.text for e in asked if e.kind in kinds]
            if names and not any(_same(m, n, aliases) for m in mine for n in names):
                wrong.extend(names)
        if not wrong:
            return None
        owners.extend(wrong)
    return ", ".join(dict.fromkeys(owners))


def _same(asked: str, name: str, aliases: Aliases | None) -> bool:
    return mentions(name, asked, aliases) or mentions(asked, name, aliases)
