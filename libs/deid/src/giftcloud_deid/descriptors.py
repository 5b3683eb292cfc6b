"""Clean Descriptors (PS3.15 E.3.5): a description is kept with what could identify taken
out — the patient's own identifiers as the header gives them (every name component, IDs,
accession number, the people around them) and whatever the engine cannot vouch for in free
text: any date in any common form, any long number (an ID the header does not carry), a
person named by a title, an e-mail address, a telephone number, a web address.

Narrative text (ST, LT, UT) is not cleaned but removed, as the basic profile says
(:func:`giftcloud_deid.rules.row_action`): no pattern can vouch for a paragraph.
"""

from __future__ import annotations

import re

from giftcloud_deid.verify import Identity

_MONTHS = (
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
#: what no description needs and an identifier may hide in, whoever's it is
_UNVOUCHED = re.compile(
    "|".join(
        (
            r"(?i:\b(?:19|20)\d{2}[-./]\d{1,2}[-./]\d{1,2}\b)",  # 2020-03-04
            r"(?i:\b\d{1,2}[-./]\d{1,2}[-./](?:\d{4}|\d{2})\b)",  # 04/03/2020, 4.3.20
            rf"(?i:\b\d{{1,2}}(?:st|nd|rd|th)?[\s.-]*(?:{_MONTHS})\b\.?[\s.,-]*(?:\d{{4}}|\d{{2}})?\b)",
            rf"(?i:\b(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?\b,?(?:\s+\d{{4}})?\b)",
            r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+",  # e-mail
            r"(?i:\b(?:https?://|www\.)\S+)",  # web address
            r"\+?\(?\b\d{2,5}\)?[ -]\d{3,4}[ -]?\d{3,4}\b",  # a telephone number
            r"\b[A-Za-z]*\d{5,}[A-Za-z\d]*\b",  # five digits or more: an ID, a date
            # a person by title: "Dr. J. Smith", "Prof Jones", "Mrs Smith-Jones" (not "MR
            # Brain", "DR Chest": a bare MR, MS or DR is a modality or a disease)
            r"\b(?:Dr|Prof|PROF|Mrs|MRS|Miss|Mx|Sir|Mr\.|MR\.|Ms\.|MS\.|DR\.)\.?"
            r"(?:\s+(?:[A-Z]\.|[A-Z][A-Za-z'-]+)){1,3}",
        )
    )
)
_TIDY_SPACES = re.compile(r"\s{2,}")
_TIDY_ENDS = " -_,;:/|()[]."


def unvouched(text: str) -> str:
    """The first thing in ``text`` a cleaned description cannot hold ('' when none): what a
    hub, which has no original to compare with, can still check."""
    found = _UNVOUCHED.search(text)
    return found.group(0) if found else ""


class DescriptorCleaner:
    """Cleans the free text of one instance, knowing who that instance is of."""

    def __init__(self, identity: Identity) -> None:
        long_values = sorted(identity.identifiers, key=len, reverse=True)
        short_parts = sorted(identity.name_parts, key=len, reverse=True)
        alternatives = [re.escape(v) for v in long_values]  # anywhere, even inside a word
        # a two- or three-letter name part only as a word of its own ("Li", not "Liver")
        alternatives += [rf"(?<![^\W\d_]){re.escape(p)}(?![^\W\d_])" for p in short_parts]
        self._own = re.compile("|".join(alternatives), re.IGNORECASE) if alternatives else None

    def __call__(self, text: str, *, descriptor: bool = True) -> str:
        """``text`` without the patient's identifiers; a ``descriptor`` (a description kept
        under Clean Descriptors, free text in cleaned structured content) without what no
        one can vouch for too. Other cleaned values (a device's serial number under Retain
        Device Identity) keep their numbers."""
        cleaned = _UNVOUCHED.sub(" ", text) if descriptor else text
        if self._own is not None:
            cleaned = self._own.sub(" ", cleaned)
        if cleaned == text:
            return text
        return _TIDY_SPACES.sub(" ", cleaned).strip(_TIDY_ENDS)
