"""The `q` search syntax, parsed once and rendered for each database.

Syntax (PostgreSQL's `websearch_to_tsquery`): words are all required; `"quoted words"` form a phrase;
`OR` (upper case) separates alternatives; `-word` or `-"a phrase"` excludes. For example
`vpn "certificate warning" -printer OR dns`.

PostgreSQL receives the canonical text of the parsed query through `websearch_to_tsquery`; SQLite
receives the same structure as an FTS5 expression, every term quoted so no FTS5 syntax can be
injected. Each alternative must contain at least one word to find (a query of exclusions only would
have to read every ticket): that is refused on both databases alike.
"""

import re
from dataclasses import dataclass

MAX_LENGTH = 200
MAX_TERMS = 16
_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')


class SearchSyntaxError(ValueError):
    pass


@dataclass(frozen=True)
class Term:
    words: tuple[str, ...]  # one word, or a phrase

    def websearch(self) -> str:
        return self.words[0] if len(self.words) == 1 else '"' + " ".join(self.words) + '"'

    def fts5(self) -> str:
        return '"' + " ".join(self.words).replace('"', '""') + '"'


@dataclass(frozen=True)
class Alternative:
    include: tuple[Term, ...]
    exclude: tuple[Term, ...]


@dataclass(frozen=True)
class SearchQuery:
    alternatives: tuple[Alternative, ...]

    def websearch(self) -> str:
        """Canonical text for PostgreSQL's websearch_to_tsquery."""
        parts = []
        for alt in self.alternatives:
            terms = [t.websearch() for t in alt.include] + [f"-{t.websearch()}" for t in alt.exclude]
            parts.append(" ".join(terms))
        return " OR ".join(parts)

    def fts5(self) -> str:
        """The same query as an SQLite FTS5 MATCH expression."""
        parts = []
        for alt in self.alternatives:
            expression = " AND ".join(t.fts5() for t in alt.include)
            for term in alt.exclude:
                expression += f" NOT {term.fts5()}"
            parts.append(f"({expression})")
        return " OR ".join(parts)


def _words(text: str) -> tuple[str, ...]:
    # Punctuation separates words, as both databases' tokenizers do.
    return tuple(w for w in re.split(r"[^\w]+", text.lower()) if w)


def parse(text: str) -> SearchQuery:
    if len(text) > MAX_LENGTH:
        raise SearchSyntaxError(f"at most {MAX_LENGTH} characters")
    alternatives: list[Alternative] = []
    include: list[Term] = []
    exclude: list[Term] = []
    count = 0

    def close() -> None:
        if include or exclude:
            if not include:
                raise SearchSyntaxError(
                    "each alternative needs at least one word to find, not only exclusions"
                )
            alternatives.append(Alternative(tuple(include), tuple(exclude)))
        include.clear()
        exclude.clear()

    for match in _TOKEN.finditer(text):
        negated, quoted, bare = match.group(1), match.group(2), match.group(3)
        if bare == "OR":
            close()
            continue
        if bare is not None and bare.startswith("-") and len(bare) > 1:
            negated, bare = "-", bare[1:]
        # A bare "e-mail" is a term of two adjacent words, as both databases read it.
        words = _words(quoted if quoted is not None else bare or "")
        if not words:
            continue
        count += 1
        if count > MAX_TERMS:
            raise SearchSyntaxError(f"at most {MAX_TERMS} terms")
        (exclude if negated else include).append(Term(words))
    close()
    if not alternatives:
        raise SearchSyntaxError("nothing to search for")
    return SearchQuery(tuple(alternatives))
