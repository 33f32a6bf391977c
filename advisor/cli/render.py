"""All terminal rendering of the ``advisor`` command: plans, explanations, rules, diagnoses, bars.

Plain text when stdout is not a terminal (pipes, files, tests), rich tables and colours
when it is.  The library builds the text (``plan_text``, ``render``...); this module only
prints it.  ``rich`` is imported when a terminal asks for it, so ``advisor recommend``
stays quick.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from advisor.contract.schemas import Diagnosis, Explanation, Plan
from advisor.diagnostics.diagnosis import render
from advisor.expert.explaining import (
    conclusions,
    explanation_rows,
    explanations_text,
    grouped,
    headline,
    plan_text,
    rules_text,
    show_value,
)


def print_diagnosis(diagnosis: Diagnosis, next_plan: str | Path | None = None) -> None:
    """Print ``render``'s lines; with colours when stdout is a terminal."""
    lines = render(diagnosis, next_plan)
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.markup import escape

        colours = {"[critical]": "bold red", "[warning]": "yellow", "[info]": "cyan"}
        console = Console(highlight=False)
        for line in lines:
            text = escape(line)
            for tag, style in colours.items():
                text = text.replace(escape(tag), f"[{style}]{escape(tag)}[/{style}]")
            console.print(text)
    else:
        for line in lines:
            click.echo(line)


def render_plan(plan: Plan) -> None:
    """Print the plan summary: tables on a terminal, plain text otherwise."""
    if not sys.stdout.isatty():
        click.echo(plan_text(plan))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{headline(plan)}[/bold]")
    sections = [("What the rules concluded about the problem", list(plan.derived_facts.items()))]
    sections += [(group[0].upper() + group[1:], items) for group, items in grouped(plan).items()]
    for title, items in sections:
        if not items:
            continue
        table = Table(title=title, title_justify="left", show_header=False, expand=True)
        table.add_column("field", style="cyan", no_wrap=True)
        table.add_column("value", style="bold")
        table.add_column("why", ratio=1)
        for path, e in items:
            table.add_row(path, show_value(e.value), f"{e.reason} [dim]\\[{e.rule}][/dim]")
        console.print(table)
    console.print(
        "[dim]`advisor explain PLAN FIELD` shows the evidence and the rules each value overrode.[/dim]"
    )


def render_explanations(explanations: dict[str, Explanation]) -> None:
    """Print explanations in full: plain blocks, or panels on a terminal."""
    if not sys.stdout.isatty():
        click.echo(explanations_text(explanations))
        return
    from rich.console import Console
    from rich.markup import escape

    console = Console()
    styles = {"rule": "green", "source": "dim", "won over": "yellow"}
    for path, e in explanations.items():
        (_, value), *rest = explanation_rows(path, e)
        console.print(f"[bold cyan]{escape(path)}[/bold cyan] = [bold]{escape(value)}[/bold]")
        for label, text in rest:
            style = styles.get(label)
            shown = f"[{style}]{escape(text)}[/{style}]" if style else escape(text)
            console.print(f"  {label:<8} {shown}")
        console.print()


def render_rules(rules: Iterable[Any]) -> None:
    """Print the rules: a table on a terminal, plain blocks otherwise."""
    rules = list(rules)
    if not sys.stdout.isatty():
        click.echo(rules_text(rules))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{len(rules)} rules", title_justify="left", expand=True)
    for column in ("id", "priority", "when", "then", "why"):
        table.add_column(column, ratio=1 if column in ("when", "why") else None)
    for rule in rules:
        table.add_row(
            escape(rule.id),
            str(rule.priority),
            escape(rule.describe_when()),
            escape(conclusions(rule)),
            escape(rule.reason),
        )
    Console().print(table)


class RichBar:
    """A rich progress bar: the bar factory the CLI hands the engine (``engine.outputs.progress``)."""

    def __init__(self, label: str, total: int, completed: int = 0):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn(label),
            MofNCompleteColumn(),
            BarColumn(),
            TextColumn("{task.description}"),
            TimeRemainingColumn(),
        )
        self.task = self.progress.add_task("", total=total, completed=completed)
        self.progress.start()

    def update(self, completed: int, description: str) -> None:
        self.progress.update(self.task, completed=completed, description=description)

    def close(self) -> None:
        self.progress.stop()


def bars(quiet: bool = False):
    """The bar factory for a command: rich's on a terminal, none otherwise or when quiet."""
    return RichBar if sys.stdout.isatty() and not quiet else False
