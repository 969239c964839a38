"""The `.env` format: KEY=VALUE lines, comments, `export `, single and double quotes (double
quotes take backslash escapes and may span lines). Parses text; reads no file."""

from __future__ import annotations

import re

from agent_runtime.config.reader import describe_value

_DOTENV_LINE = re.compile(
    r"""[ \t]*(?:export[ \t]+)?(?P<key>[A-Za-z_][A-Za-z0-9_.]*)[ \t]*=[ \t]*
    (?: '(?P<single>[^']*)' | "(?P<double>(?:\\.|[^"\\])*)" | (?P<bare>(?!['"])[^\n]*?) )
    (?:[ \t]+\#[^\n]*)?[ \t]*$""",
    re.MULTILINE | re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


def parse_dotenv(text: str) -> tuple[dict[str, str], list[tuple[int, str]]]:
    """KEY=VALUE lines, `#` comments, `export `, quotes (which may span lines); problems by line."""
    text = text.replace("\r\n", "\n")
    values: dict[str, str] = {}
    problems: list[tuple[int, str]] = []
    pos = 0
    while pos < len(text):
        end = len(text) if (found := text.find("\n", pos)) == -1 else found
        line = text[pos:end].strip()
        match = _DOTENV_LINE.match(text, pos)
        if match is not None:
            single, double, bare = match.group("single", "double", "bare")
            if double is not None:
                double = re.sub(r"\\(.)", lambda m: _ESCAPES.get(m[1], m[0]), double, flags=re.S)
            values[match["key"]] = next(v for v in (single, double, bare) if v is not None)
            end = match.end()
        elif line and not line.startswith("#"):
            problem = f"expected KEY=VALUE, got {describe_value(line)}; the line is ignored"
            problems.append((text.count("\n", 0, pos) + 1, problem))
        pos = end + 1
    return values, problems
