"""``churn-workflows``: the pipeline's command line (``demo`` runs everything locally)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

_USAGE = (
    "usage: churn-workflows demo [--help] | churn-workflows render [--check]"
    " | churn-workflows serving-alias --tracking-uri URI [--environment ENV]"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to a subcommand."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help"}:
        print(_USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "demo":
        from churn_workflows.demo import main as demo  # noqa: PLC0415 - keep --help fast

        return demo(rest)
    if command == "render":
        from churn_workflows.render import main as render  # noqa: PLC0415

        return render(rest)
    if command == "serving-alias":
        from churn_workflows.serving_alias import main as serving_alias  # noqa: PLC0415

        return serving_alias(rest)
    print(f"unknown command {command!r}\n{_USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
