"""Quoting for Snowflake SQL: identifiers, string literals, and catalogue type mapping.

Everything that ends up inside generated SQL and did not come from this repository's own code
(an object key, a bucket, a configured database name) goes through ``ident`` or ``literal``,
so a value with a quote, a semicolon or ``--`` in it stays one token: it cannot end a string,
end a statement or start a comment.
"""

from __future__ import annotations

import re

# Snowflake's reserved words (docs: "Reserved & limited keywords"). An unquoted identifier equal
# to one of these would not parse, so ``ident`` quotes it (upper-cased: the same name Snowflake
# gives an unquoted identifier).
RESERVED = frozenset(
    """ACCOUNT ALL ALTER AND ANY AS BETWEEN BY CASE CAST CHECK COLUMN CONNECT CONNECTION CONSTRAINT
    CREATE CROSS CURRENT CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER DATABASE DELETE
    DISTINCT DROP ELSE EXISTS FALSE FOLLOWING FOR FROM FULL GRANT GROUP GSCLUSTER HAVING ILIKE IN
    INCREMENT INNER INSERT INTERSECT INTO IS ISSUE JOIN LATERAL LEFT LIKE LOCALTIME LOCALTIMESTAMP
    MINUS NATURAL NOT NULL OF ON OR ORDER ORGANIZATION QUALIFY REGEXP REVOKE RIGHT RLIKE ROW ROWS
    SAMPLE SCHEMA SELECT SET SOME START TABLE TABLESAMPLE THEN TO TRIGGER TRUE TRY_CAST UNION
    UNIQUE UPDATE USING VALUES VIEW WHEN WHENEVER WHERE WITH
    TIMESTAMP DATE TIME""".split()
)  # TIMESTAMP/DATE/TIME are not reserved in Snowflake, but quoting them keeps every parser happy.

_SIMPLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Catalogue types are DuckDB spellings; these are the Snowflake types of the raw tables.
SNOWFLAKE_TYPES = {
    "INTEGER": "NUMBER(38, 0)",
    "UINTEGER": "NUMBER(38, 0)",
    "BIGINT": "NUMBER(38, 0)",
    "DOUBLE": "FLOAT",
    "VARCHAR": "VARCHAR",
    "TIMESTAMP": "TIMESTAMP_NTZ",
}


def ident(name: str) -> str:
    """One identifier part, as Snowflake should see it.

    A simple name (letters, digits, underscore) is upper-cased, as Snowflake resolves an
    unquoted name, and left unquoted unless it is a reserved word. Anything else is quoted
    verbatim with embedded double quotes doubled, so it cannot end the identifier.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"an identifier must be a non-empty string, got {name!r}")
    if "\x00" in name:
        raise ValueError("an identifier cannot contain a NUL character")
    if _SIMPLE.match(name):
        upper = name.upper()
        return f'"{upper}"' if upper in RESERVED else upper
    return '"' + name.replace('"', '""') + '"'


def qualified(*parts: str) -> str:
    """``db.schema.name`` with every part quoted by ``ident``."""
    return ".".join(ident(p) for p in parts)


def literal(value: str) -> str:
    """A single-quoted Snowflake string literal.

    Snowflake treats backslash as an escape character inside single-quoted strings, so it is
    doubled first; a single quote is doubled. The result is always exactly one string token.
    """
    if not isinstance(value, str):
        raise TypeError(f"literal() takes a string, got {type(value).__name__}")
    if "\x00" in value:
        raise ValueError("a string literal cannot contain a NUL character")
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def literal_list(values) -> str:
    """``('a', 'b')`` for ``FILES = (...)`` and ``IN (...)``."""
    values = list(values)
    if not values:
        raise ValueError("an empty list cannot be quoted")
    return "(" + ", ".join(literal(v) for v in values) + ")"


def regex_literal(text: str) -> str:
    """A literal regular expression that matches exactly ``text`` (for ``PATTERN =>``)."""
    return literal("^" + re.escape(text) + "$")


def snowflake_type(duckdb_type: str) -> str:
    try:
        return SNOWFLAKE_TYPES[duckdb_type.upper()]
    except KeyError:
        raise ValueError(f"no Snowflake type for catalogue type {duckdb_type!r}") from None
