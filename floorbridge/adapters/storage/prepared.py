"""Statements compiled once and run on the driver's own cursor, for the hottest writes.

SQLAlchemy's work per execution of a compiled statement (execution context, parameter building,
result set-up, events) cost more than SQLite took to run it: about 0.1 ms a statement, three of
them in every commit of a list of speakers, which a burst of floor requests makes hundreds of
times a second. A ``Prepared`` keeps what SQLAlchemy compiled (the SQL in the driver's parameter
style and the order of its parameters) and each parameter's bind processor from its column type,
so the values reach the driver exactly as SQLAlchemy would have sent them, and runs it on the
DBAPI cursor of the caller's connection, inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

__all__ = ["Prepared"]


@dataclass(frozen=True)
class Prepared:
    sql: str
    names: tuple[str, ...]  # the parameters, in the order the driver takes them
    processors: tuple[Callable[[Any], Any] | None, ...]

    @classmethod
    def compile(cls, statement: ClauseElement, dialect: Dialect, keys: Sequence[str] = ()) -> Prepared:
        """``keys``: the names of the values each execution passes (an INSERT's or an UPDATE's
        columns come from them, as with ``Connection.execute(statement, values)``)."""
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        if not isinstance(compiled, SQLCompiler):
            raise TypeError(f"not a SQL statement: {statement!r}")
        if not dialect.positional or compiled.positiontup is None:
            raise ValueError(f"{dialect.name}: only a positional parameter style is supported here")
        names = tuple(compiled.positiontup)
        processors = tuple(compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names)
        return cls(str(compiled), names, processors)

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        try:
            return tuple(
                value if process is None else process(value)
                for value, process in zip((values[n] for n in self.names), self.processors, strict=True)
            )
        except KeyError as exc:
            raise ValueError(f"no value for parameter {exc.args[0]!r} of {self.sql!r}") from None

    def execute(self, conn: Connection, values: Mapping[str, Any]) -> Any:
        """Runs once; the first row a RETURNING gave, or None."""
        return self._run(conn, self.parameters(values), many=False)

    def execute_many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        self._run(conn, [self.parameters(row) for row in rows], many=True)

    def _run(self, conn: Connection, parameters: Any, *, many: bool) -> Any:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if many:
                cursor.executemany(self.sql, parameters)
                return None
            cursor.execute(self.sql, parameters)
            return cursor.fetchone() if cursor.description is not None else None
        except Exception as exc:
            raise self._failed(conn, cursor, exc, parameters) from exc
        finally:
            cursor.close()

    def _failed(self, conn: Connection, cursor: Any, exc: Exception, parameters: Any) -> BaseException:
        """The driver's error as SQLAlchemy would have raised it (IntegrityError, OperationalError…); a
        connection the database has gone from is invalidated, so the pool does not hand it out again."""
        dialect = conn.dialect
        if not isinstance(exc, dialect.loaded_dbapi.Error):
            return exc
        gone = dialect.is_disconnect(exc, conn.connection.dbapi_connection, cursor)
        if gone:
            conn.invalidate(exc)
        return DBAPIError.instance(
            self.sql, parameters, exc, dialect.loaded_dbapi.Error, connection_invalidated=gone, dialect=dialect
        )
