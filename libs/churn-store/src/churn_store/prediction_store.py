"""The prediction store: captured predictions, their outcomes, and the monitor's results.

One interface over two databases:

- PostgreSQL (``postgresql://…``) in clusters and tests: predictions are
  written with ``COPY`` into a table partitioned by day, so retention is a
  partition drop; migrations run under an advisory lock, so any number of pods
  may start at once.
- SQLite (``sqlite:///path``) for ``make demo``: the same tables, unpartitioned;
  retention is a ``DELETE``.

Migrations are versioned (``MIGRATIONS``) and recorded in ``schema_migrations``;
``migrate()`` applies the missing ones and is idempotent. Nothing here imports
the web framework: the service (capture, ``POST /v1/feedback``) and the
workflows (monitor, outcomes) share it.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple, Protocol

import psycopg

__all__ = [
    "MIGRATIONS",
    "CapturedPrediction",
    "FeedbackStatus",
    "JoinedRow",
    "MonitorResult",
    "Outcome",
    "PredictionStore",
    "StoreError",
    "open_store",
]

# pg_advisory_lock key: "churn-pr" as 8 bytes, so no other application collides by accident.
_LOCK_KEY: Final = int.from_bytes(b"churn-pr", "big") & 0x7FFF_FFFF_FFFF_FFFF
_PARTITION: Final = re.compile(r"predictions_p(\d{8})")

FeedbackStatus = Literal["recorded", "duplicate", "conflict", "unknown_prediction"]

# version, name, PostgreSQL statements, SQLite statements
MIGRATIONS: Final[tuple[tuple[int, str, tuple[str, ...], tuple[str, ...]], ...]] = (
    (
        1,
        "predictions, outcomes and monitor results",
        (
            """CREATE TABLE predictions (
                prediction_id uuid NOT NULL,
                predicted_at timestamptz NOT NULL,
                model_version text NOT NULL,
                model_sha256 text NOT NULL,
                customer_id text,
                features jsonb NOT NULL,
                probability double precision NOT NULL,
                churn boolean NOT NULL,
                threshold double precision NOT NULL,
                shadow_probability double precision,
                PRIMARY KEY (prediction_id, predicted_at)
            ) PARTITION BY RANGE (predicted_at)""",
            "CREATE INDEX predictions_customer ON predictions (customer_id, predicted_at)",
            """CREATE TABLE outcomes (
                prediction_id uuid PRIMARY KEY,
                predicted_at timestamptz NOT NULL,
                churned boolean NOT NULL,
                observed_at timestamptz NOT NULL,
                received_at timestamptz NOT NULL DEFAULT now(),
                source text NOT NULL
            )""",
            "CREATE INDEX outcomes_predicted_at ON outcomes (predicted_at)",
            """CREATE TABLE monitor_results (
                day date NOT NULL,
                model_version text NOT NULL,
                metric text NOT NULL,
                feature text NOT NULL DEFAULT '',
                value double precision,
                computed_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (day, model_version, metric, feature)
            )""",
        ),
        (
            """CREATE TABLE predictions (
                prediction_id TEXT PRIMARY KEY,
                predicted_at TEXT NOT NULL,
                model_version TEXT NOT NULL,
                model_sha256 TEXT NOT NULL,
                customer_id TEXT,
                features TEXT NOT NULL,
                probability REAL NOT NULL,
                churn INTEGER NOT NULL,
                threshold REAL NOT NULL,
                shadow_probability REAL
            )""",
            "CREATE INDEX predictions_customer ON predictions (customer_id, predicted_at)",
            "CREATE INDEX predictions_time ON predictions (predicted_at)",
            """CREATE TABLE outcomes (
                prediction_id TEXT PRIMARY KEY,
                predicted_at TEXT NOT NULL,
                churned INTEGER NOT NULL,
                observed_at TEXT NOT NULL,
                received_at TEXT NOT NULL,
                source TEXT NOT NULL
            )""",
            """CREATE TABLE monitor_results (
                day TEXT NOT NULL,
                model_version TEXT NOT NULL,
                metric TEXT NOT NULL,
                feature TEXT NOT NULL DEFAULT '',
                value REAL,
                computed_at TEXT NOT NULL,
                PRIMARY KEY (day, model_version, metric, feature)
            )""",
        ),
    ),
    (
        2,
        "the shadow model beside its probability",
        (
            "ALTER TABLE predictions ADD COLUMN shadow_model_version text",
            "ALTER TABLE predictions ADD COLUMN shadow_model_sha256 text",
        ),
        (
            "ALTER TABLE predictions ADD COLUMN shadow_model_version TEXT",
            "ALTER TABLE predictions ADD COLUMN shadow_model_sha256 TEXT",
        ),
    ),
)
_COLUMNS: Final = (
    "prediction_id, predicted_at, model_version, model_sha256, customer_id, "
    "features, probability, churn, threshold, "
    "shadow_probability, shadow_model_version, shadow_model_sha256"
)


class StoreError(RuntimeError):
    """The store cannot be reached or refused a statement."""


class CapturedPrediction(NamedTuple):
    """One captured prediction; ``features`` is the request's features as JSON text.

    A NamedTuple, not a dataclass: the service builds one per captured prediction.
    """

    prediction_id: str
    predicted_at: datetime
    model_version: str
    model_sha256: str
    customer_id: str | None
    features: str
    probability: float
    churn: bool
    threshold: float
    # What the pinned shadow model (if any) said of the same features, and which model it was.
    shadow_probability: float | None = None
    shadow_model_version: str | None = None
    shadow_model_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """A ground-truth outcome naming a prediction, or a customer (their latest prediction)."""

    prediction_id: str | None
    customer_id: str | None
    churned: bool
    observed_at: datetime


@dataclass(frozen=True, slots=True)
class JoinedRow:
    """A captured prediction with its outcome, if one arrived."""

    prediction_id: str
    predicted_at: datetime
    model_version: str
    model_sha256: str
    features: str
    probability: float
    churn: bool
    threshold: float
    churned: bool | None
    shadow_probability: float | None = None
    shadow_model_version: str | None = None


@dataclass(frozen=True, slots=True)
class MonitorResult:
    """One number of the monitor: ``metric`` of ``model_version`` on ``day`` (per ``feature``)."""

    day: date
    model_version: str
    metric: str
    value: float | None
    feature: str = ""


class PredictionStore(Protocol):
    """What the service, the feedback route and the workflows need from a store."""

    url_for_logs: str

    def migrate(self) -> int:
        """Apply the missing migrations; return the schema version."""
        ...

    def write_predictions(self, rows: Sequence[CapturedPrediction]) -> None:
        """Append ``rows`` in one transaction."""
        ...

    def record_outcomes(
        self, outcomes: Sequence[Outcome], source: str
    ) -> list[tuple[FeedbackStatus, str | None]]:
        """Store each outcome once; one (status, prediction_id) per outcome, in order."""
        ...

    def joined(self, since: datetime, until: datetime) -> Iterator[JoinedRow]:
        """Predictions made in [since, until) with their outcomes, oldest first."""
        ...

    def write_monitor_results(self, results: Sequence[MonitorResult]) -> None:
        """Insert or replace the monitor's numbers."""
        ...

    def latest_monitor_results(self) -> list[MonitorResult]:
        """The most recent day's numbers of every model version."""
        ...

    def drop_expired(self, retention_days: int, now: datetime) -> int:
        """Forget predictions and outcomes older than ``retention_days``; return how many."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


def open_store(url: str) -> PredictionStore:
    """A store for ``url``: ``postgresql://…`` or ``sqlite:///path`` (created if missing)."""
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresStore(url)
    if url.startswith("sqlite:///"):
        return SqliteStore(Path(url.removeprefix("sqlite:///")))
    raise StoreError(f"store URL {_redact(url)!r}: must start with postgresql:// or sqlite:///")


