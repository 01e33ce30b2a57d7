"""`lc-console install [--plan] [--json] [--remove --yes]`: the install screen's CLI twin."""

from __future__ import annotations

import argparse
import shutil
import sys
import textwrap
from typing import TYPE_CHECKING, Any

from lc_console.cli.common import add_command, fail, print_json

# The install service (simple-salesforce, zeep) is imported by the handlers, so that
# `lc-console --help` and the other commands start fast.
if TYPE_CHECKING:
    from lc_console.salesforce.schema_diff import Plan
    from lc_console.services import install

EXIT_OK = 0
EXIT_FAILED = 1  # conflicts, no permission, deploy failure, removal not confirmed
EXIT_NOT_READY = 2


def register(sub: Any) -> None:
    parser = add_command(
        sub, "install",
        "install (or repair) the LostChurn objects and fields in the connected org",
        epilog="Exit status: 0 done or nothing to change; 1 stopped (conflict, missing "
               "permission, deploy failure, removal not confirmed); 2 not connected.")
    parser.add_argument("--plan", action="store_true",
                        help="only show what install would change (present / missing / "
                             "different / conflict); change nothing")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--remove", action="store_true",
                        help="delete every LostChurn object, field, record type and the "
                             "permission set, with their data (needs --yes)")
    parser.add_argument("--yes", action="store_true", help="confirm --remove")
    parser.set_defaults(handler=_run)


def _width() -> int:
    return max(60, min(140, shutil.get_terminal_size((100, 24)).columns))


def plan_lines(plan: Plan, width: int = 100) -> list[str]:
    """The plan as a table: status, kind, name, what the console needs, then any detail."""
    rows = [(i.status.value, i.kind.value, i.name, i.expected, i.detail) for i in plan.items]
    w_status = max(len("STATUS"), *(len(r[0]) for r in rows))
    w_kind = max(len("KIND"), *(len(r[1]) for r in rows))
    w_name = max(len("COMPONENT"), *(len(r[2]) for r in rows))
    head = f"{'STATUS':<{w_status}}  {'KIND':<{w_kind}}  {'COMPONENT':<{w_name}}  NEEDS"
    out = [head, "-" * min(width, len(head) + 30)]
    indent = " " * (w_status + 2)
    for status, kind, name, expected, detail in rows:
        out.append(f"{status:<{w_status}}  {kind:<{w_kind}}  {name:<{w_name}}  {expected}")
        if detail:
            out.extend(textwrap.wrap(detail, width=width, initial_indent=indent + "-> ",
                                     subsequent_indent=indent + "   "))
    out.append("")
    out.append(plan.summary())
    if not plan.can_customize and not plan.selection.is_empty():
        out.append("Note: the connected user lacks Customize Application; install will stop "
                   "before deploying.")
    return out


def _print(lines: list[str], stream: Any = None) -> None:
    for line in lines:
        print(line, file=stream or sys.stdout)


class _ProgressPrinter:
    def __init__(self, show_plan: bool) -> None:
        self.last = ""
        self.show_plan = show_plan

    def __call__(self, p: install.Progress) -> None:
        if p.plan is not None:
            if self.show_plan:
                _print(plan_lines(p.plan, _width()))
                print()
            return
        if p.message != self.last:
            self.last = p.message
            print(f"  {p.message}", flush=True)


def _run(args: argparse.Namespace) -> int:
    from lc_console.services import install

    if args.yes and not args.remove:
        return fail("--yes only confirms --remove.", code=EXIT_NOT_READY)
    if args.plan and args.remove:
        return fail("--plan and --remove do not go together: --remove without --yes "
                    "already only shows what would be deleted.", code=EXIT_NOT_READY)
    try:
        target = install.target_for_profile(args.profile)
        if args.remove:
            return _remove(args, target)
        if args.plan:
            return _plan(args, target)
        return _install(args, target)
    except Exception as exc:
        code = EXIT_NOT_READY if install.is_not_connected(exc) else EXIT_FAILED
        return fail(install.error_message(exc), code=code)


def _plan(args: argparse.Namespace, target: install.Target) -> int:
    from lc_console.services import install

    plan = install.plan(target)
    if args.json:
        print_json(install.plan_to_dict(plan))
    else:
        _print(plan_lines(plan, _width()))
    blocked = plan.conflicts or (not plan.can_customize and not plan.selection.is_empty())
    return EXIT_FAILED if blocked else EXIT_OK


def _install(args: argparse.Namespace, target: install.Target) -> int:
    from lc_console.services import install

    printer = None if args.json else _ProgressPrinter(show_plan=True)
    result = install.install(target, on_progress=printer)
    if args.json:
        print_json(result.to_dict())
    else:
        print()
        _print(result.lines())
    return EXIT_OK if result.ok else EXIT_FAILED


def _remove(args: argparse.Namespace, target: install.Target) -> int:
    from lc_console.services import install

    if not args.yes:
        preview = install.remove_preview(target)
        if args.json:
            print_json({"confirmed": False, **preview.to_dict()})
        else:
            _print(preview.lines())
        if preview.nothing_installed:
            return EXIT_OK
        print(f"Nothing was deleted. To delete all of this, run: lc-console "
              f"{_profile_flag(args)}install --remove --yes", file=sys.stderr)
        return EXIT_FAILED
    printer = None if args.json else _ProgressPrinter(show_plan=False)
    result = install.remove(target, on_progress=printer)
    if args.json:
        print_json({"confirmed": True, **result.to_dict()})
    else:
        _print(result.lines())
    return EXIT_OK if result.ok else EXIT_FAILED


def _profile_flag(args: argparse.Namespace) -> str:
    return "" if args.profile == "default" else f"--profile {args.profile} "
