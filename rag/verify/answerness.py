"""Does a sentence answer the question at all?

A supported sentence can still be a non-answer: small models, asked something the passages do
not hold, restate the question ("The dose of itacitinib was given in the phase 2 study [1].")
or report an absence ("The adverse events were not reported [3]."). Both pass the support
check — every word is in the passage or the question — yet the reader learns nothing, and the
honest output is the abstention with the closest passages. These hard rules cover shapes a
pattern can name (an absence, another endpoint, no number for "how many", no time for "when"
a trial reads out, no place for "where" it runs, another measure than the one the question
names, a restatement);
whether a sentence answers at all is the trained judge's call (``rag.verify.judge``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

from rag.text.bibliography import CITATION_ASIDE, without_citations
from rag.text.sentences import content_stems
from rag.verify.numbers import extract_numbers, numbers_a_label
from rag.verify.support import endpoints

_WH_QUESTION = re.compile(r"^\W*(what|which|who|whom|whose|when|where|why|how)\b", re.I)
# Questions whose answer is a quantity: an answer without a number does not answer them.
_QUANTITY_QUESTION = re.compile(
    r"\b(how (much|many|long|often)|what\s+(?:[\w-]+\s+){0,3}?(dose|dosage|rate|percentage|"
    r"proportion|hazard ratio|p[- ]value|duration|sample size|median|mean))\b",
    re.I,
)
_ABSENCE = re.compile(
    r"\b(?:(?:is|are|was|were|has|have|had)\s+not\s+(?:been\s+)?(?:reported|mentioned|"
    r"specified|stated|provided|given|described|disclosed|available|discussed|addressed|"
    r"detailed|included)|(?:do|does|did)\s+not\s+(?:report|mention|specify|state|provide|give|"
    r"describe|disclose|discuss|address|include|say|contain)|no\s+(?:information|data|details?|"
    r"mention)\s+(?:is|are|was|were|on|about|regarding))\b",
    re.I,
)
# "In which patients ...?", "in whom", "who benefited": the answer is a population.
_POPULATION_QUESTION = re.compile(
    r"\b(?:which|what)\s+(?:patients|patient\s+(?:population|group|subgroup)s?|populations?|"
    r"subgroups?|people)\b|\bin\s+whom\b|\bwho\s+(?:benefit\w*|respond\w*|(?:is|are)\s+eligible)",
    re.I,
)
_POPULATION = re.compile(
    r"\b(?:patients?|people|participants|adults|women|men|children|population|subgroups?|"
    r"cohorts?|n?sclc|cancers?|carcinomas?|tumou?rs?|disease|stage|(?:non-?)?squamous|"
    r"mutat\w*|\w+-positive|\w+-negative|express\w*|pd-l1|egfr|alk|kras|ros1|smokers?|"
    r"treatment-na[iï]ve|pretreated|previously\s+treated|resistan\w*|eligible)\b",
    re.I,
)
# "When will the trial read out?", "in which year was it published?": the answer is a date or
# a time. Only "when" about a dated event: "when are patients eligible?" is answered by a
# condition. "Where ...?", "in which country": a place, and a registry id is none ("the study
# was run at NCT03425006").
_WHEN_QUESTION = re.compile(
    r"^\W*when\b.*\b(?:will|expected|read\w*\s+out|report\w*|start\w*|begin|began|begun|"
    r"open\w*|clos\w*|complet\w*|finish\w*|end(?:s|ed)?|publish\w*|present\w*|approv\w*|held|"
    r"take\s+place|took\s+place|launch\w*|initiat\w*|enrol\w*|accru\w*|available)\b|"
    r"\b(?:in|on|by)\s+(?:what|which)\s+(?:year|date|month|day)\b|"
    r"\bwhat\s+(?:year|date|month|day)\b",
    re.I,
)
# The answer to "when did it start / will it read out" is a date: a year, a month, a season or
# quarter, or a span from now ("within two years"). A condition ("after progression on an
# EGFR TKI", "in the first line") answers "when are patients eligible", which the question
# pattern leaves out; as a time it let a trial's design answer when it began enrolling, and
# a bare duration ("7.1 months") let its survival figures answer when it would read out.
_YEAR = re.compile(r"\b(?:1[89]|20)\d\d\b")
_TIME = re.compile(
    rf"{_YEAR.pattern}|"
    r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+"
    r"\d|\b(?:january|february|march|april|june|july|august|september|october|november|"
    r"december|spring|summer|autumn|fall|winter|quarter|[1-4]q|q[1-4]|h[12])\b|"
    r"\b(?:in|within|after|by|over)\s+(?:the\s+(?:next|past|last|first)\s+)?"
    r"(?:\d+|a|an|one|two|three|four|five|six|several|few)\s+(?:days?|weeks?|months?|years?)\b",
    re.I,
)
# Only "where" about where a study, meeting or person is: "where is the protein localized?"
# is answered by "in the nucleus" (BioASQ tuning half: a capitalised-place rule flagged 7 of
# 10 right answers there).
_WHERE_QUESTION = re.compile(
    r"^\W*where\b.*\b(?:conducted|run|held|presented|recruit\w*|enrol\w*|based|treated|"
    r"take\s+place|took\s+place|carried\s+out|published|launched|approved|sold|available)\b|"
    r"\b(?:in|at)\s+(?:what|which)\s+(?:countr(?:y|ies)|cit(?:y|ies)|centers?|centres?|"
    r"hospitals?|institutions?|regions?)\b",
    re.I,
)
# "What was the median follow-up?", "how many patients were enrolled?": the question asks for
# one measure, and a sentence of other figures does not answer it ("The median PFS was 11.1
# months", a trial's registry number). Each family: what in a question asks for the measure,
# and what an answer that gives it says. Endpoints have their own check (``endpoints``).
_MEASURES: tuple[tuple[str, re.Pattern[str], re.Pattern[str]], ...] = (
    (
        "follow-up",
        re.compile(
            r"\b(?:median|mean|average|duration of|length of|how long)\s+(?:was\s+|were\s+|is\s+)?"
            r"(?:the\s+)?follow[- ]?up\b|\bhow long\b.*\bfollowed\b",
            re.I,
        ),
        re.compile(r"\bfollow(?:ed)?[- ]?ups?\b|\bfollowed\b", re.I),  # not "following"
    ),
    (
        "dose",
        re.compile(
            r"\b(?:doses?|dosage|dosing)\b|\bper\s+(?:cycle|infusion|fraction|administration)\b|"
            r"\bhow much\s+(?:[\w-]+\s+){0,3}?(?:was|were|is|are)\s+(?:given|administered|"
            r"received|infused|delivered|prescribed)\b",
            re.I,
        ),
        re.compile(
            r"\b(?:doses?|dosage|dosing|dosed|mg|mcg|µg|μg|g|gy|iu|units?|ml)\b|/\s*(?:kg|m2|m²)|"
            r"\d\s*(?:mg|gy|µg|μg)",
            re.I,
        ),
    ),
    (
        "age",
        re.compile(r"\b(?:(?:median|mean|average)\s+age|how old|what age|age of)\b", re.I),
        re.compile(r"\b(?:age[ds]?|years?[- ]old|yrs?|years)\b", re.I),
    ),
    (
        "number of people",
        re.compile(
            r"\bhow many\s+(?:\w+\s+){0,2}?(?:patients|participants|subjects|people|"
            r"individuals|women|men|children|adults|volunteers)\b|\bnumber of\s+(?:\w+\s+)?"
            r"(?:patients|participants|subjects|people|individuals)\b|\bsample size\b",
            re.I,
        ),
        # A count of people, not a rate among them: "a 62% response rate in patients with
        # high PD-L1" does not say how many were treated.
        re.compile(
            r"(?<!phase )(?<!grade )(?<!stage )(?<!cycle )(?<!arm )"
            r"\b\d[\d,]*(?![\d.,]*\s*%)\s+(?:[\w-]+\s+){0,3}?(?:patients?|participants?|"
            r"subjects?|people|persons?|individuals?|women|men|children|adults|volunteers|cases)\b|"
            r"\b(?:enrol\w*|randomi[sz]\w*|recruit\w*|accru\w*|included|total of|n\s*=)\s*"
            r"(?:[\w-]+\s+){0,2}?\d[\d,]*\b(?![\d.,]*\s*%)",
            re.I,
        ),
    ),
    (
        "hazard ratio",
        re.compile(r"\bhazard ratios?\b|\bHRs?\b"),
        re.compile(r"\bhazard ratios?\b|\bHRs?\b|\brisk of\b", re.I),
    ),
)
# "What was the median duration of treatment with X?", "what was the rate of discontinuation
# due to toxicity?": a measure named in words no family above lists. Its words, up to the
# drug, trial or population it is asked about, must be in the answer and its cited passage:
# "The median PFS was 7.1 months" does not give the duration of treatment.
_NAMED_MEASURE = re.compile(
    r"\bwhat\s+(?:was|were|is|are)\s+the\s+(?:(?:median|mean|average)\s+|"
    r"(?:rate|proportion|percentage|frequency|incidence)\s+of\s+)(?P<measure>[^?,;]+)",
    re.I,
)
_MEASURE_END = re.compile(
    r"\s(?:with|in|among|for|from|on|at|after|before|during|across|between|versus|vs\.?|"
    r"compared|when|who|that|which|achieved|observed|reported|seen|reached|did|by|under|"
    r"following|treated|receiving|given|enrolled|randomi[sz]ed|of\s+(?:the\s+)?(?:patients|"
    r"participants|people|subjects|cohort|study|trial))\b.*",
    re.I | re.S,
)
# Words that name no measure of their own ("the number of prior lines": the lines are the
# measure), and those an answer says in other words ("treated for a median of 8 months").
_GENERIC_MEASURE = {
    "number",
    "amount",
    "level",
    "valu",
    "count",
    "due",
    "overal",
    "total",
    "patient",
    "individu",
    "peopl",
    "particip",
    "subject",
}
_MEASURE_WORDING = {
    "durat": re.compile(r"\bdurations?\b|\blong\b|\blast\w*|\bfor\s+a\s+median\b", re.I),
    "time": re.compile(r"\btimes?\b|\btook\b|\bwithin\b|\bafter\s+a\s+median\b", re.I),
}
_ASKS_WHAT = re.compile(r"\b(?:what|which|how|give|report)\b", re.I)
# A citation's year is no answer to "when": not "(Liu et al., 2025)" in the sentence, nor
# "in 2024" where the cited passage has 2024 only in "(Mathew et al., 2024)" or "Science.
# 2024;384" (``without_citations``), unless the question asks when it was published.
_ASKS_PUBLICATION = re.compile(r"\b(?:publish\w*|appear\w*|print\w*|journal)\b", re.I)
_PLACE = re.compile(
    r"\b(?:[Ii]n|[Aa]t|[Ff]rom|[Aa]cross|[Tt]hroughout|[Ww]ithin)\s+(?:the\s+)?(?:\d{4}\s+)?"
    r"(?!NCT\d)[A-Z][\w.-]*|"
    r"(?i:\b(?:cent(?:er|re)s?|hospitals?|institut\w*|universit\w*|clinics?|countr(?:y|ies)|"
    r"sites?|regions?|nationwide|worldwide|international\w*|multi-?cent\w*|congress|"
    r"meeting|conference|symposium)\b)"
)
# "(NCT03425006)", "(HR, 0.46)" — asides, not the content a question asked for.
_PARENTHETICAL = re.compile(r"\([^()]*\)")
_TRIVIAL = {"studi", "trial", "report", "show", "describ", "state", "mention", "document"}


@dataclass(frozen=True, slots=True)
class NonAnswer:
    reason: str
    # The sentence answers another question (another endpoint, no population where one was
    # asked for): the passages may still hold this one's answer, so a second draft is worth it.
    # A restatement or a reported absence is what a model writes when they do not.
    off_target: bool = False
    hint: str | None = None  # what the second draft is told to answer with


def citation_year_as_date(sentence: str, cited_text: str) -> str | None:
    """The year ``sentence`` gives as its only date when ``cited_text`` holds that year only
    as a citation's (an "et al." aside, a journal's year;volume, a DOI), else None."""
    bare = CITATION_ASIDE.sub(" ", sentence)
    times = [m.group(0) for m in _TIME.finditer(bare)]
    if not times or not all(_YEAR.fullmatch(t) for t in times):
        return None  # a month, a season or a span is a date of its own
    outside = set(_YEAR.findall(without_citations(cited_text)))
    cited_only = [t for t in times if t not in outside]
    return cited_only[0] if len(cited_only) == len(times) else None


@functools.lru_cache(maxsize=256)
def asked_measures(question: str) -> tuple[tuple[str, Callable[[str], bool]], ...]:
    """The measures ``question`` asks for, each with a test of whether a text gives it: the
    families (follow-up, dose, age, how many people, hazard ratio), or else the measure it
    names in its own words (``named_measure``). Cached: it is asked once per sentence."""
    if not _ASKS_WHAT.search(question):
        return ()  # "Is high-dose X better?" is answered by the claim it asks about
    families = tuple(
        (name, functools.partial(_matches, said))
        for name, asked, said in _MEASURES
        if asked.search(question)
    )
    if families:
        return families
    named = named_measure(question)
    return () if named is None else ((named[0], functools.partial(_gives, named[1])),)


def named_measure(question: str) -> tuple[str, set[str]] | None:
    """The measure "what was the median ...?" names when no endpoint covers it: its words and
    the stems an answer must give (None when there is none to check)."""
    found = _NAMED_MEASURE.search(question)
    if found is None:
        return None
    words = _MEASURE_END.sub("", f" {found.group('measure')}").strip()
    if not words or endpoints(words) or re.search(r"\bsurvival\b", words, re.I):
        return None  # endpoints have their check; bare "survival" is OS, which answers say "OS"
    stems = content_stems(words) - _GENERIC_MEASURE
    return (words, stems) if stems else None


def _matches(pattern: re.Pattern[str], text: str) -> bool:
    return pattern.search(text) is not None


def _gives(stems: set[str], text: str) -> bool:
    """Whether ``text`` says every one of ``stems``, in those words or others
    (``_MEASURE_WORDING``); "treated" gives "treatment", which the stemmer keeps apart."""
    found = content_stems(text)

    def said(stem: str) -> bool:
        wording = _MEASURE_WORDING.get(stem)
        return any(
            f == stem
            or (min(len(f), len(stem)) >= 4 and (f.startswith(stem) or stem.startswith(f)))
            for f in found
        ) or bool(wording and wording.search(text))

    return all(said(s) for s in stems)


def _unnamed(measures: tuple[tuple[str, Callable[[str], bool]], ...], text: str) -> str | None:
    return next((name for name, gives in measures if not gives(text)), None)


def non_answer_reason(
    question: str, sentence: str, cited_text: str, *, answer: str = ""
) -> NonAnswer | None:
    """Why ``sentence`` does not answer ``question``, or None when it does.

    ``cited_text`` is what the sentence cites: an absence the passage itself states ("OS data
    were not yet reported") is a finding, not a non-answer. ``answer``, the whole answer's
    supported sentences, names the population for all of them when one sentence does.
    """
    absence = _ABSENCE.search(sentence)
    if absence and not _ABSENCE.search(cited_text):
        return NonAnswer(f"says the information is absent ({absence.group(0)!r})")
    asked, said = endpoints(question), endpoints(sentence)
    if asked and said and not asked & said:
        # "What ORR did the drug achieve?" answered with its PFS: another question's answer.
        reason = f"about {', '.join(sorted(said))}, not the {', '.join(sorted(asked))} asked for"
        hint = f"Answer about {' and '.join(sorted(asked))}."
        return NonAnswer(reason, off_target=True, hint=hint)
    if _POPULATION_QUESTION.search(question) and not _POPULATION.search(f"{sentence} {answer}"):
        # "In which patients did the drug improve PFS?" answered with the PFS figures. With
        # the hint the second draft names the patients; without it the 1.5B restated the
        # question.
        return NonAnswer(
            "the question asks which patients and the sentence names none",
            off_target=True,
            hint="Answer with the patients (who they were).",
        )
    context = f"{sentence} {answer}"
    if _WHEN_QUESTION.search(question) and not _TIME.search(CITATION_ASIDE.sub(" ", context)):
        # "When will the trial read out?" answered with what the trial compares.
        return NonAnswer(
            "the question asks when and the sentence gives no time",
            off_target=True,
            hint="Answer with the time or date the passages give.",
        )
    if _WHEN_QUESTION.search(question) and cited_text and not _ASKS_PUBLICATION.search(question):
        year = citation_year_as_date(sentence, cited_text)
        if year is not None:
            return NonAnswer(f"gives {year}, which the cited passage has only as a citation's year")
    if _WHERE_QUESTION.search(question) and not _PLACE.search(context):
        # "Where is the trial enrolling?" answered with its design, or "at NCT03425006".
        return NonAnswer(
            "the question asks where and the sentence names no place",
            off_target=True,
            hint="Answer with the place the passages give.",
        )
    measures = asked_measures(question)
    missing = _unnamed(measures, context)
    if missing is not None:
        return NonAnswer(
            f"the question asks for the {missing} and the sentence does not give it",
            off_target=True,
            hint=f"Answer with the {missing} the passages give.",
        )
    missing = _unnamed(measures, cited_text) if cited_text else None
    if missing is not None:
        # "The median follow-up was 7.1 months" citing "The median PFS was 7.1 months": the
        # label is the question's, the figure another measure's.
        return NonAnswer(f"the question asks for the {missing} and the cited passage has none")
    if not _WH_QUESTION.match(question):
        return None  # a yes/no question is answered by restating it as a claim
    given = {n.canonical for n in extract_numbers(question)}
    quantities = [
        n
        for n in extract_numbers(sentence)
        if n.kind != "trial-id"
        and n.canonical not in given
        and not numbers_a_label(sentence, n.start)  # "phase 2", "grade 3": labels
    ]
    if _QUANTITY_QUESTION.search(question) and not quantities:
        return NonAnswer("the question asks for a quantity and the sentence gives none")
    aside = _PARENTHETICAL.sub(" ", sentence)
    new = content_stems(aside) - content_stems(question) - _TRIVIAL
    if not new and not any(n.text in aside for n in quantities):
        return NonAnswer("restates the question without adding an answer")
    return None