def _redact(url: str) -> str:
    # Never log a password: postgresql://user:secret@host -> postgresql://user:***@host
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


_COPY_SPECIAL: Final = re.compile(r"[\\\t\n\r]")
_COPY_ESCAPES: Final = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _copy_text(value: str | None) -> str:
    """``value`` as a field of COPY's text format: NULL is ``\\N``; escape \\, tab, newlines."""
    if value is None:
        return "\\N"
    if _COPY_SPECIAL.search(value) is None:
        return value
    return _COPY_SPECIAL.sub(lambda m: _COPY_ESCAPES[m[0]], value)


def _copy_line(r: CapturedPrediction) -> str:
    shadow = "\\N" if r.shadow_probability is None else repr(float(r.shadow_probability))
    return (
        f"{r.prediction_id}\t{r.predicted_at.isoformat()}\t{_copy_text(r.model_version)}\t"
        f"{r.model_sha256}\t{_copy_text(r.customer_id)}\t{_copy_text(r.features)}\t"
        f"{float(r.probability)!r}\t{'t' if r.churn else 'f'}\t{float(r.threshold)!r}\t{shadow}\t"
        f"{_copy_text(r.shadow_model_version)}\t{_copy_text(r.shadow_model_sha256)}\n"
    )


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


class PostgresStore:
    """PostgreSQL: COPY into daily partitions; a lazily (re)opened connection."""

    def __init__(self, url: str, connect_timeout: float = 3.0) -> None:
        self._url = url
        self.url_for_logs = _redact(url)
        self._timeout = connect_timeout
        self._conn: psycopg.Connection[Any] | None = None
        self._partitions: set[date] = set()
        self._lock = threading.Lock()

    def _connect(self) -> psycopg.Connection[Any]:
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        try:
            self._conn = psycopg.connect(
                self._url,
                connect_timeout=max(1, round(self._timeout)),
                autocommit=True,
                # A store that hangs must not hold a flush forever.
                options=f"-c statement_timeout={int(self._timeout * 10_000)}",
            )
        except psycopg.Error as exc:
            self._conn = None
            raise StoreError(f"cannot connect to {self.url_for_logs}: {exc}") from exc
        return self._conn

    def _run(self, fn: Any) -> Any:
        with self._lock:
            conn = self._connect()
            try:
                return fn(conn)
            except psycopg.Error as exc:
                if conn.broken or conn.closed:
                    self._conn = None
                    self._partitions.clear()
                raise StoreError(f"{self.url_for_logs}: {exc}") from exc

    def migrate(self) -> int:
        def apply(conn: psycopg.Connection[Any]) -> int:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, "
                    "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
                )
                row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations")
                current = int(row.fetchone()[0])  # type: ignore[index]
                for version, name, statements, _ in MIGRATIONS:
                    if version <= current:
                        continue
                    for statement in statements:
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (version, name),
                    )
                    current = version
                return current

        return int(self._run(apply))

    def _ensure_partitions(self, conn: psycopg.Connection[Any], days: set[date]) -> None:
        missing = days - self._partitions
        if not missing:
            return
        with conn.transaction():
            # Two pods creating the same partition: the second waits, then finds it.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            for day in sorted(missing):
                start, end = _day_bounds(day)
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS predictions_p{day:%Y%m%d} "
                    "PARTITION OF predictions FOR VALUES FROM "
                    f"('{start.isoformat()}') TO ('{end.isoformat()}')"
                )
        self._partitions |= missing

    def write_predictions(self, rows: Sequence[CapturedPrediction]) -> None:
        if not rows:
            return

        def copy(conn: psycopg.Connection[Any]) -> None:
            self._ensure_partitions(conn, {r.predicted_at.astimezone(UTC).date() for r in rows})
            # COPY's text format built in one string: psycopg's write_row costs about five
            # times more per row, and this runs beside the request path on the same CPU.
            payload = "".join([_copy_line(r) for r in rows])
            with (
                conn.transaction(),
                conn.cursor() as cursor,
                cursor.copy(f"COPY predictions ({_COLUMNS}) FROM STDIN") as out,
            ):
                out.write(payload)

        self._run(copy)

    def record_outcomes(
        self, outcomes: Sequence[Outcome], source: str
    ) -> list[tuple[FeedbackStatus, str | None]]:
        def record(conn: psycopg.Connection[Any]) -> list[tuple[FeedbackStatus, str | None]]:
            results: list[tuple[FeedbackStatus, str | None]] = []
            with conn.transaction():
                for o in outcomes:
                    if o.prediction_id is not None:
                        found = conn.execute(
                            "SELECT prediction_id::text, predicted_at FROM predictions "
                            "WHERE prediction_id = %s",
                            (o.prediction_id,),
                        ).fetchone()
                    else:
                        found = conn.execute(
                            "SELECT prediction_id::text, predicted_at FROM predictions "
                            "WHERE customer_id = %s AND predicted_at <= %s "
                            "ORDER BY predicted_at DESC LIMIT 1",
                            (o.customer_id, o.observed_at),
                        ).fetchone()
                    if found is None:
                        results.append(("unknown_prediction", o.prediction_id))
                        continue
                    prediction_id, predicted_at = found
                    inserted = conn.execute(
                        "INSERT INTO outcomes (prediction_id, predicted_at, churned, observed_at,"
                        " source) VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING "
                        "RETURNING 1",
                        (prediction_id, predicted_at, o.churned, o.observed_at, source),
                    ).fetchone()
                    if inserted is not None:
                        results.append(("recorded", prediction_id))
                        continue
                    stored = conn.execute(
                        "SELECT churned FROM outcomes WHERE prediction_id = %s", (prediction_id,)
                    ).fetchone()
                    same = stored is not None and bool(stored[0]) == o.churned
                    results.append(("duplicate" if same else "conflict", prediction_id))
            return results

        result: list[tuple[FeedbackStatus, str | None]] = self._run(record)
        return result

    def joined(self, since: datetime, until: datetime) -> Iterator[JoinedRow]:
        # A server-side cursor: a million rows stream instead of landing in memory at once.
        with self._lock:
            conn = psycopg.connect(self._url, connect_timeout=max(1, round(self._timeout)))
        try:
            with conn.transaction(), conn.cursor(name="joined") as cursor:
                cursor.itersize = 20_000
                cursor.execute(
                    "SELECT p.prediction_id::text, p.predicted_at, p.model_version, "
                    "p.model_sha256, p.features::text, p.probability, p.churn, p.threshold, "
                    "o.churned, p.shadow_probability, p.shadow_model_version "
                    "FROM predictions p LEFT JOIN outcomes o "
                    "ON o.prediction_id = p.prediction_id "
                    "WHERE p.predicted_at >= %s AND p.predicted_at < %s ORDER BY p.predicted_at",
                    (since, until),
                )
                for row in cursor:
                    yield JoinedRow(*row)
        except psycopg.Error as exc:
            raise StoreError(f"{self.url_for_logs}: {exc}") from exc
        finally:
            conn.close()

    def write_monitor_results(self, results: Sequence[MonitorResult]) -> None:
        def write(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction(), conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO monitor_results (day, model_version, metric, feature, value) "
                    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (day, model_version, metric, feature)"
                    " DO UPDATE SET value = excluded.value, computed_at = now()",
                    [(r.day, r.model_version, r.metric, r.feature, r.value) for r in results],
                )

        self._run(write)

    def latest_monitor_results(self) -> list[MonitorResult]:
        def read(conn: psycopg.Connection[Any]) -> list[MonitorResult]:
            rows = conn.execute(
                "SELECT day, model_version, metric, feature, value FROM monitor_results m "
                "WHERE day = (SELECT max(day) FROM monitor_results n "
                "WHERE n.model_version = m.model_version)"
            ).fetchall()
            return [MonitorResult(d, v, m, x, f) for d, v, m, f, x in rows]

        result: list[MonitorResult] = self._run(read)
        return result

    def drop_expired(self, retention_days: int, now: datetime) -> int:
        cutoff = (now.astimezone(UTC) - timedelta(days=retention_days)).date()

        def drop(conn: psycopg.Connection[Any]) -> int:
            dropped = 0
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
                names = conn.execute(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent = 'predictions'::regclass"
                ).fetchall()
                for (name,) in names:
                    match = _PARTITION.fullmatch(name)
                    if match and datetime.strptime(match[1], "%Y%m%d").date() < cutoff:
                        conn.execute(f"DROP TABLE {name}")
                        self._partitions.discard(datetime.strptime(match[1], "%Y%m%d").date())
                        dropped += 1
                start, _ = _day_bounds(cutoff)
                conn.execute("DELETE FROM outcomes WHERE predicted_at < %s", (start,))
            return dropped

        return int(self._run(drop))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _iso(moment: datetime) -> str:
    # One fixed-width UTC form, so text order is time order in SQLite.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


