"""Command line: `notecheck check NOTE`, plus the catalogues `rules`, `codes` and `schema`.

Exit codes follow linters: 0 no error-severity issue, 1 at least one, 2 usage or input error. Error messages name the
file and the reason and never contain note text.
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from notecheck.reading import DEFAULT_MAX_BYTES, ReadError, read_note
from notecheck.rulebook import Family, Rulebook, RulebookError, UnknownFamilyError, load_rulebook
from notecheck.validation import DEFAULT_FAMILY, ValidationInputError

EXIT_OK, EXIT_ISSUES, EXIT_USAGE = 0, 1, 2

app = typer.Typer(
    name="notecheck",
    help=(
        "Check whether an operative note documents the hip-dislocation CPT code billed for it "
        "(27250-27266), with the evidence for each requirement and a physician query for each gap.\n\n"
        "\b\nExamples:\n"
        "  notecheck check note.txt               text report; code from the note's CPT line\n"
        "  notecheck check note.txt --code 27252  check a claimed code given here\n"
        "  notecheck check - --format json < note.txt\n"
        "  notecheck codes 27257                  what 27257 needs, and its siblings\n"
        "  notecheck rules                        every rule id with its explanation\n\n"
        "Exit codes: 0 no errors, 1 error-severity issues found, 2 usage or input error."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class OutputFormat(str, Enum):
    text = "text"
    json = "json"


class CheckFormat(str, Enum):
    text = "text"
    json = "json"
    html = "html"
    sarif = "sarif"


def _fail(message: str) -> "typer.Exit":
    typer.echo(f"notecheck: error: {message}", err=True)
    return typer.Exit(EXIT_USAGE)


PatternsOption = typer.Option(
    None, "--patterns", metavar="DIR",
    help="Use rule data from DIR instead of the packaged patterns/ (for testing rule changes).",
    file_okay=False,
)


MaxBytesOption = typer.Option(DEFAULT_MAX_BYTES, "--max-bytes", metavar="N", min=1,
                              help="Refuse notes larger than N bytes.")


@app.command()
def check(
    note: str = typer.Argument(..., metavar="NOTE", help="Path to a UTF-8 text note, or '-' to read standard input."),
    code: Optional[str] = typer.Option(
        None, "--code", "-c", metavar="CPT",
        help="Claimed CPT code to check. Default: the first family code written in the note (billing line first).",
    ),
    output: CheckFormat = typer.Option(CheckFormat.text, "--format", "-f",
                                       help="text for people, json for programs, html (self-contained page with the "
                                            "evidence highlighted), sarif (SARIF 2.1.0 for code-scanning viewers)."),
    out_file: Optional[Path] = typer.Option(None, "--output", "-o", metavar="FILE",
                                            help="Write the report to FILE instead of standard output."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show every piece of evidence in the text report."),
    family: str = typer.Option(DEFAULT_FAMILY, "--family", help="Code family to check against."),
    max_bytes: int = MaxBytesOption,
    patterns: Optional[Path] = PatternsOption,
) -> None:
    """Check one note: the supported code, the claimed code, each requirement with evidence, and queries."""
    from notecheck.checker import Checker
    from notecheck.reporting import render_json, render_text

    try:
        text_note = read_note(note, max_bytes=max_bytes)
    except ReadError as exc:
        raise _fail(str(exc)) from None
    try:
        checker = Checker(patterns_dir=patterns, family=family)
        result = checker.check_note(text_note, claimed_code=code)
    except (RulebookError, ValidationInputError, ValueError) as exc:
        raise _fail(str(exc)) from None
    if output is CheckFormat.json:
        rendered = render_json(result)
    elif output is CheckFormat.html:
        from notecheck.html_report import render_html

        rendered = render_html(result, text_note.text)
    elif output is CheckFormat.sarif:
        from notecheck.reporting import render_sarif

        rendered = render_sarif([result], checker.book)
    else:
        rendered = render_text(result, verbose=verbose)
    if out_file is not None:
        try:
            out_file.write_text(rendered + "\n", encoding="utf-8")
        except OSError as exc:
            raise _fail(f"{out_file}: cannot write ({exc.strerror or type(exc).__name__})") from None
    else:
        typer.echo(rendered)
    raise typer.Exit(EXIT_ISSUES if result.has_errors else EXIT_OK)


@app.command()
def rules(
    rule_id: Optional[str] = typer.Argument(None, metavar="[RULE]", help="A rule id such as NC111 for its full entry."),
    output: OutputFormat = typer.Option(OutputFormat.text, "--format", "-f"),
    patterns: Optional[Path] = PatternsOption,
) -> None:
    """List every rule id with its severity and explanation, or explain one rule."""
    from notecheck.reporting import render_rules

    book = _book(patterns)
    if rule_id is not None:
        rule_id = rule_id.upper()
        if rule_id not in book.rules:
            raise _fail(f"unknown rule {rule_id}; run 'notecheck rules' for the list")
    typer.echo(render_rules(book, rule_id, as_json=output is OutputFormat.json))


@app.command()
def codes(
    code: Optional[str] = typer.Argument(None, metavar="[CODE]", help="A CPT code such as 27257 to explain it."),
    family: str = typer.Option(DEFAULT_FAMILY, "--family", help="Code family."),
    output: OutputFormat = typer.Option(OutputFormat.text, "--format", "-f"),
    patterns: Optional[Path] = PatternsOption,
) -> None:
    """List the code family, or explain one code: descriptor, selection, requirements, siblings, ICD-10, modifiers."""
    from notecheck.reporting import render_codes

    fam = _family(_book(patterns), family)
    if code is not None and fam.code(code) is None:
        raise _fail(f"{code} is not in the {family} family (known: {', '.join(c.code for c in fam.codes)})")
    typer.echo(render_codes(fam, code, as_json=output is OutputFormat.json))


class Engine(str, Enum):
    local = "local"
    dask = "dask"


@app.command()
def batch(
    directory: Path = typer.Argument(..., metavar="DIR", help="Folder to walk recursively for notes.",
                                     exists=True, file_okay=False),
    glob: str = typer.Option("*.txt", "--glob", help="File name pattern for notes."),
    jobs: int = typer.Option(0, "--jobs", "-j", min=0, help="Worker processes (0 = all CPU cores)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", metavar="FILE.jsonl",
                                       help="One JSON report per line, with the file's path and status."),
    csv_path: Optional[Path] = typer.Option(None, "--csv", metavar="FILE.csv", help="One summary row per note."),
    resume: bool = typer.Option(False, "--resume", help="Skip notes already in --out and append to it."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar and no summary."),
    summary_format: OutputFormat = typer.Option(OutputFormat.text, "--format", "-f",
                                                help="Summary as text or JSON (on stdout)."),
    engine: Engine = typer.Option(Engine.local, "--engine", help="local processes, or dask (needs notecheck[dask])."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", metavar="ADDRESS",
                                            help="Dask scheduler address; without it a LocalCluster is started."),
    max_bytes: int = MaxBytesOption,
    html: Optional[Path] = typer.Option(None, "--html", metavar="FILE.html",
                                        help="Write a self-contained dashboard page for the batch."),
    html_dir: Optional[Path] = typer.Option(None, "--html-dir", metavar="DIR",
                                            help="Write a per-note HTML report into DIR (linked from the dashboard)."),
    family: str = typer.Option(DEFAULT_FAMILY, "--family", help="Code family to check against."),
    patterns: Optional[Path] = PatternsOption,
) -> None:
    """Check every note in a folder in parallel; rows are written as they go, bad files become rows too.

    Exit code 0 when every note passed, 1 when any has an error-severity issue or could not be read.
    """
    from notecheck.batch import BatchOptions, run_batch

    if resume and out is None:
        raise _fail("--resume needs --out (the results file to continue)")
    if out is None and csv_path is None and html is None and quiet:
        raise _fail("nothing to do: give --out and/or --csv, or drop --quiet to see the summary")
    _family(_book(patterns), family)  # a broken rule file or family fails here, once, not in every worker
    opts = BatchOptions(root=directory, pattern=glob, jobs=jobs, out=out, csv_path=csv_path, resume=resume,
                        progress=not quiet and sys.stderr.isatty(), engine=engine.value, scheduler=scheduler,
                        patterns_dir=str(patterns) if patterns else None, family=family, max_bytes=max_bytes,
                        html_dashboard=html, html_dir=html_dir)
    try:
        summary = run_batch(opts)
    except (RuntimeError, OSError) as exc:
        raise _fail(str(exc)) from None
    if not quiet:
        typer.echo(json.dumps(summary.as_dict(), indent=2) if summary_format is OutputFormat.json
                   else summary.render())
    raise typer.Exit(EXIT_ISSUES if (summary.failed or summary.unreadable or summary.previous_failing) else EXIT_OK)


@app.command("eval")
def eval_(
    directory: Path = typer.Argument(..., metavar="DIR", help="Folder of ID.txt notes with ID.json gold labels.",
                                     exists=True, file_okay=False),
    output: OutputFormat = typer.Option(OutputFormat.text, "--format", "-f"),
    cases: bool = typer.Option(True, "--cases/--no-cases", help="List each wrong case with its evidence."),
    by_writer_: bool = typer.Option(False, "--by-writer", help="One row per writer set (each first-level folder "
                                    "of DIR), beside its first blind run where the set keeps a FIRST_RUN.json, and "
                                    "the leave-one-writer-out figure over those first runs."),
    record_first_run: bool = typer.Option(False, "--record-first-run", help="Save this run as DIR/FIRST_RUN.json, "
                                          "the set's blind first run (refused if one exists: a first run is "
                                          "measured once)."),
    patterns: Optional[Path] = PatternsOption,
) -> None:
    """Measure accuracy on labelled notes: supported code, mismatch detection, each field, wrong cases.

    A new writer set is measured once, blind, with --record-first-run, before anyone reads its errors; later runs
    with --by-writer keep reporting that first figure (rescored against corrected labels) beside today's."""
    from notecheck.checker import Checker
    from notecheck.evaluation import FIRST_RUN, by_writer, evaluate, render_by_writer, render_eval_text

    saved = directory / FIRST_RUN
    if record_first_run and saved.exists():
        raise _fail(f"{saved} exists: a set's first blind run is recorded once")
    try:
        checker = Checker(patterns_dir=patterns)
        report = evaluate(directory, checker)
    except (RulebookError, ValueError) as exc:
        raise _fail(str(exc)) from None
    if report.cases == 0:
        raise _fail(f"{directory}: no *.txt notes with a *.json label")
    if record_first_run:
        saved.write_text(report.model_dump_json(indent=1), encoding="utf-8")
    if by_writer_:
        rows = by_writer(report, directory, [c.code for c in checker.book.families[checker.family].codes])
        typer.echo(json.dumps([r.model_dump(exclude={"now": {"results"}, "first_run": {"results"}}) for r in rows],
                              indent=2) if output is OutputFormat.json else render_by_writer(rows))
        return
    typer.echo(report.model_dump_json(indent=2) if output is OutputFormat.json
               else render_eval_text(report, show_cases=cases))


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (loopback by default)."),
    port: int = typer.Option(8080, "--port", min=1, max=65535),
    token: Optional[str] = typer.Option(None, "--token", envvar="NOTECHECK_TOKEN", show_envvar=True,
                                        help="Require 'Authorization: Bearer TOKEN' on /v1/ endpoints."),
    max_bytes: int = typer.Option(1_000_000, "--max-bytes", metavar="N", min=1, help="Largest request body (413)."),
    timeout: float = typer.Option(10.0, "--timeout", metavar="SECONDS", help="Per-note time limit (503)."),
    max_batch: int = typer.Option(50, "--max-batch", min=1, help="Most notes in one /v1/check/batch request."),
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning or error."),
    workers: int = typer.Option(1, "--workers", min=1,
                                help="Server processes (one pipeline each); use the core count."),
    max_requests: int = typer.Option(
        0, "--max-requests", metavar="N", min=0,
        help="Restart a server process after N requests (0: never). spaCy's vocabulary keeps every new word it sees, "
             "names included; with --workers 2 or more the others serve while one restarts. With one worker the "
             "server exits after N requests, for a process manager to restart."),
    patterns: Optional[Path] = PatternsOption,
) -> None:
    """Run the HTTP service (needs notecheck[service]): POST /v1/check, /v1/check/batch, GET /healthz, /docs."""
    import logging

    try:
        import uvicorn

        from notecheck.service import NoDelayH11Protocol, create_app, settle_heap
    except ImportError:
        raise _fail("the HTTP service needs the optional extra: pip install 'notecheck[service]'") from None
    from notecheck.checker import Checker

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if workers > 1:
        import os

        _book(patterns)
        os.environ.update({"NOTECHECK_MAX_BYTES": str(max_bytes), "NOTECHECK_TIMEOUT": str(timeout),
                           "NOTECHECK_MAX_BATCH": str(max_batch), "NOTECHECK_PATTERNS": str(patterns or "")})
        if token:
            os.environ["NOTECHECK_TOKEN"] = token
        uvicorn.run("notecheck.service:app_from_env", factory=True, host=host, port=port, workers=workers,
                    log_level=log_level, access_log=False, http=NoDelayH11Protocol,
                    limit_max_requests=max_requests or None)
        return
    try:
        checker = Checker(patterns_dir=patterns)
    except RulebookError as exc:
        raise _fail(str(exc)) from None
    app_ = create_app(checker, token=token, max_bytes=max_bytes, timeout=timeout, max_batch=max_batch)
    settle_heap()
    uvicorn.run(app_, host=host, port=port, log_level=log_level, access_log=False, http=NoDelayH11Protocol,
                limit_max_requests=max_requests or None)


@app.command()
def schema() -> None:
    """Print the JSON Schema of `check --format json` output."""
    from notecheck.reporting import result_schema

    typer.echo(result_schema())


def _family(book: Rulebook, name: str) -> Family:
    try:
        return book.family(name)
    except UnknownFamilyError as exc:
        raise _fail(str(exc)) from None


def _book(patterns: Optional[Path]) -> Rulebook:
    try:
        return load_rulebook(patterns)
    except RulebookError as exc:
        raise _fail(str(exc)) from None


def main() -> None:
    """Console entry point. Unexpected failures print the exception type only, never note text."""
    from notecheck.pipeline import defer_quickumls

    defer_quickumls()  # this process is ours: skip an import chain notecheck never uses (cold start)
    try:
        app()
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 - last line of defence for PHI-safe errors
        sys.stderr.write(f"notecheck: internal error: {type(exc).__name__}; please report it with the command used\n")
        sys.exit(EXIT_USAGE)


if __name__ == "__main__":
    main()
