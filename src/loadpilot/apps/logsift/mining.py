"""Log template mining: drain3's Drain with one general masking configuration, independent of the web layer.

Variables are masked before drain groups lines, so that lines differing only in numbers, addresses, paths, ids or
dates land in the same group. The configuration is the one measured in docs/research/logsift-drain3.md (grouping
accuracy 0.976 on the eight loghub2k systems' Content column) and is not tuned per data set: every log gets the same.

Masking takes three scans of a line, in this order, because inside one regex the earliest match in a line wins:
URLs (whole, and only when the line holds '://'), then addresses (<IP>) and every other variable (<NUM>) in one
scan, addresses tried first at each position; then runs of variables collapse into one <NUM> (so "1, 2, 3" and
"7" give the same template). The masking is done here rather than by drain3's TemplateMiner, which would scan the
line once per pattern: one scan for addresses and variables makes mining about three times faster.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from drain3.drain import Drain, LogCluster  # type: ignore[import-untyped]

SIMILARITY_THRESHOLD = 0.8
"""drain's sim_th: the best of 0.4..0.85 on loghub2k (the research note has the curve: it peaks narrowly)."""
TREE_DEPTH = 4
MAX_EXAMPLES = 3
"""Distinct example lines kept per template."""

# Building blocks.
_HEX = r"[0-9a-fA-F]"
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?"
_WEEKDAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,?"
_DELIMITERS = r"\s,;:=()\[\]{}\"'|@#<>"
"""Characters that end a token for the catch-all rule."""
_AT_WORD_START = r"(?<![\w.\-])"
"""A match may only begin where a token can begin: most positions in a line are skipped at once (2x faster)."""

# Pass 2: network addresses, tried in this order at each position.
_IPV4_PORT = r"\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?(?![\w.])"
_HOST_PORT = r"(?:[A-Za-z0-9][A-Za-z0-9\-]*\.)+[A-Za-z][A-Za-z0-9\-]*:\d{1,5}(?![\w.])"
_IPV6 = (
    # only with '::' or all eight groups, and holding a digit, so that 'a:b:c' words stay words; the look-aheads
    # reach no further than an address can be long, so a long run of hex and colons costs linear time
    rf"(?={_HEX}{{0,4}}:)(?=[0-9a-fA-F:]{{0,38}}\d)(?=[0-9a-fA-F:]{{0,37}}::|(?:{_HEX}{{1,4}}:){{7}}{_HEX})"
    rf"(?:{_HEX}{{0,4}}:){{2,7}}{_HEX}{{0,4}}(?![\w:.])"
)
_ADDRESSES = (_IPV4_PORT, _HOST_PORT, _IPV6)

# Pass 3: every other variable.
_SYSLOG_DATE = (  # 'Jul 7 12:00:01 2005', 'Sun Jul 10 03:55:15 2005'
    rf"(?=[A-Z][a-z])(?:{_WEEKDAY}\s+)?{_MONTH}\s+\d{{1,2}},?\s+(?:\d{{4}}\s+)?"
    r"\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?(?:\s+\d{4})?(?![\w.:])"
)
_UUID = rf"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}(?![\w-])"
_ISO_DATETIME = r"\d{4}-\d{2}-\d{2}[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?(?![\w.:])"
_DATE = r"(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}/\d{1,2}/\d{2,4})(?![\w.:/-])"
_TIME = r"\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?(?![\w.:])"
_MAC = rf"(?:{_HEX}{{2}}[:-]){{5}}{_HEX}{{2}}(?![\w:-])"
_PATH = r"(?:/[\w.@+~%\-]+){2,}/?|[A-Za-z]:\\[^\s\"']+"  # unix (two parts or more), windows
_QUANTITY = (  # sizes and durations with their unit
    r"[-+]?\d+(?:\.\d+)?\s?(?:[KMGTP]i?B|B|bytes|ms|us|ns|s|sec|secs|seconds|min|mins|minutes|h|hrs|hours)(?!\w)"
)
_WITH_DIGIT = rf"(?<![^{_DELIMITERS}])[^{_DELIMITERS}]*\d[^{_DELIMITERS}]*"
"""The catch-all: any token holding a digit (numbers, hex, blk_-42, node-7, 0x1f)."""
_NEEDS_DIGIT_OR_SLASH = r"(?=\S{0,63}?[\d/\\])"
"""Quick reject for everything after the syslog date: a digit, '/' or '\\' soon, before the next space.

Lazy and bounded, so that a long token costs linear time, not quadratic, whatever it holds.
"""
_VARIABLES = (_UUID, _ISO_DATETIME, _DATE, _TIME, _MAC, _PATH, _QUANTITY, _WITH_DIGIT)