class SqliteStore:
    """SQLite for the embedded default: the same tables, unpartitioned."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self.url_for_logs = f"sqlite:///{path}"
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self._path, timeout=5.0, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
            except (OSError, sqlite3.Error) as exc:
                raise StoreError(f"cannot open {self.url_for_logs}: {exc}") from exc
            self._conn = conn
        return self._conn

    def _run(self, fn: Any) -> Any:
        with self._lock:
            conn = self._connect()
            try:
                with conn:  # one transaction: commit, or roll back on error
                    return fn(conn)
            except sqlite3.Error as exc:
                raise StoreError(f"{self.url_for_logs}: {exc}") from exc

    def migrate(self) -> int:
        def apply(conn: sqlite3.Connection) -> int:
            # The write lock first: two processes starting together migrate one after the other.
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                "name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            current = int(conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations")
                          .fetchone()[0])  # fmt: skip
            for version, name, _, statements in MIGRATIONS:
                if version <= current:
                    continue
                for statement in statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                    (version, name, _iso(datetime.now(UTC))),
                )
                current = version
            return current

        return int(self._run(apply))

    def write_predictions(self, rows: Sequence[CapturedPrediction]) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(
                f"INSERT OR IGNORE INTO predictions ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",  # noqa: S608 - a constant
                [
                    (
                        r.prediction_id,
                        _iso(r.predicted_at),
                        r.model_version,
                        r.model_sha256,
                        r.customer_id,
                        r.features,
                        r.probability,
                        int(r.churn),
                        r.threshold,
                        r.shadow_probability,
                        r.shadow_model_version,
                        r.shadow_model_sha256,
                    )
                    for r in rows
                ],
            )

        self._run(write)

    def record_outcomes(
        self, outcomes: Sequence[Outcome], source: str
    ) -> list[tuple[FeedbackStatus, str | None]]:
        def record(conn: sqlite3.Connection) -> list[tuple[FeedbackStatus, str | None]]:
            results: list[tuple[FeedbackStatus, str | None]] = []
            now = _iso(datetime.now(UTC))
            for o in outcomes:
                if o.prediction_id is not None:
                    found = conn.execute(
                        "SELECT prediction_id, predicted_at FROM predictions "
                        "WHERE prediction_id = ?",
                        (o.prediction_id,),
                    ).fetchone()
                else:
                    found = conn.execute(
                        "SELECT prediction_id, predicted_at FROM predictions WHERE customer_id = ?"
                        " AND predicted_at <= ? ORDER BY predicted_at DESC LIMIT 1",
                        (o.customer_id, _iso(o.observed_at)),
                    ).fetchone()
                if found is None:
                    results.append(("unknown_prediction", o.prediction_id))
                    continue
                prediction_id, predicted_at = found
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO outcomes VALUES (?, ?, ?, ?, ?, ?)",
                    (prediction_id, predicted_at, int(o.churned), _iso(o.observed_at), now, source),
                )
                if cursor.rowcount == 1:
                    results.append(("recorded", prediction_id))
                    continue
                stored = conn.execute(
                    "SELECT churned FROM outcomes WHERE prediction_id = ?", (prediction_id,)
                ).fetchone()
                same = stored is not None and bool(stored[0]) == o.churned
                results.append(("duplicate" if same else "conflict", prediction_id))
            return results

        result: list[tuple[FeedbackStatus, str | None]] = self._run(record)
        return result

    def joined(self, since: datetime, until: datetime) -> Iterator[JoinedRow]:
        with self._lock:
            rows = (
                self._connect()
                .execute(
                    "SELECT p.prediction_id, p.predicted_at, p.model_version, p.model_sha256, "
                    "p.features, p.probability, p.churn, p.threshold, o.churned, "
                    "p.shadow_probability, p.shadow_model_version "
                    "FROM predictions p LEFT JOIN outcomes o ON o.prediction_id = p.prediction_id"
                    " WHERE p.predicted_at >= ? AND p.predicted_at < ? ORDER BY p.predicted_at",
                    (_iso(since), _iso(until)),
                )
                .fetchall()
            )
        for pid, at, version, sha, features, p, churn, threshold, churned, sp, sv in rows:
            yield JoinedRow(
                pid,
                datetime.fromisoformat(at),
                version,
                sha,
                features,
                p,
                bool(churn),
                threshold,
                None if churned is None else bool(churned),
                sp,
                sv,
            )

    def write_monitor_results(self, results: Sequence[MonitorResult]) -> None:
        now = _iso(datetime.now(UTC))

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT OR REPLACE INTO monitor_results VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (r.day.isoformat(), r.model_version, r.metric, r.feature, r.value, now)
                    for r in results
                ],
            )

        self._run(write)

    def latest_monitor_results(self) -> list[MonitorResult]:
        def read(conn: sqlite3.Connection) -> list[MonitorResult]:
            rows = conn.execute(
                "SELECT day, model_version, metric, feature, value FROM monitor_results m "
                "WHERE day = (SELECT max(day) FROM monitor_results n "
                "WHERE n.model_version = m.model_version)"
            ).fetchall()
            return [MonitorResult(date.fromisoformat(d), v, m, x, f) for d, v, m, f, x in rows]

        result: list[MonitorResult] = self._run(read)
        return result

    def drop_expired(self, retention_days: int, now: datetime) -> int:
        cutoff = _iso(now - timedelta(days=retention_days))

        def drop(conn: sqlite3.Connection) -> int:
            conn.execute("DELETE FROM outcomes WHERE predicted_at < ?", (cutoff,))
            deleted = conn.execute("DELETE FROM predictions WHERE predicted_at < ?", (cutoff,))
            return deleted.rowcount

        return int(self._run(drop))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
