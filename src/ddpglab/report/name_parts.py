"""The parts of a study variant's name: ``stratified-cap1e6-thr-0.5-good0.7`` is the listed
variant ``stratified`` and the axis fragments ``cap1e6``, ``thr-0.5`` and ``good0.7``.

Fragments are joined by ``-``, and a value may itself start with one (``thr-0.5``), so a
fragment ends only where ``-`` is followed by a letter (the next fragment's label) or at the
end of the name; in a comparison's ``label/variant`` a fragment also starts after the
``/``. The report uses these to colour variants by a fragment (``--colour-by``) and to pair
variants that differ in one fragment only (``--contrast cap1e6:cap1e4``).
"""

from __future__ import annotations

import re

#: Where a fragment may start: at the start of the name, after "-" or after a comparison's "/".
_FRAGMENT_START = r"(?:^|(?<=[-/]))"
#: Where a fragment may end: before "-" and a letter, or at the end of the name.
_FRAGMENT_END = r"(?=-[A-Za-z]|$)"


def name_part(variant: str, label: str) -> str:
    """The fragment of ``variant`` that is ``label`` and a value (``vol16`` of ``lap-vol16``
    for ``vol``, ``thr-0.5`` of ``stratified-cap1e4-thr-0.5-good0.5`` for ``thr``; not
    ``volatile``, whose ``vol`` goes on with a letter), or ``(no <label>)`` when it has none."""
    pattern = rf"{_FRAGMENT_START}({re.escape(label)}(?![A-Za-z]).*?){_FRAGMENT_END}"
    found = re.search(pattern, variant)
    return found.group(1) if found else f"(no {label})"


def with_part_replaced(variant: str, part: str, replacement: str) -> str | None:
    """``variant`` with its whole fragment ``part`` replaced by ``replacement``
    (``uniform-cap1e6`` -> ``uniform-cap1e4``), or None when it has no such fragment."""
    pattern = rf"{_FRAGMENT_START}{re.escape(part)}{_FRAGMENT_END}"
    if not re.search(pattern, variant):
        return None
    return re.sub(pattern, lambda _: replacement, variant, count=1)