_URL = r"\b[A-Za-z][A-Za-z0-9+.\-]{0,31}://[^\s\"'<>]+"
_VARIABLE_RUN = r"<(?:NUM|IP)>(?:[\s,]+<(?:NUM|IP)>)+"


def _any_of(patterns: Iterable[str]) -> str:
    return "(?:" + "|".join(patterns) + ")"


_URL_RE = re.compile(_URL)
_VARIABLE_RE = re.compile(
    _AT_WORD_START
    + _any_of(
        (
            "(?P<ip>" + _any_of(_ADDRESSES) + ")",
            _SYSLOG_DATE,
            _NEEDS_DIGIT_OR_SLASH + _any_of(_VARIABLES),
        )
    )
)
"""Passes 2 and 3 as one scan: addresses are tried first at each position and become <IP>, the rest <NUM>."""
_VARIABLE_RUN_RE = re.compile(_VARIABLE_RUN)


def _label(match: re.Match[str]) -> str:
    return "<IP>" if match.lastgroup == "ip" else "<NUM>"


def mask(line: str) -> str:
    """The line with its variables masked, as drain sees it: '<NUM>' and '<IP>' in place of the variable parts."""
    if "://" in line:
        line = _URL_RE.sub("<NUM>", line)
    line = _VARIABLE_RE.sub(_label, line)
    return _VARIABLE_RUN_RE.sub("<NUM>", line)


def new_drain() -> Drain:
    """A fresh, empty drain tree: each analysis starts from nothing, so a request depends on no other.

    drain's own wildcard is '<*>', distinct from the named masks: drain counts a '<*>' as a mismatch when it
    compares a line with a template but an equal '<NUM>' as a match, which is what lets a high threshold work.
    """
    return Drain(
        depth=TREE_DEPTH,
        sim_th=SIMILARITY_THRESHOLD,
        max_children=100,
        max_clusters=None,
        extra_delimiters=(),
        param_str="<*>",
        parametrize_numeric_tokens=True,
    )


class Grouper:
    """Assigns lines to groups one by one with one drain tree; identical masked lines always share a group.

    The shortcut for a masked line seen before skips drain's tree search: it is most lines in a real log, and
    drain would put such a line into the group whose template already covers it anyway.
    """

    def __init__(self) -> None:
        self.drain = new_drain()
        self._seen: dict[str, LogCluster] = {}

    def add(self, line: str) -> int:
        """Add one line; the id of the group it joined."""
        masked = mask(line)
        cluster = self._seen.get(masked)
        if cluster is None:
            cluster = self.drain.add_log_message(masked)[0]
            self._seen[masked] = cluster
        else:
            cluster.size += 1
        return int(cluster.cluster_id)

    def template(self, cluster_id: int) -> str:
        """The template of a group, as it stands now (templates only get more general as lines are added)."""
        return str(self.drain.id_to_cluster[cluster_id].get_template())


@dataclass(frozen=True)
class Template:
    """One group of similar lines: its template, how many lines it holds, and a few of them."""

    template: str
    count: int
    examples: tuple[str, ...]


def mine(lines: Iterable[str], max_examples: int = MAX_EXAMPLES) -> list[Template]:
    """Group `lines` by similarity, starting from nothing; the templates found, the biggest group first.

    Blank lines are skipped. Ties in count are ordered by template so that the answer does not depend on luck.
    """
    grouper = Grouper()
    counts: dict[int, int] = {}
    examples: dict[int, list[str]] = {}
    for line in lines:
        if not line or line.isspace():
            continue
        cluster_id = grouper.add(line)
        count = counts.get(cluster_id, 0)
        counts[cluster_id] = count + 1
        if count == 0:
            examples[cluster_id] = [line]
        elif len(shown := examples[cluster_id]) < max_examples and line not in shown:
            shown.append(line)
    found = [
        Template(grouper.template(cluster_id), count, tuple(examples[cluster_id][:max_examples]))
        for cluster_id, count in counts.items()
    ]
    found.sort(key=lambda t: (-t.count, t.template))
    return found


def group(lines: Iterable[str]) -> list[int]:
    """The group of each line, in order, starting from nothing: what grouping accuracy is measured on."""
    grouper = Grouper()
    return [grouper.add(line) for line in lines]
