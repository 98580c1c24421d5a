"""Hot reads compiled once: the ORM builds a query's SQL on every call, a prepared query reuses it.

Every page runs the same few queries (the folder or message it shows, the list's first page, the
person's page size) with other ids. Django compiles a queryset to SQL anew each time, and for
these queries that compilation cost more than the database's answer (about 0.5-1 ms each). A
PreparedQuery builds its queryset once with marker ids, keeps the compiled SQL and the compiler
(which knows how to turn rows into model instances, select_related included), and later binds new
ids into the same SQL. Rows become objects through Django's own iterables, so a prepared query
returns exactly what the queryset would.

Only integer ids can be bound: their database form is themselves on every backend. A queryset
whose SQL would depend on a bound value (an empty IN list, a None) cannot be prepared; the markers
are checked to appear once each in the compiled parameters.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import QuerySet

T = TypeVar("T")
# Bound ids are replaced by these while compiling: never a real id (ids are positive), and within a
# 32-bit column's range (Django finds a value outside a field's range matches nothing and would not
# compile the condition at all).
_MARKER_BASE = -2_000_000_000
_SMALLEST, _LARGEST = -(2**63), 2**63 - 1


class PreparedQuery(Generic[T]):
    """BUILD(*ids) -> QuerySet, compiled once per database; calling it returns the rows as a list."""

    def __init__(self, build: Callable[..., QuerySet[Any]], arity: int = 1) -> None:
        self.build = build
        self.arity = arity
        self._compiled: dict[tuple[str, str], tuple[QuerySet[Any], Any, str, list[Any], list[int]]] = {}
        self._lock = threading.Lock()

    def _compile(self, alias: str) -> tuple[QuerySet[Any], Any, str, list[Any], list[int]]:
        markers = [_MARKER_BASE - n for n in range(self.arity)]
        queryset = self.build(*markers).using(alias)
        query = queryset.query
        if queryset._prefetch_related_lookups or query.select_for_update or query.combinator:
            raise ValueError("a prepared query cannot prefetch, lock rows or combine queries")
        compiler = query.get_compiler(using=alias)
        sql, params = compiler.as_sql()
        compiler.connection = None  # each call sets its own thread's connection
        params = list(params)
        slots = []
        for marker in markers:
            found = [i for i, value in enumerate(params) if value == marker]
            if len(found) != 1:
                raise ValueError(f"id {marker - _MARKER_BASE} must appear once in the query's parameters")
            slots.append(found[0])
        return queryset, compiler, sql, params, slots

    def __call__(self, *ids: int, using: str = DEFAULT_DB_ALIAS) -> list[T]:
        if len(ids) != self.arity:
            raise TypeError(f"expected {self.arity} ids, got {len(ids)}")
        connection = connections[using]
        key = (using, connection.vendor)
        entry = self._compiled.get(key)
        if entry is None:
            with self._lock:
                entry = self._compiled.get(key) or self._compile(using)
                self._compiled[key] = entry
        queryset, compiled, sql, params, slots = entry
        bound = list(params)
        for slot, value in zip(slots, ids, strict=True):
            number = int(value)
            if not _SMALLEST <= number <= _LARGEST:
                return []  # no row has an id a 64-bit column cannot hold (SQLite would raise)
            bound[slot] = number
        # A copy of the compiler for this call: this thread's connection, this call's parameters.
        compiler = copy.copy(compiled)
        compiler.connection = connection
        compiler.as_sql = lambda *args, **kwargs: (sql, bound)
        run = queryset._chain()
        run.query.get_compiler = lambda *args, **kwargs: compiler
        return list(run._iterable_class(run))
